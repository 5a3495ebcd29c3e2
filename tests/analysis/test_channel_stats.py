"""Per-particle statistics of a second image, checked on hand-made arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from electroseg.analysis.channel_stats import (
    ChannelStats,
    particle_channel_stats,
    plot_channel_vs_size,
)
from electroseg.errors import InputError

VOXEL = (0.05, 0.025, 0.025)


def _two_particles():
    """Particle A: 2x2x2 cube, image 7.0 everywhere. Particle B: a row of 5 with values 1..5."""
    labels = np.zeros((4, 6, 8), dtype=np.uint8)
    image = np.full(labels.shape, 100.0)  # pore/CBD values must not leak into the statistics
    labels[0:2, 0:2, 0:2] = 2
    image[0:2, 0:2, 0:2] = 7.0
    labels[3, 4, 2:7] = 2
    image[3, 4, 2:7] = [5.0, 1.0, 4.0, 2.0, 3.0]
    labels[2, 2, 5] = 1
    return labels, image


def test_two_particles_exact_values():
    labels, image = _two_particles()
    s = particle_channel_stats(labels, image, voxel_size=VOXEL, channel="edge_ev")
    assert len(s) == 2 and s.channel == "edge_ev"
    assert s.mean.tolist() == [7.0, 3.0]
    assert s.std == pytest.approx([0.0, math.sqrt(2.0)])
    assert s.median.tolist() == [7.0, 3.0]
    # numpy's linear percentile of 1..5: index 0.1 * 4 = 0.4 -> 1.4; 0.9 * 4 = 3.6 -> 4.6
    assert s.p10 == pytest.approx([7.0, 1.4])
    assert s.p90 == pytest.approx([7.0, 4.6])
    voxel_volume = 0.05 * 0.025 * 0.025
    assert s.voxels.tolist() == [8, 5]
    assert s.volume_um3 == pytest.approx([8 * voxel_volume, 5 * voxel_volume])
    assert s.diameter_um[0] == pytest.approx((6 * 8 * voxel_volume / math.pi) ** (1 / 3))
    # depth axis 1 (Y): A spans y 0..1 (centroid 0.5), B sits at y = 4
    assert s.depth_um == pytest.approx([0.5 * 0.025, 4 * 0.025])
    assert s.centroid[1].tolist() == [3.0, 4.0, 4.0]
    assert s.touches_border.tolist() == [True, True]
    assert s.count.tolist() == [8, 5]


def test_relabelling_particles_leaves_statistics_unchanged():
    labels, image = _two_particles()
    reference = particle_channel_stats(labels, image, voxel_size=VOXEL).as_table()
    ids = np.zeros(labels.shape, dtype=np.int32)
    ids[0:2, 0:2, 0:2] = 907
    ids[3, 4, 2:7] = 12
    s = particle_channel_stats(None, image, voxel_size=VOXEL, particles=ids)
    table = s.as_table()
    assert s.label.tolist() == [12, 907]
    for column in ("voxels", "volume_um3", "mean", "std", "median", "p10", "p90", "depth_um"):
        assert table[column].tolist() == pytest.approx(reference[column].tolist()[::-1])


def test_matches_per_particle_numpy_on_random_data():
    rng = np.random.default_rng(3)
    labels = rng.choice(np.array([0, 1, 2], dtype=np.uint8), size=(10, 12, 14), p=[0.4, 0.1, 0.5])
    image = rng.normal(8345.0, 2.0, size=labels.shape).astype(np.float32)
    s = particle_channel_stats(labels, image, voxel_size=(1, 1, 1))
    particles, n = ndimage.label(labels == 2)  # scipy's face connectivity: an independent labelling
    assert len(s) == n
    values = image.astype(np.float64)
    expected = sorted((values[particles == i].mean(), np.percentile(values[particles == i], 90),
                       (particles == i).sum()) for i in range(1, n + 1))
    got = sorted(zip(s.mean, s.p90, s.voxels))
    np.testing.assert_allclose(np.array(got), np.array(expected), rtol=1e-12)


def test_nan_voxels_count_in_volume_not_in_statistics():
    labels, image = _two_particles()
    image[3, 4, 3] = np.nan  # the value 1.0 of particle B
    s = particle_channel_stats(labels, image, voxel_size=VOXEL)
    assert s.voxels[1] == 5 and s.count[1] == 4
    assert s.mean[1] == pytest.approx(3.5)
    assert s.median[1] == pytest.approx(3.5)


def test_connectivity_3_joins_corner_touching_particles():
    labels = np.zeros((3, 3, 3), dtype=np.uint8)
    labels[0, 0, 0] = labels[1, 1, 1] = 2
    image = np.zeros(labels.shape)
    assert len(particle_channel_stats(labels, image, voxel_size=(1, 1, 1))) == 2
    assert len(particle_channel_stats(labels, image, voxel_size=(1, 1, 1), connectivity=3)) == 1


def test_doubling_voxel_size_multiplies_volumes_by_eight():
    labels, image = _two_particles()
    a = particle_channel_stats(labels, image, voxel_size=VOXEL)
    b = particle_channel_stats(labels, image, voxel_size=tuple(2 * v for v in VOXEL))
    assert b.volume_um3 == pytest.approx(8 * a.volume_um3)
    assert b.diameter_um == pytest.approx(2 * a.diameter_um)


def test_2d_image_reports_area_and_circle_diameter():
    labels = np.array([[2, 2, 0],
                       [2, 2, 0],
                       [0, 0, 0]], dtype=np.uint8)
    image = np.array([[1, 2, 0], [3, 4, 0], [0, 0, 0]], dtype=np.uint16)
    s = particle_channel_stats(labels, image, voxel_size=(0.5, 0.5), depth_axis=0)
    table = s.as_table()
    assert "area_um2" in table and "centroid_z" not in table
    assert table["area_um2"].tolist() == [1.0]
    assert s.diameter_um[0] == pytest.approx(math.sqrt(4 / math.pi))
    assert s.mean[0] == 2.5 and s.depth_um[0] == pytest.approx(0.25)


def test_empty_and_json():
    labels = np.zeros((3, 4), dtype=np.uint8)
    s = particle_channel_stats(labels, np.zeros((3, 4)), voxel_size=(1, 1))
    assert len(s) == 0 and s.to_dict()["particles"] == 0
    labels[0, 0] = 2
    image = np.full((3, 4), np.nan)
    d = particle_channel_stats(labels, image, voxel_size=(1, 1)).to_dict()
    assert d["columns"]["mean"] == [None] and d["columns"]["voxels"] == [1]


def test_bad_inputs_are_named():
    labels, image = _two_particles()
    with pytest.raises(InputError, match=r"image.*\(4, 6, 8\).*\(4, 6, 7\)"):
        particle_channel_stats(labels, image[..., :7], voxel_size=VOXEL)
    with pytest.raises(InputError, match="voxel_size"):
        particle_channel_stats(labels, image, voxel_size=(1, 1))
    with pytest.raises(InputError, match="connectivity"):
        particle_channel_stats(labels, image, voxel_size=VOXEL, connectivity=5)
    with pytest.raises(InputError, match="phase"):
        particle_channel_stats(labels, image, voxel_size=VOXEL, phase="nmc")
    with pytest.raises(InputError, match="particles.*integer"):
        particle_channel_stats(None, image, voxel_size=VOXEL, particles=image)
    with pytest.raises(InputError, match="complex"):
        particle_channel_stats(labels, image.astype(complex), voxel_size=VOXEL)


def test_plot_writes_an_image(tmp_path):
    labels, image = _two_particles()
    s = particle_channel_stats(labels, image, voxel_size=VOXEL)
    out = plot_channel_vs_size(s, tmp_path / "figs" / "edge_vs_size.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in (tmp_path / "figs").iterdir()] == ["edge_vs_size.png"]
    with pytest.raises(InputError, match="ChannelStats"):
        plot_channel_vs_size(s.as_table(), tmp_path / "x.png")
    assert isinstance(s, ChannelStats)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_random_relabelling_and_per_particle_numpy_agree(seed):
    rng = np.random.default_rng(seed)
    labels = rng.choice(np.array([0, 2], dtype=np.uint8), size=(3, 5, 6))
    image = rng.integers(0, 7, size=labels.shape).astype(np.float64)  # many ties
    particles, n = ndimage.label(labels == 2)
    permutation = np.concatenate([[0], rng.permutation(n) * 3 + 5])  # new ids 5, 8, 11, ...
    s = particle_channel_stats(None, image, voxel_size=(1, 1, 1), particles=permutation[particles])
    for i in range(1, n + 1):
        row = int(np.flatnonzero(s.label == permutation[i])[0])
        values = image[particles == i]
        expected = (values.mean(), values.std(), np.median(values), *np.percentile(values, [10, 90]))
        got = (s.mean[row], s.std[row], s.median[row], s.p10[row], s.p90[row])
        assert got == pytest.approx(expected, abs=1e-12)


def test_particle_ids_covering_every_voxel():
    ids = np.array([[4, 4, 9],
                    [4, 9, 9]], dtype=np.int64)
    image = np.array([[1.0, 2.0, 10.0],
                      [3.0, 20.0, 30.0]])
    s = particle_channel_stats(None, image, voxel_size=(1, 1), particles=ids, depth_axis=0)
    assert s.label.tolist() == [4, 9] and s.mean.tolist() == [2.0, 20.0]
    assert s.median.tolist() == [2.0, 20.0] and s.voxels.tolist() == [3, 3]


def test_binned_by_size_and_by_depth():
    labels = np.zeros((4, 10, 6), dtype=np.uint8)
    image = np.zeros(labels.shape)
    labels[0, 0, 0], image[0, 0, 0] = 2, 10.0                       # A: 1 voxel, mean 10
    labels[1:3, 1:3, 2:4], image[1:3, 1:3, 2:4] = 2, 4.0            # B: 8 voxels, mean 4
    labels[1:3, 8:10, 2:4] = 2                                       # C: 8 voxels 0..7
    image[1:3, 8:10, 2:4] = np.arange(8.0).reshape(2, 2, 2)
    s = particle_channel_stats(labels, image, voxel_size=(1, 1, 1))
    by_size = s.binned(by="size", edges=[0.5, 2.0, 8.0])  # 8.0 is the closed right edge
    assert by_size["particles"].tolist() == [1, 2]
    assert by_size["mean_of_means"].tolist() == pytest.approx([10.0, 3.75])
    assert by_size["std_of_means"][1] == pytest.approx(0.5 / math.sqrt(2))
    assert np.isnan(by_size["std_of_means"][0])
    assert by_size["voxel_mean"][1] == pytest.approx((8 * 4.0 + 28.0) / 16)
    assert by_size["mean_within_std"][1] == pytest.approx(np.std(np.arange(8.0)) / 2)
    assert by_size["volume_um3"].tolist() == [1.0, 16.0]
    by_depth = s.binned(by="depth", n_regions=2)  # depth axis 1 has 10 planes: 0..4 | 5..9
    assert by_depth["particles"].tolist() == [2, 1]  # A (y 0) and B (y 1.5) | C (y 8.5)
    assert by_depth["mean_of_means"].tolist() == pytest.approx([7.0, 3.5])
    assert by_depth["low"].tolist() == [-0.5, 4.5] and by_depth["high"].tolist() == [4.5, 9.5]
    with pytest.raises(InputError, match="by"):
        s.binned(by="colour")
    with pytest.raises(InputError, match="edges"):
        s.binned(edges=[1.0, 1.0])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(-4, 4)), max_size=40))
def test_sort_within_groups_equals_lexsort(pairs):
    from electroseg.analysis._group_stats import sort_within_groups

    group = np.array([g for g, _ in pairs], dtype=np.int64)
    values = np.array([v / 2 for _, v in pairs], dtype=np.float64)
    count = np.bincount(group, minlength=6)
    starts = np.cumsum(count) - count
    expected = values[np.lexsort((values, group))]
    assert np.array_equal(sort_within_groups(group, values, starts, count), expected)

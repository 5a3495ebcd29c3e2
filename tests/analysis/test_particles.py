"""Particle labelling, table and size histograms: hand-made arrays and analytic shapes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from electroseg.analysis.particles import (
    DEFAULT_EDGES_UM3,
    label_particles,
    particle_table,
    size_histogram,
    split_touching,
)
from electroseg.errors import InputError


def _hand_volume() -> np.ndarray:
    labels = np.zeros((4, 5, 6), dtype=np.uint8)
    labels[1:3, 1:3, 1:4] = 2       # 12-voxel box, interior
    labels[3, 4, 5] = 2             # corner voxel on the border
    labels[0, 0, 0] = 2             # corner voxel, edge-adjacent (z and y differ) to ...
    labels[1, 1, 0] = 2             # ... this one, which is face-adjacent to the box
    labels[2, 3, 3] = 1             # CBD, not a particle
    return labels


def test_face_and_full_connectivity_hand_counted():
    labels = _hand_volume()
    # (1,1,0) touches the box at (1,1,1) by a face; (0,0,0) touches (1,1,0) by an edge only.
    assert int(label_particles(labels).max()) == 3
    assert int(label_particles(labels, connectivity=26).max()) == 2
    assert int(label_particles(labels, connectivity=3).max()) == 2


def test_table_values_with_anisotropic_voxels():
    table = particle_table(_hand_volume(), voxel_size=(1.0, 2.0, 3.0), depth_axis=1)
    order = np.argsort(table.voxels)
    assert table.voxels[order].tolist() == [1, 1, 13]
    assert table.size[order].tolist() == [6.0, 6.0, 78.0]
    assert table.size_name == "volume_um3"
    assert table.diameter_um[order][-1] == pytest.approx((6 * 78 / np.pi) ** (1 / 3))
    big = order[-1]
    # box voxels z 1..2, y 1..2, x 1..3 plus (1,1,0): mean z=(1.5*12+1)/13
    expected = [(1.5 * 12 + 1) / 13, (1.5 * 12 + 1) / 13, (2 * 12 + 0) / 13]
    assert table.centroid_voxel[big] == pytest.approx(expected)
    assert table.depth_um[big] == pytest.approx(expected[1] * 2.0)
    assert table.touches_border[big]           # x = 0
    assert table.touches_border.all()
    frame = table.as_table()
    assert {"volume_um3", "diameter_um", "centroid_y_um", "depth_um", "touches_border"} <= set(frame)
    assert table.to_dict()["volume_um3"]["median"] == 6.0


def test_interior_particle_does_not_touch_border():
    labels = np.zeros((5, 5, 5), dtype=np.uint8)
    labels[1:4, 1:4, 1:4] = 2
    labels[0, 0, 0] = 2
    table = particle_table(labels, voxel_size=(1, 1, 1))
    assert sorted(zip(table.voxels.tolist(), table.touches_border.tolist())) == [
        (1, True), (27, False)]


def _ball(shape, centre_um, radius_um, voxel_size):
    grids = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, voxel_size)], indexing="ij")
    dist2 = sum((g - c) ** 2 for g, c in zip(grids, centre_um))
    return dist2 <= radius_um ** 2


def test_digitised_ball_volume_within_one_percent():
    voxel_size = (0.2, 0.1, 0.1)
    ball = _ball((40, 70, 70), (4.0, 3.5, 3.5), 3.0, voxel_size)
    labels = ball.astype(np.uint8) * 2
    table = particle_table(labels, voxel_size=voxel_size)
    assert table.count == 1
    assert table.size[0] == pytest.approx(4 / 3 * np.pi * 27, rel=0.01)
    assert table.diameter_um[0] == pytest.approx(6.0, rel=0.004)
    assert table.centroid_um[0] == pytest.approx([4.0, 3.5, 3.5], abs=0.02)


def test_doubling_voxel_size_multiplies_volumes_by_8():
    labels = _hand_volume()
    one = particle_table(labels, voxel_size=(0.5, 0.5, 0.5))
    two = particle_table(labels, voxel_size=(1.0, 1.0, 1.0))
    np.testing.assert_allclose(two.size, 8 * one.size)
    np.testing.assert_allclose(two.diameter_um, 2 * one.diameter_um)


def test_2d_areas_and_equivalent_circle():
    labels = np.zeros((6, 8), dtype=np.uint8)
    labels[1:3, 1:4] = 2
    labels[4:6, 6:8] = 2
    table = particle_table(labels, voxel_size=(0.5, 0.25), depth_axis=0)
    assert table.size_name == "area_um2"
    assert sorted(table.size.tolist()) == [0.5, 0.75]
    assert sorted(table.diameter_um.tolist()) == pytest.approx(
        [2 * np.sqrt(0.5 / np.pi), 2 * np.sqrt(0.75 / np.pi)])
    assert "area_um2" in table.as_table()
    assert "edges_um2" in size_histogram(table).to_dict()


def test_pore_particles_and_errors():
    labels = _hand_volume()
    pores = particle_table(labels, voxel_size=(1, 1, 1), phase="pore")
    assert pores.count == 1 and pores.voxels[0] == labels.size - 16
    with pytest.raises(InputError, match="voxel size"):
        particle_table(labels, voxel_size=None)
    with pytest.raises(InputError, match="connectivity"):
        particle_table(labels, voxel_size=(1, 1, 1), connectivity=5)
    with pytest.raises(InputError, match="phase"):
        particle_table(labels, voxel_size=(1, 1, 1), phase="nmc")


def test_no_particles_gives_null_summary(caplog):
    table = particle_table(np.zeros((3, 3, 3), np.uint8), voxel_size=(1, 1, 1))
    assert table.count == 0
    assert table.to_dict()["volume_um3"] == {"mean": None, "median": None}
    assert "no 'am' particles" in caplog.text
    hist = size_histogram(table)
    assert hist.to_dict()["number_fraction"] == [None] * (len(DEFAULT_EDGES_UM3) - 1)
    assert hist.to_dict()["outside_bins"] == {"number": None, "volume": None}


def test_histogram_hand_counted():
    labels = np.zeros((1, 10, 10), dtype=np.uint8)
    labels[0, 0, 0] = 2                 # 1 voxel  -> 1 um3 (bin [1, 10))
    labels[0, 2, 0:2] = 2               # 2 voxels -> 2 um3
    labels[0, 9, 0:9] = 2               # 9 voxels -> 9 um3
    labels[0, 5, 5:10] = 2              # 5 voxels, but voxel size makes them 5 um3
    table = particle_table(labels, voxel_size=(1, 1, 1), depth_axis=1)
    hist = size_histogram(table, edges=[1, 3, 10], n_regions=2)
    assert hist.counts.tolist() == [2, 2]
    assert hist.number_fraction.tolist() == [0.5, 0.5]
    assert hist.volume_fraction.tolist() == pytest.approx([3 / 17, 14 / 17])
    # depth (y) regions of 5 rows: rows 0, 2 -> region 0; rows 5, 9 -> region 1
    assert hist.region_number_fraction.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert hist.region_edges_um.tolist() == [-0.5, 4.5, 9.5]
    assert len(hist.as_table()) == 6


def test_histogram_out_of_range_counts_in_total():
    labels = np.zeros((1, 4, 4), dtype=np.uint8)
    labels[0, 0, 0] = 2
    labels[0, 2, :] = 2
    table = particle_table(labels, voxel_size=(1, 1, 1))
    hist = size_histogram(table, edges=[2, 10])
    assert hist.number_fraction.tolist() == [0.5]
    assert hist.volume_fraction.tolist() == [0.8]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_relabelling_particles_leaves_statistics_unchanged(seed):
    rng = np.random.default_rng(seed)
    labels = (rng.random((6, 7, 8)) < 0.35).astype(np.uint8) * 2
    ids = label_particles(labels).astype(np.uint32)
    n = int(ids.max())
    perm = np.concatenate([[0], rng.permutation(n) + 1 + rng.integers(0, 5)]).astype(np.uint32)
    relabelled = perm[ids]
    a = particle_table(labels, voxel_size=(1, 2, 3), particle_labels=ids)
    b = particle_table(labels, voxel_size=(1, 2, 3), particle_labels=relabelled)
    assert a.count == b.count == n
    np.testing.assert_allclose(np.sort(a.size), np.sort(b.size))
    key = lambda t: sorted(map(tuple, np.round(t.centroid_um, 9)))  # noqa: E731
    assert key(a) == key(b)
    np.testing.assert_allclose(size_histogram(a).volume_fraction,
                               size_histogram(b).volume_fraction, equal_nan=True)


def test_watershed_splits_two_touching_balls():
    voxel_size = (0.1, 0.1, 0.1)
    shape = (30, 30, 50)
    a = _ball(shape, (1.5, 1.5, 1.3), 1.0, voxel_size)
    b = _ball(shape, (1.5, 1.5, 3.0), 1.0, voxel_size)
    labels = (a | b).astype(np.uint8) * 2
    assert particle_table(labels, voxel_size=voxel_size).count == 1
    for markers in ("h_maxima", "peaks"):
        split = particle_table(labels, voxel_size=voxel_size, split="watershed", markers=markers)
        assert split.count == 2, markers
        assert split.voxels.sum() == (a | b).sum()
        assert np.sort(split.centroid_um[:, 2]) == pytest.approx([1.3, 3.0], abs=0.1)
    assert split_touching(a, voxel_size=voxel_size).max() == 1


def test_histogram_says_what_its_bins_leave_out():
    # three particles of 8, 64 and 4096 voxels of 1 µm³: the last is outside edges ending at 1e3
    labels = np.zeros((20, 40, 40), np.uint8)
    labels[0:2, 0:2, 0:2] = 2
    labels[4:8, 4:8, 4:8] = 2
    labels[4:20, 20:36, 20:36] = 2
    table = particle_table(labels, voxel_size=(1.0, 1.0, 1.0))
    assert sorted(table.size.tolist()) == [8.0, 64.0, 4096.0]
    narrow = size_histogram(table, edges=(1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3))
    assert narrow.outside() == pytest.approx({"number": 1 / 3, "volume": 4096 / (8 + 64 + 4096)})
    assert size_histogram(table, edges=DEFAULT_EDGES_UM3).outside() == {"number": 0.0, "volume": 0.0}

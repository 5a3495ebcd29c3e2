"""Sub-block metrics and their bootstrap summary on volumes with known answers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from electroseg.analysis.contacts import pba_profile
from electroseg.analysis.fractions import volume_fractions
from electroseg.analysis.uncertainty import (
    BlockMetrics,
    subblock_metrics,
    summarize_uncertainty,
)
from electroseg.errors import InputError

VOXEL = (0.05, 0.025, 0.025)


def _tile():
    rng = np.random.default_rng(11)
    return rng.choice(np.array([0, 1, 2], dtype=np.uint8), size=(4, 10, 6), p=[0.3, 0.2, 0.5])


def _am_fraction(block, **_):
    return float(np.mean(block == 2))


def test_identical_tiles_give_zero_spread_and_a_collapsed_interval():
    tile = _tile()
    labels = np.tile(tile, (2, 1, 3))  # 2 x 3 copies across the in-plane axes Z and X
    blocks = subblock_metrics(labels, voxel_size=VOXEL, n_blocks=(2, 3))
    u = summarize_uncertainty(blocks, n_boot=500, seed=1)
    assert blocks.n_blocks == 6 and u.n.tolist() == [6] * len(u.names)
    expected_am = volume_fractions(tile).fractions["am"]
    expected_pba = pba_profile(tile).pooled
    for name, expected in (("volume_fraction_am", expected_am), ("pba_pooled", expected_pba)):
        j = u.names.index(name)
        assert u.mean[j] == pytest.approx(expected, abs=1e-12)
        assert u.std[j] == pytest.approx(0.0, abs=1e-12)
        assert u.ci_low[j] == pytest.approx(expected, abs=1e-12)
        assert u.ci_high[j] == pytest.approx(expected, abs=1e-12)
    assert u.pba_pooled == pytest.approx([expected_pba] * 3, abs=1e-12)


def test_block_counts_and_edges():
    labels = np.zeros((8, 5, 18), dtype=np.uint8)
    by_count = subblock_metrics(labels, voxel_size=VOXEL, n_blocks=(2, 3),
                                metrics={"am": _am_fraction})
    assert by_count.n_blocks == 6
    assert by_count.start[:, 0].tolist() == [0, 0, 0, 4, 4, 4]
    assert by_count.start[:, 2].tolist() == [0, 6, 12] * 2
    assert (by_count.start[:, 1] == 0).all() and (by_count.stop[:, 1] == 5).all()  # depth whole
    by_size = subblock_metrics(labels, voxel_size=VOXEL, block_size=(3, 5),
                               metrics={"am": _am_fraction})
    assert by_size.n_blocks == 2 * 3  # 8 // 3 along Z, 18 // 5 along X; remainders left out
    assert by_size.stop[:, 0].max() == 6 and by_size.stop[:, 2].max() == 15
    one_axis = subblock_metrics(labels[0], voxel_size=(1, 1), n_blocks=4, depth_axis=0,
                                metrics={"am": _am_fraction})
    assert one_axis.n_blocks == 4  # 2-D: blocks along the single in-plane axis
    assert one_axis.stop[:, 1].tolist() == [4, 9, 14, 18] and (one_axis.stop[:, 0] == 5).all()


def test_hand_computed_mean_std_and_interval():
    labels = np.zeros((4, 3, 16), dtype=np.uint8)  # 4 blocks along X with AM share 0, ¼, ½, ¾
    for b, am in enumerate([0, 1, 2, 3]):
        labels[:, :, 4 * b: 4 * b + am] = 2
    u = summarize_uncertainty(subblock_metrics(labels, voxel_size=VOXEL, n_blocks=(1, 4),
                                               metrics={"am": _am_fraction}), seed=5)
    assert u.mean[0] == pytest.approx(0.375)
    assert u.std[0] == pytest.approx(np.sqrt(0.3125 / 3))  # sample std, ddof = 1
    assert 0.0 <= u.ci_low[0] < 0.375 < u.ci_high[0] <= 0.75
    assert u.pba_pooled is None


def test_seeded_bootstrap_is_deterministic_and_contains_the_mean():
    rng = np.random.default_rng(2)
    table = pd.DataFrame({"x": rng.normal(1.0, 0.2, 9), "y": rng.normal(-3.0, 1.0, 9)})
    first = summarize_uncertainty(table, n_boot=2000, seed=7)
    again = summarize_uncertainty(table, n_boot=2000, seed=7)
    other = summarize_uncertainty(table, n_boot=2000, seed=8)
    assert first.ci_low.tolist() == again.ci_low.tolist()
    assert first.ci_high.tolist() == again.ci_high.tolist()
    assert first.ci_low.tolist() != other.ci_low.tolist()
    assert np.all(first.ci_low < first.mean) and np.all(first.mean < first.ci_high)
    assert first.mean == pytest.approx(table.mean().to_numpy())
    assert first.std == pytest.approx(table.std().to_numpy())  # pandas: ddof = 1


def test_pooled_pba_interval_is_a_ratio_of_sums():
    table = pd.DataFrame({"pba_contacts": [1, 3, 2], "pba_surface": [4, 4, 2]})
    u = summarize_uncertainty(table, n_boot=300, seed=0)
    assert u.pba_pooled[0] == pytest.approx(6 / 10)
    assert 0.25 <= u.pba_pooled[1] <= 0.6 <= u.pba_pooled[2] <= 1.0


def test_undefined_block_values_are_left_out():
    def am_or_none(block, **_):
        return {"am": float(np.mean(block == 2)) if (block == 2).any() else None}

    labels = np.zeros((2, 3, 9), dtype=np.uint8)
    labels[:, :, :3] = 2
    labels[:, :, 3:4] = 2
    u = summarize_uncertainty(subblock_metrics(labels, voxel_size=VOXEL, n_blocks=(1, 3),
                                               metrics={"am": am_or_none}))
    assert u.n[0] == 2 and u.mean[0] == pytest.approx((1.0 + 1 / 3) / 2)
    assert u.to_dict()["blocks"]["values"]["am"][2] is None


def test_json_round_trip():
    labels = np.tile(_tile(), (2, 1, 2))
    u = summarize_uncertainty(subblock_metrics(labels, voxel_size=VOXEL), n_boot=200)
    data = json.loads(json.dumps(u.to_dict()))
    assert data["n_blocks"] == 4 and set(data["metrics"]) == set(u.names)
    again = summarize_uncertainty(data, n_boot=200)
    assert again.mean == pytest.approx(u.mean) and again.ci_high == pytest.approx(u.ci_high)
    assert isinstance(BlockMetrics.from_dict(data["blocks"]), BlockMetrics)


def test_bad_arguments_are_named():
    labels = np.zeros((4, 3, 6), dtype=np.uint8)
    with pytest.raises(InputError, match="n_blocks, block_size"):
        subblock_metrics(labels, voxel_size=VOXEL, n_blocks=2, block_size=2)
    with pytest.raises(InputError, match=r"n_blocks: expected at most 6 along axis 2"):
        subblock_metrics(labels, voxel_size=VOXEL, n_blocks=(1, 7))
    with pytest.raises(InputError, match="2 positive integers"):
        subblock_metrics(labels, voxel_size=VOXEL, n_blocks=(1, 2, 3))
    with pytest.raises(InputError, match="metrics: expected names"):
        subblock_metrics(labels, voxel_size=VOXEL, metrics=["tortuosity"])
    with pytest.raises(InputError, match="voxel size"):
        subblock_metrics(labels, voxel_size=None)
    with pytest.raises(InputError, match="applies to phases"):
        subblock_metrics(labels, voxel_size=VOXEL, phases=("solid", "void"), metrics=["pba"])
    table = pd.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(InputError, match="n_boot"):
        summarize_uncertainty(table, n_boot=0)
    with pytest.raises(InputError, match="confidence"):
        summarize_uncertainty(table, confidence=95)
    with pytest.raises(InputError, match="numeric"):
        summarize_uncertainty(pd.DataFrame({"x": ["a", "b"]}))


def test_real_volume_where_am_only_touches_cbd(shared_data):
    import tifffile

    raw = tifffile.imread(shared_data / "inpainter" / "unmasked.tif")
    labels = np.select([raw == 0, raw == 2, raw == 1], [0, 1, 2], 255).astype(np.uint8)
    blocks = subblock_metrics(labels[:, :64, :], voxel_size=(1, 1, 1), n_blocks=(2, 2),
                              metrics=["pba"])
    u = summarize_uncertainty(blocks, n_boot=200)
    j = u.names.index("pba_pooled")
    # Published: NMC never touches pore in this volume, so PBA is exactly 1 in every block.
    assert (u.mean[j], u.std[j], u.ci_low[j], u.ci_high[j]) == (1.0, 0.0, 1.0, 1.0)


def test_equal_blocks_average_to_the_whole_volume_fraction():
    rng = np.random.default_rng(8)
    labels = rng.choice(np.array([0, 1, 2, 255], np.uint8), size=(6, 4, 9), p=[0.3, 0.2, 0.4, 0.1])
    labels[labels == 255] = 0  # equal counted voxels per block: no ignore
    u = summarize_uncertainty(subblock_metrics(labels, voxel_size=VOXEL, n_blocks=(3, 3),
                                               metrics=["volume_fraction", "pba"]), n_boot=100)
    whole = volume_fractions(labels).fractions
    for phase in ("pore", "cbd", "am"):
        assert u.mean[u.names.index(f"volume_fraction_{phase}")] == pytest.approx(whole[phase])
    # Pairs that straddle a block edge are lost; every in-block pair is counted once.
    profile = pba_profile(labels)
    blocks = u.blocks
    assert blocks.column("pba_surface").sum() <= profile.surface.sum()
    assert blocks.column("pba_contacts").sum() <= profile.contacts.sum()


def test_subblock_particle_sizes_are_the_whole_volumes_particles_by_centroid():
    from electroseg.analysis import analyze_labels, particle_table

    # a 3x3x3 cube whose centroid is in the left half and a 5-voxel bar straddling the middle
    # with its centroid in the right half: the left block's particles are the cube alone, the
    # right block's the bar alone, each whole (the block's own clusters would cut the bar)
    labels = np.zeros((3, 4, 12), np.uint8)
    labels[0:3, 0:3, 0:3] = 2   # cube: 27 voxels, centroid x = 1
    labels[1, 3, 4:9] = 2       # bar: 5 voxels, x = 4..8, centroid x = 6 (>= 5.5: right block)
    table = particle_table(labels, voxel_size=(1, 1, 1), depth_axis=1)
    assert table.count == 2
    blocks = subblock_metrics(labels, voxel_size=(1, 1, 1), depth_axis=1, n_blocks=(1, 2),
                              metrics=["particles"], particles=table)
    assert blocks.column("particle_volume_um3_mean").tolist() == [27.0, 5.0]
    own = subblock_metrics(labels, voxel_size=(1, 1, 1), depth_axis=1, n_blocks=(1, 2), metrics=["particles"])
    assert own.column("particle_volume_um3_mean").tolist() == [(27.0 + 2.0) / 2, 3.0]  # the cut bar
    result = analyze_labels(labels, voxel_size=(1, 1, 1), depth_axis=1, n_blocks=(1, 2))
    assert result.uncertainty is not None


def test_pooled_volume_weighted_median_by_centroid_hand_counted():
    """Particles put in the block of their centroid, drawn blocks pooled with multiplicity: the
    cube (27 voxels, d³ ∝ 27) left, the bar (5 voxels) right. Pooled, half the d³ lies in the
    cube, so D50 by volume is the cube's diameter; only a resample drawing the right block
    twice gives the bar's (probability 1/4: inside a 95 % interval)."""
    from electroseg.analysis import particle_table

    labels = np.zeros((3, 4, 12), np.uint8)
    labels[0:3, 0:3, 0:3] = 2
    labels[1, 3, 4:9] = 2
    table = particle_table(labels, voxel_size=(1, 1, 1), depth_axis=1)
    cube, bar = sorted(table.diameter_um, reverse=True)
    blocks = subblock_metrics(labels, voxel_size=(1, 1, 1), depth_axis=1, n_blocks=(1, 2),
                              metrics=["particles"], particles=table)
    u = summarize_uncertainty(blocks, n_boot=400, seed=3, particles=table)
    assert u.particle_weighted_median.tolist() == pytest.approx([cube, bar, cube])
    entry = u.to_dict()["particle_volume_weighted_median_from_particles"]
    assert entry == pytest.approx({"estimate": cube, "ci_low": bar, "ci_high": cube})
    # identical blocks: every resample pools the same particles, the interval collapses
    twin = np.concatenate([labels, labels], axis=2)  # the same two particles in each half
    table = particle_table(twin, voxel_size=(1, 1, 1), depth_axis=1)
    blocks = subblock_metrics(twin, voxel_size=(1, 1, 1), depth_axis=1, n_blocks=(1, 2),
                              metrics=["particles"], particles=table)
    assert table.count == 4
    u = summarize_uncertainty(blocks, n_boot=200, particles=table)
    assert u.particle_weighted_median.tolist() == pytest.approx([cube] * 3)
    # without a particle table (split="none" in analyze_labels) there is none
    assert summarize_uncertainty(blocks, n_boot=10).to_dict()["particle_volume_weighted_median_from_particles"] is None

"""Representative volume: the spread's fall with volume, checked against exact binomial statistics."""

import numpy as np
import pytest

from electroseg.analysis import analyze_labels, pba_profile
from electroseg.analysis.rve import representative_volume


@pytest.mark.parametrize("seed", range(4))
def test_independent_voxels_follow_the_binomial_law(seed):
    rng = np.random.default_rng(seed)
    p = 0.3
    labels = (rng.random((64, 64, 64)) < p).astype(np.uint8)  # depth axis 1 kept whole
    rve = representative_volume(labels, voxel_size=(1, 1, 1), phases=("pore", "am"))
    fit = rve["metrics"]["volume_fraction_am"]
    assert rve["grids"] == [8, 4, 2] and fit["n_blocks"] == [64, 16, 4]
    # the std of a fraction over N independent voxels is sqrt(p (1 - p) / N) exactly
    exact = np.sqrt(p * (1 - p) / np.array(fit["block_volume_um3"]))
    assert fit["std"][0] == pytest.approx(exact[0], rel=0.2)  # 64 blocks: about 9 % sampling error
    assert fit["std"][1] == pytest.approx(exact[1], rel=0.45)  # 16 blocks
    assert -0.5 <= fit["slope"] <= -0.3
    whole = 1.96 * np.sqrt(p * (1 - p) / labels.size)
    assert 0.7 * whole <= fit["half_width"] <= 2.1 * whole  # a shallower fitted slope errs on the safe side
    assert fit["sufficient"] and fit["volume_needed_um3"] < labels.size


def test_a_trend_across_the_specimen_is_never_representative():
    x = np.linspace(0, 1, 96)
    rng = np.random.default_rng(0)
    labels = (rng.random((96, 32, 96)) < 0.1 + 0.8 * x[None, None, :]).astype(np.uint8)  # am rises along X
    fit = representative_volume(labels, voxel_size=(1, 1, 1), phases=("pore", "am"))["metrics"]["volume_fraction_am"]
    assert fit["slope"] > -0.2 and not fit["sufficient"]
    assert fit["volume_needed_um3"] is None or fit["volume_needed_um3"] > 50 * labels.size


def test_blocks_add_up_to_the_headline_pba_and_analyze_reports_it(tmp_path):
    rng = np.random.default_rng(1)
    labels = rng.choice(np.array([0, 1, 2], np.uint8), size=(32, 40, 48), p=[0.4, 0.2, 0.4])
    result = analyze_labels(labels, voxel_size=(0.1, 0.05, 0.05), collector_connectivity=False)
    rve = result.to_dict()["representative_volume"]
    assert set(rve["metrics"]) == {"volume_fraction_pore", "volume_fraction_cbd", "volume_fraction_am", "pba_pooled"}
    assert rve["imaged_volume_um3"] == pytest.approx(labels.size * 0.1 * 0.05 * 0.05)
    from electroseg.analysis.rve import _block_counts

    starts = [np.array([0, 16]), np.array([0, 24])]
    voxels, contacts, surface = _block_counts(labels, 1, starts, 3, (2, 1))
    assert contacts.sum() / surface.sum() == pytest.approx(pba_profile(labels, depth_axis=1).pooled)
    assert voxels[..., 2].sum() == np.count_nonzero(labels == 2)
    from electroseg.analysis import write_analysis

    written = [p.name for p in write_analysis(result, tmp_path)]
    assert "representative_volume.png" in written


def test_too_small_for_two_grids_gives_none():
    labels = np.zeros((8, 8, 8), np.uint8)
    assert representative_volume(labels, voxel_size=(1, 1, 1)) is None


def test_block_counts_by_hand():
    # depth along axis 0; two blocks of two columns. Row 0: AM-CBD, CBD-AM (both in block 0: a
    # pair belongs to its lower-index voxel), AM-pore (block 1). Row 1: AM-AM and pairs with an
    # unlabelled voxel count nothing.
    from electroseg.analysis.rve import _block_counts

    labels = np.array([[2, 1, 2, 0], [2, 2, 255, 1]], np.uint8)
    voxels, contacts, surface = _block_counts(labels, 0, [np.array([0, 2])], 3, (2, 1))
    assert voxels.tolist() == [[0, 1, 3], [1, 1, 1]]
    assert contacts.tolist() == [2, 0]
    assert surface.tolist() == [2, 1]  # surface: AM against any other labelled phase, CBD included

"""Two-sample comparison: identical samples, known shifts and hand-counted pooled PBA."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from electroseg.analysis.sample_comparison import compare_samples
from electroseg.analysis.uncertainty import subblock_metrics, summarize_uncertainty
from electroseg.errors import InputError


def _sample(seed: int, n: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"pba_pooled": rng.normal(0.55, 0.02, n),
                         "volume_fraction_am": rng.normal(0.69, 0.01, n)})


def test_identical_samples_differ_by_zero():
    a = _sample(0)
    c = compare_samples(a, a.copy(), n_boot=2000, seed=3)
    assert c.difference == pytest.approx([0.0, 0.0], abs=1e-15)
    assert np.all(c.ci_low < 0) and np.all(c.ci_high > 0)
    assert not c.excludes_zero.any()


def test_known_shift_is_recovered():
    a = _sample(1)
    b = a.assign(pba_pooled=a["pba_pooled"] - 0.11, volume_fraction_am=a["volume_fraction_am"])
    c = compare_samples(a, b, names=("pristine", "cycled"), seed=0)
    assert c.difference == pytest.approx([-0.11, 0.0], abs=1e-12)
    assert c.ci_low[0] < -0.11 < c.ci_high[0]
    assert c.excludes_zero.tolist() == [True, False]
    table = c.as_table()
    assert table.columns[:3].tolist() == ["metric", "pristine", "cycled"]
    assert table["pristine"].tolist() == pytest.approx(a.mean().tolist())


def test_constant_blocks_collapse_the_interval_to_the_shift():
    a = pd.DataFrame({"x": [2.0] * 5})
    b = pd.DataFrame({"x": [2.5] * 3})
    c = compare_samples(a, b, n_boot=100)
    assert (c.difference[0], c.ci_low[0], c.ci_high[0]) == pytest.approx((0.5, 0.5, 0.5))
    assert c.n_blocks == (5, 3)


def test_pooled_pba_difference_from_counts():
    a = pd.DataFrame({"pba_contacts": [1, 3], "pba_surface": [4, 4]})  # ΣC/ΣS = 4/8
    b = pd.DataFrame({"pba_contacts": [1, 1], "pba_surface": [4, 4]})  # 2/8
    c = compare_samples(a, b, n_boot=500, seed=2)
    pooled_a, pooled_b, difference, low, high = c.pba_pooled
    assert (pooled_a, pooled_b, difference) == pytest.approx((0.5, 0.25, -0.25))
    # b is 0.25 in every resample; a ranges over 0.25 .. 0.75 (both blocks the same)
    assert -0.5 <= low <= -0.25 <= high <= 0.0
    d = c.to_dict()["pba_pooled_from_counts"]
    assert d["pristine"] == 0.5 and d["cycled"] == 0.25


def test_from_uncertainty_dicts_and_deterministic():
    rng = np.random.default_rng(4)
    labels_a = rng.choice(np.array([0, 1, 2], np.uint8), size=(8, 6, 8), p=[0.3, 0.3, 0.4])
    labels_b = rng.choice(np.array([0, 1, 2], np.uint8), size=(8, 6, 8), p=[0.4, 0.1, 0.5])
    ua = summarize_uncertainty(subblock_metrics(labels_a, voxel_size=(1, 1, 1)), n_boot=100)
    ub = summarize_uncertainty(subblock_metrics(labels_b, voxel_size=(1, 1, 1)), n_boot=100)
    from_objects = compare_samples(ua, ub, n_boot=400, seed=9)
    from_json = compare_samples(json.loads(json.dumps(ua.to_dict())), ub.to_dict(),
                                n_boot=400, seed=9)
    assert from_objects.metrics == from_json.metrics
    assert from_objects.ci_low.tolist() == pytest.approx(from_json.ci_low.tolist())
    j = from_objects.metrics.index("volume_fraction_am")
    expected = (ub.mean[ub.names.index("volume_fraction_am")]
                - ua.mean[ua.names.index("volume_fraction_am")])
    assert from_objects.difference[j] == pytest.approx(expected)
    assert json.dumps(from_objects.to_dict())


def test_metrics_in_one_sample_only_are_left_out():
    a = pd.DataFrame({"x": [1.0, 2.0], "y": [0.0, 1.0]})
    b = pd.DataFrame({"x": [1.0, 3.0], "z": [5.0, 5.0]})
    assert compare_samples(a, b).metrics == ("x",)
    with pytest.raises(InputError, match="metrics in common"):
        compare_samples(a[["y"]], b[["z"]])


def test_bad_arguments_are_named():
    a = pd.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(InputError, match="names"):
        compare_samples(a, a, names=("same", "same"))
    with pytest.raises(InputError, match="seed"):
        compare_samples(a, a, seed=-1)
    with pytest.raises(InputError, match="b: expected BlockMetrics"):
        compare_samples(a, [1.0, 2.0])

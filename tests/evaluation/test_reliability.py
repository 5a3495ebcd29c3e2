"""Reliability table: checked on draws whose calibration is known by construction."""

import numpy as np
import pytest

from electroseg.evaluation.reliability import reliability


def _draws(gap: float, n: int = 200_000, seed: int = 0):
    """Two classes; confidence c uniform in [0.5, 1]; the top class is right with probability c - gap."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.5, 1.0, n)
    top = rng.integers(0, 2, n)
    right = rng.random(n) < c - gap
    truth = np.where(right, top, 1 - top)
    probabilities = np.where(top == 0, [c, 1 - c], [1 - c, c])
    return probabilities, truth


def test_calibrated_draws_have_no_calibration_error():
    table = reliability(*_draws(0.0))
    assert table["ece"] < 0.01 and table["voxels"] == 200_000
    for conf, acc in zip(table["confidence"], table["accuracy"]):
        assert acc == pytest.approx(conf, abs=0.02)


def test_over_confidence_shows_as_its_gap_and_ignored_voxels_are_left_out():
    probabilities, truth = _draws(0.1)
    truth[:1000] = 255
    table = reliability(probabilities, truth)
    assert table["ece"] == pytest.approx(0.1, abs=0.01) and table["voxels"] == 199_000
    assert table["mean_confidence"] - table["accuracy_overall"] == pytest.approx(0.1, abs=0.01)

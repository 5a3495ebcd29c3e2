"""Thresholds: exact labels of step images, phase_order mapping, bad inputs."""

import numpy as np
import pytest

from electroseg.classical import apply_thresholds, class_to_label, compute_thresholds, segment_volume
from electroseg.errors import InputError

PLAIN = {"gradient": None, "cleanup": None, "smooth": None}


def _steps(levels=(10.0, 50.0, 90.0), width=5, rows=4):
    """Columns of constant grey levels: level i covers columns [i*width, (i+1)*width)."""
    truth = np.repeat(np.arange(len(levels)), width)[None, :].repeat(rows, axis=0).astype(np.uint8)
    return np.asarray(levels, np.float32)[truth], truth


def test_multiotsu_three_level_step_image_gives_exact_labels():
    image, truth = _steps()
    seg = segment_volume(image, **PLAIN)
    np.testing.assert_array_equal(seg.labels, truth)
    assert 10 < seg.thresholds[0] < 50 < seg.thresholds[1] < 90


def test_multiotsu_noisy_volume_with_unequal_fractions():
    rng = np.random.default_rng(0)
    truth = rng.choice(3, size=(4, 32, 32), p=[0.3, 0.1, 0.6]).astype(np.uint8)
    image = np.array([40.0, 120.0, 200.0], np.float32)[truth] + rng.normal(0, 5, truth.shape).astype(np.float32)
    np.testing.assert_array_equal(segment_volume(image, **PLAIN).labels, truth)


def test_phase_order_permutation_maps_to_phase_indices():
    image, truth = _steps()
    # brightest = pore (Pt-infiltrated), darkest = cbd: label = index into phases, not intensity rank
    seg = segment_volume(image, phase_order=["cbd", "am", "pore"], **PLAIN)
    np.testing.assert_array_equal(seg.labels, np.array([1, 2, 0], np.uint8)[truth])
    assert seg.phase_order == ("cbd", "am", "pore")


def test_repeated_phase_in_phase_order():
    image, truth = _steps(levels=(5.0, 40.0, 80.0, 250.0))
    seg = segment_volume(image, phase_order=["pore", "cbd", "am", "pore"], **PLAIN)
    np.testing.assert_array_equal(seg.labels, np.array([0, 1, 2, 0], np.uint8)[truth])


def test_fraction_thresholds_match_expected_fractions():
    image = np.arange(100, dtype=np.float32).reshape(10, 10)
    seg = segment_volume(image, method="fractions", fractions=[0.2, 0.3, 0.5], **PLAIN)
    assert np.bincount(seg.labels.ravel()).tolist() == [20, 30, 50]
    by_name = segment_volume(image, method="fractions", fractions={"am": 5, "pore": 2, "cbd": 3}, **PLAIN)
    np.testing.assert_array_equal(by_name.labels, seg.labels)


def test_manual_thresholds():
    image = np.array([[0.0, 1.0, 2.0, 3.0, 4.0]])
    seg = segment_volume(image, method="manual", thresholds=[1.5, 3.0], **PLAIN)
    assert seg.labels.tolist() == [[0, 0, 1, 2, 2]]


def test_per_slice_thresholds_follow_brightness_drift():
    image, truth = _steps()
    volume = np.stack([image + 30.0 * k for k in range(5)])
    cuts = compute_thresholds(volume, phase_order=("pore", "cbd", "am"), per_slice=True, z_window=1)
    assert cuts.shape == (5, 2)
    np.testing.assert_array_equal(apply_thresholds(volume, cuts), np.broadcast_to(truth, volume.shape))


def test_class_to_label():
    assert class_to_label(("pore", "cbd", "am"), ("pore", "cbd", "am")).tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image": np.full((4, 4), 3.0)}, "at least 3 distinct grey values.*got 1"),
        ({"image": np.array([[0.0, 1.0], [0.0, 1.0]])}, "at least 3 distinct grey values.*got 2"),
        ({"method": "manual", "thresholds": [5.0, 2.0]}, "strictly increasing"),
        ({"method": "manual", "thresholds": [5.0]}, "expected 2 finite values"),
        ({"phase_order": ["pore", "am"]}, "missing: \\['cbd'\\]"),
        ({"phase_order": ["pore", "cbd", "nmc"]}, "unknown: \\['nmc'\\]"),
        ({"method": "kmeans"}, "method: expected one of"),
        ({"method": "fractions"}, "fractions"),
        ({"method": "fractions", "fractions": [1, 2]}, "expected 3 non-negative"),
        ({"image": np.zeros((2, 2, 2, 2))}, "expected a numeric 2-D image"),
        ({"image": np.array([[0.0, np.nan, 2.0]])}, "finite"),
        ({"gradient": {"width": 3}}, "gradient: unexpected options"),
    ],
)
def test_bad_inputs_raise_input_error(kwargs, match):
    kwargs = dict(kwargs)
    image = kwargs.pop("image", _steps()[0])
    with pytest.raises(InputError, match=match):
        segment_volume(image, **kwargs)


def test_threshold_sensitivity_hand_counted():
    from electroseg.classical import threshold_sensitivity

    # one row of grey values 0..9; AM (bright) next to CBD only at the 5|6 pixel pair
    image = np.tile(np.arange(10, dtype=np.float32), (3, 1))
    result = threshold_sensitivity(image, thresholds=[2.5, 5.5], delta=1.0, gradient=None, cleanup=None,
                                   depth_axis=0)
    table = result.as_table()
    assert table["threshold_index"].tolist() == [-1, 0, 0, 1, 1]
    # baseline: pore 0-2 (3 px), cbd 3-5 (3 px), am 6-9 (4 px) per row
    assert table.loc[0, ["fraction_pore", "fraction_cbd", "fraction_am"]].tolist() == pytest.approx([0.3, 0.3, 0.4])
    # threshold 1 moved +1 -> am is 7-9
    assert table.loc[4, "fraction_am"] == pytest.approx(0.3)
    # every AM surface pair along X is the single cbd|am pair: PBA = 1 in all variants
    assert table["pba_pooled"].tolist() == pytest.approx([1.0] * 5)
    assert result.max_change()["fraction_am"] == pytest.approx(0.1)


def test_segment_volume_per_slice_follows_flicker_where_global_fails():
    image, truth = _steps(width=6)
    volume = np.stack([image * (1.0 + 0.6 * k) for k in range(5)])  # strong brightness drift along Z
    expected = np.broadcast_to(truth, volume.shape)
    per_slice = segment_volume(volume, per_slice=True, z_window=1, **PLAIN)
    np.testing.assert_array_equal(per_slice.labels, expected)
    assert per_slice.thresholds.shape == (5, 2)
    assert 0.0 <= per_slice.confidence.min() and per_slice.confidence.max() <= 1.0
    assert not np.array_equal(segment_volume(volume, **PLAIN).labels, expected)

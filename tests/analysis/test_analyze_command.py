"""``electroseg analyze`` end to end on small label files written under tmp_path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from electroseg.cli import main
from electroseg.io import write_tiff


def _labels(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = rng.choice(np.array([0, 85, 170], np.uint8), size=(8, 16, 16), p=[0.4, 0.2, 0.4])
    labels[2:6, 4:10, 4:10] = 170
    return labels


def test_single_input_with_label_values(tmp_path, capsys):
    path = write_tiff(tmp_path / "labels.tif", _labels(0), voxel_size=(0.05, 0.03, 0.03))
    out = tmp_path / "out"
    status = main(["analyze", f"input={path}", f"out={out}", "label_values=[0,85,170]",
                   "uncertainty=false"])
    assert status == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    stored = _labels(0)
    assert metrics["volume_fraction"]["am"] == pytest.approx(np.mean(stored == 170))
    assert metrics["voxel_size_um"] == pytest.approx([0.05, 0.03, 0.03])
    assert metrics["depth_axis"] == 1
    for name in ("particles.csv", "pba_depth.csv", "volume_fraction_profile.csv", "psd.png",
                 "pba_vs_depth.png", "volume_fraction_profile.png"):
        assert (out / name).exists(), name


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_stored_ignore_value_below_the_phase_count(tmp_path, capsys, executor):
    # unlabelled stored as 0 and the phases as 1, 2, 3: read_labels maps 0 to 255, so the analysis
    # must not take 0 (pore's index in memory) as its ignore value
    stored = np.array([0, 85, 170], np.uint8)[np.searchsorted([0, 85, 170], _labels(1))] // 85 + 1
    stored[:, :3] = 0
    path = write_tiff(tmp_path / "labels.tif", stored, voxel_size=(0.05, 0.03, 0.03))
    out = tmp_path / "out"
    status = main(["analyze", f"input={path}", f"out={out}", "label_values=[1,2,3]", "ignore_value=0",
                   "split=none", "figures=false", f"executor={executor}"])
    assert status == 0, capsys.readouterr().err
    fractions = json.loads((out / "metrics.json").read_text())["volume_fraction"]
    labelled = stored[stored != 0]
    for value, phase in ((1, "pore"), (2, "cbd"), (3, "am")):
        assert fractions[phase] == pytest.approx(np.mean(labelled == value))


def test_segmentation_and_hand_labels_stored_with_other_values(tmp_path, capsys):
    # electroseg's labels name their phases (value i = phase i); the hand labels store pore = 2,
    # am = 1, unlabelled = 0 (NREL's scribbles): label_values / ignore_value serve the hand labels,
    # and the segmentation is still read by its names (it was read as all 'am': pore = 0 = ignore)
    rng = np.random.default_rng(4)
    segmentation = (rng.random((6, 20, 20)) < 0.6).astype(np.uint8)  # 0 pore, 1 am
    seg = write_tiff(tmp_path / "seg.tif", segmentation, voxel_size=(0.4, 0.4, 0.4), phases=("pore", "am"))
    hand = np.zeros_like(segmentation)
    hand[2] = np.where(segmentation[2] == 0, 2, 1)
    hand_path = write_tiff(tmp_path / "hand.tif", hand, voxel_size=(0.4, 0.4, 0.4))
    out = tmp_path / "out"
    status = main(["analyze", f"input={seg}", f"out={out}", "phases=[pore,am]", f"hand_labels={hand_path}",
                   "label_values=[2,1]", "ignore_value=0", "figures=false", "split=none"])
    assert status == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["volume_fraction"]["pore"] == pytest.approx(np.mean(segmentation == 0))
    check = metrics["uncertainty"]["segmentation_check"]
    assert check["source"].endswith("hand.tif")


def test_label_values_per_sample(tmp_path, capsys):
    # two sources that store the phases differently: one label_values per sample
    first = write_tiff(tmp_path / "a.tif", _labels(0), voxel_size=(0.05, 0.03, 0.03))  # 0, 85, 170
    second_values = _labels(1) // 85  # 0, 1, 2
    second = write_tiff(tmp_path / "b.tif", second_values.astype(np.uint8), voxel_size=(0.05, 0.03, 0.03))
    out = tmp_path / "out"
    common = [f"inputs={{a: {first}, b: {second}}}", "uncertainty=false", "figures=false", "split=none"]
    status = main(["analyze", *common, f"out={out}", "label_values={a: [0,85,170], b: [0,1,2]}"])
    assert status == 0, capsys.readouterr().err
    for name, stored, am in (("a", _labels(0), 170), ("b", second_values, 2)):
        metrics = json.loads((out / name / "metrics.json").read_text())
        assert metrics["volume_fraction"]["am"] == pytest.approx(np.mean(stored == am))
    assert main(["analyze", *common, f"out={tmp_path / 'x'}", "label_values={a: [0,85,170], c: [0,1,2]}"]) == 2
    assert "label_values: names ['c'] are not among the samples ['a', 'b']" in capsys.readouterr().err


def test_missing_voxel_size_and_unmapped_values_fail_cleanly(tmp_path, capsys):
    path = tmp_path / "labels.npy"
    np.save(path, _labels(0))
    assert main(["analyze", f"input={path}", f"out={tmp_path / 'a'}",
                 "label_values=[0,85,170]"]) == 2
    err = capsys.readouterr().err
    assert "labels.npy" in err and "voxel_size" in err
    assert main(["analyze", f"input={path}", f"out={tmp_path / 'b'}",
                 "voxel_size=[1,1,1]"]) == 2
    err = capsys.readouterr().err
    assert "85" in err and "label_values" in err
    assert not (tmp_path / "a" / "metrics.json").exists()


def test_two_named_inputs_overlay_and_compare(tmp_path, capsys):
    a = write_tiff(tmp_path / "a.tif", _labels(1), voxel_size=(0.05, 0.03, 0.03))
    b = write_tiff(tmp_path / "b.tif", _labels(2), voxel_size=(0.05, 0.03, 0.03))
    out = tmp_path / "out"
    status = main(["analyze", f"inputs={{pristine: {a}, cycled: {b}}}", f"out={out}",
                   "label_values=[0,85,170]", "n_blocks=2"])
    assert status == 0, capsys.readouterr().err
    assert (out / "pristine" / "metrics.json").exists()
    assert (out / "cycled" / "particles.csv").exists()
    assert (out / "psd.png").exists()
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["samples"] == ["pristine", "cycled"]
    assert comparison["total"] is None  # no hand labels: the segmentation's error is not measured
    metrics = json.loads((out / "cycled" / "metrics.json").read_text())
    assert metrics["uncertainty"]["n_blocks"] == 4


def test_two_samples_with_hand_labels_compare_their_corrected_estimates(tmp_path, capsys):
    """comparison.json's ``total``: b − a of each sample's corrected estimate, the two total
    intervals' half widths added in quadrature on each side."""
    paths = {}
    for name, seed in (("pristine", 1), ("cycled", 2)):
        labels = _labels(seed)
        hand = np.full_like(labels, 255)           # unlabelled: the default ignore_value
        hand[3:5] = labels[3:5]                    # an adjacent pair of slices, labelled as segmented
        hand[3, :, :3] = 85                        # but the hand says CBD along one edge
        paths[name] = (write_tiff(tmp_path / f"{name}.tif", labels, voxel_size=(0.05, 0.03, 0.03)),
                       write_tiff(tmp_path / f"{name}_hand.tif", hand, voxel_size=(0.05, 0.03, 0.03)))
    out = tmp_path / "out"
    status = main(["analyze", f"inputs={{pristine: {paths['pristine'][0]}, cycled: {paths['cycled'][0]}}}",
                   f"hand_labels={{pristine: {paths['pristine'][1]}, cycled: {paths['cycled'][1]}}}",
                   f"out={out}", "label_values={pristine: [0,85,170], cycled: [0,85,170]}", "n_blocks=2",
                   "figures=false", "split=none"])
    assert status == 0, capsys.readouterr().err
    comparison = json.loads((out / "comparison.json").read_text())
    totals = [json.loads((out / n / "metrics.json").read_text())["uncertainty"]["total"] for n in ("pristine", "cycled")]
    (a, b) = (t["pba_pooled"] for t in totals)
    found = comparison["total"]["pba_pooled"]
    assert found["difference"] == pytest.approx(b["estimate"] - a["estimate"])
    assert found["ci_low"] == pytest.approx(found["difference"] - np.hypot(b["estimate"] - b["ci_low"],
                                                                           a["ci_high"] - a["estimate"]))
    assert found["ci_high"] == pytest.approx(found["difference"] + np.hypot(b["ci_high"] - b["estimate"],
                                                                            a["estimate"] - a["ci_low"]))
    assert found["excludes_zero"] == (found["ci_low"] > 0 or found["ci_high"] < 0)
    assert set(comparison["total"]) >= {"volume_fraction_cbd", "volume_fraction_am"}


"""`electroseg segment` end to end on a tiny synthetic FIB-SEM stack."""

import json

import numpy as np
import pytest
import tifffile

from electroseg.cli import main
from electroseg.io import read_volume, write_tiff


@pytest.fixture(scope="module")
def tiny_sample():
    from electroseg.synthetic import load_preset, make_sample

    return make_sample(load_preset("tiny"), seed=0)


def _iou(a, b, phase):
    return ((a == phase) & (b == phase)).sum() / ((a == phase) | (b == phase)).sum()


@pytest.mark.slow
def test_segment_writes_labels_confidence_thresholds_and_qc(tmp_path, tiny_sample):
    image_path = write_tiff(tmp_path / "image.tif", tiny_sample.images["sem"], voxel_size=tiny_sample.voxel_size)
    out = tmp_path / "out"
    status = main(["segment", f"input={image_path}", f"out={out}", "preprocess=fibsem", "analyze=true",
                   "sensitivity_delta=5"])
    assert status == 0
    labels = read_volume(out / "labels.tif")
    assert labels.voxel_size == pytest.approx(tiny_sample.voxel_size)
    assert labels.numpy().dtype == np.uint8 and labels.numpy().shape == tiny_sample.labels.shape
    confidence = tifffile.imread(out / "confidence.tif")
    assert 0.0 <= confidence.min() and confidence.max() <= 1.0
    record = json.loads((out / "thresholds.json").read_text())
    assert record["phase_order"] == ["pore", "cbd", "am"] and len(record["thresholds"]) == 2
    assert len(record["preprocess"]["shifts"]) == tiny_sample.labels.shape[0]
    for name in ("shifts.csv", "shifts.png", "qc_preprocess.png", "metrics.json", "config.yaml"):
        assert (out / name).is_file(), name
    sensitivity = json.loads((out / "threshold_sensitivity.json").read_text())
    assert [row["shift"] for row in sensitivity["rows"]] == [0.0, -5.0, 5.0, -5.0, 5.0]


def test_segment_denoised_finds_the_particles(tmp_path, tiny_sample):
    image_path = write_tiff(tmp_path / "image.tif", tiny_sample.images["sem"], voxel_size=tiny_sample.voxel_size)
    out = tmp_path / "out"
    assert main(["segment", f"input={image_path}", f"out={out}", "preprocess=denoise"]) == 0
    labels = read_volume(out / "labels.tif").numpy()
    plain = tmp_path / "plain"
    assert main(["segment", f"input={image_path}", f"out={plain}", "segmenter=multiotsu"]) == 0
    # AM of the synthetic truth (65 % of the volume) is found, better than by plain multi-Otsu
    assert _iou(labels, tiny_sample.labels, 2) > 0.65
    assert _iou(labels, tiny_sample.labels, 2) > _iou(read_volume(plain / "labels.tif").numpy(), tiny_sample.labels, 2)


def test_segment_bad_phase_order_is_one_line_error(tmp_path, tiny_sample, capsys):
    image_path = write_tiff(tmp_path / "image.tif", tiny_sample.images["sem"], voxel_size=tiny_sample.voxel_size)
    status = main(["segment", f"input={image_path}", f"out={tmp_path / 'out'}", "phase_order=[pore,am]"])
    assert status == 2
    err = capsys.readouterr().err
    assert "phase_order" in err and "missing" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "labels.tif").exists()


def test_segment_analyze_without_voxel_size_writes_nothing(tmp_path, tiny_sample, capsys):
    image_path = tmp_path / "image.tif"
    tifffile.imwrite(image_path, tiny_sample.images["sem"][0])  # a 2-D image without a voxel size
    status = main(["segment", f"input={image_path}", f"out={tmp_path / 'out'}", "analyze=true"])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "voxel_size=[y,x]" in err and "image.tif" in err
    assert not (tmp_path / "out").exists()  # refused before segmenting, not after writing the labels


def test_segment_missing_input(tmp_path, capsys):
    assert main(["segment", f"input={tmp_path / 'nope.tif'}", f"out={tmp_path / 'o'}"]) == 2
    assert "nope.tif" in capsys.readouterr().err


def test_segment_registers_on_the_marker_band_and_crops_it(tmp_path, tiny_sample):
    from electroseg.synthetic import load_preset, make_images

    # the same acquisition with the cap and its tracking marks in the top 32 rows
    image = make_images(tiny_sample.labels, load_preset("tiny"), seed=0, fiducial_rows=32)[0]["sem"]
    image_path = write_tiff(tmp_path / "image.tif", image, voxel_size=tiny_sample.voxel_size)
    out = tmp_path / "out"
    assert main(["segment", f"input={image_path}", f"out={out}", "preprocess=fibsem_markers"]) == 0
    assert read_volume(out / "labels.tif").numpy().shape == tiny_sample.labels.shape
    shifts = np.array(json.loads((out / "thresholds.json").read_text())["preprocess"]["shifts"])
    truth = tiny_sample.shifts - tiny_sample.shifts[0]
    assert np.sqrt(np.mean(np.sum((shifts - truth) ** 2, axis=1))) < 0.2


def test_segment_fiducial_roi_outside_the_image_is_one_line_error(tmp_path, tiny_sample, capsys):
    image_path = write_tiff(tmp_path / "image.tif", tiny_sample.images["sem"], voxel_size=tiny_sample.voxel_size)
    status = main(["segment", f"input={image_path}", f"out={tmp_path / 'out'}", "preprocess=fibsem_markers",
                   "preprocess.steps.0.fiducial_roi=[[0,4],null]"])
    assert status == 2
    err = capsys.readouterr().err
    assert "fiducial_roi" in err and "fewer than 8 pixels" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "labels.tif").exists()


def test_segment_registers_on_the_detector_given_by_index_or_name(tmp_path, tiny_sample):
    """``channel`` of register_slices names the input's detector, whichever channel is segmented;
    without it the segmented channel is registered."""
    from scipy import ndimage as ndi

    first = tiny_sample.images["sem"][0].astype(np.float32)
    truth = np.array([[0.0, 0.0], [1.5, -1.0], [3.0, 0.5], [2.0, 2.0]])
    drifting = np.stack([ndi.shift(first, s, order=3, mode="nearest") for s in truth])
    still = np.stack([first] * len(truth))
    path = write_tiff(tmp_path / "two.tif", np.stack([drifting, still]), channels=("cbs", "tld"))

    def shifts(*overrides):
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
        assert main(["segment", f"input={path}", f"out={out}", "channel=1", "voxel_size=[0.1,0.05,0.05]",
                     *overrides]) == 0
        assert (out / "qc_preprocess.png").is_file()  # the segmented detector, before and after
        return np.array(json.loads((out / "thresholds.json").read_text())["preprocess"]["shifts"])

    for register_on in ("0", "cbs"):
        got = shifts(f"preprocess.steps=[{{step: register_slices, highpass_sigma: 4, channel: {register_on}}}]")
        np.testing.assert_allclose(got, truth, atol=0.15)
    np.testing.assert_allclose(shifts("preprocess.steps=[{step: register_slices, highpass_sigma: 4}]"), 0.0,
                               atol=0.15)

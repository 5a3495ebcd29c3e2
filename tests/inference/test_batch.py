"""Batch predict: outputs per input, summary, resume without redoing, bad inputs do not stop it."""

import json

import numpy as np
import pandas as pd
import pytest
import zarr

from electroseg.errors import InputError
from electroseg.inference import load_checkpoint, predict_batch, predict_volume
from electroseg.io import read_volume, write_tiff

VOXEL = (0.05, 0.02, 0.02)


@pytest.fixture()
def scans(tmp_path, kit):
    """Checkpoint, two good volumes, a 2-channel volume (wrong for the 1-channel model)."""
    ckpt = kit.save_checkpoint(tmp_path / "m.ckpt", kit.tiny_spec(patch_size=(8, 16, 16)))
    folder = tmp_path / "scans"
    for i, name in enumerate(["a", "b"]):
        write_tiff(folder / f"{name}.tif", kit.grains((10, 20, 18), seed=i), voxel_size=VOXEL)
    two = np.stack([kit.grains((10, 20, 18), seed=5)] * 2)
    write_tiff(folder / "c_two_channels.tif", two, voxel_size=VOXEL, channels=("cbs", "tld"))
    return ckpt, folder


def test_batch_writes_outputs_summary_and_reports_bad_inputs(tmp_path, scans):
    ckpt, folder = scans
    inputs = [str(folder / "*.tif"), str(folder / "missing.tif")]
    result = predict_batch(ckpt, inputs, tmp_path / "out", save_probabilities="uint8", precision="fp32")
    status = {r.name: r.status for r in result.results}
    assert status == {"a": "ok", "b": "ok", "c_two_channels": "failed", "missing": "failed"}
    assert result.failed == 2
    for failed in (r for r in result.results if r.status == "failed"):  # each error names its input
        assert failed.error.startswith((f"{failed.name}:", f"{failed.input}:")), failed.error
    labels = read_volume(tmp_path / "out" / "a" / "labels.tif")
    assert labels.voxel_size == pytest.approx(VOXEL)
    expected = predict_volume(load_checkpoint(ckpt), read_volume(folder / "a.tif"), precision="fp32")
    np.testing.assert_array_equal(labels.numpy(), expected.labels)
    probabilities = zarr.open_array(str(tmp_path / "out" / "a" / "probabilities.zarr") + "/0")
    assert probabilities.shape == (3, 10, 20, 18) and probabilities.dtype == np.uint8
    summary = pd.read_csv(tmp_path / "out" / "summary.csv", keep_default_na=False)
    assert list(summary["name"]) == ["a", "b", "c_two_channels", "missing"]
    row = summary.set_index("name").loc["a"]
    counts = np.bincount(expected.labels.ravel(), minlength=3) / expected.labels.size
    assert [float(row[f"fraction_{p}"]) for p in ("pore", "cbd", "am")] == pytest.approx(counts)
    errors = summary.set_index("name")["error"]
    assert "expects 1 channel(s) ['bse']" in errors["c_two_channels"]
    assert "missing.tif: input not found" in errors["missing"]
    assert not (tmp_path / "out" / "c_two_channels" / "prediction.json").exists()


def test_interrupted_batch_resumes_without_redoing_finished_inputs(tmp_path, scans, monkeypatch):
    ckpt, folder = scans
    inputs = [str(folder / "a.tif"), str(folder / "b.tif")]
    out = tmp_path / "out"
    import electroseg.inference.batch as batch

    real, calls = batch._predict_item, []

    def interrupted(loaded, item, *args):
        calls.append(item.name)
        if item.name == "b" and len(calls) == 2:
            raise KeyboardInterrupt  # the user presses Ctrl-C during the second input
        return real(loaded, item, *args)

    monkeypatch.setattr(batch, "_predict_item", interrupted)
    with pytest.raises(KeyboardInterrupt):
        predict_batch(ckpt, inputs, out, precision="fp32")
    assert (out / "a" / "prediction.json").exists() and not (out / "b" / "prediction.json").exists()
    first_mtime = (out / "a" / "labels.tif").stat().st_mtime_ns
    result = predict_batch(ckpt, inputs, out, precision="fp32")
    assert calls == ["a", "b", "b"]  # a was not run again
    assert [r.status for r in result.results] == ["skipped", "ok"]
    assert (out / "a" / "labels.tif").stat().st_mtime_ns == first_mtime
    assert result.results[0].volume_fraction == json.loads((out / "a" / "prediction.json").read_text())["volume_fraction"]
    again = predict_batch(ckpt, inputs, out, precision="fp32", overwrite=True)
    assert calls == ["a", "b", "b", "a", "b"] and [r.status for r in again.results] == ["ok", "ok"]


def test_detector_mapping_and_channel_folder_inputs(tmp_path, kit):
    spec = kit.tiny_spec(name="multichannel2d", channels=("cbs", "tld"), context_slices=1, patch_size=(16, 16))
    ckpt = kit.save_checkpoint(tmp_path / "m.ckpt", spec)
    cbs, tld = kit.grains((5, 16, 20), seed=1), kit.grains((5, 16, 20), seed=2)
    write_tiff(tmp_path / "s1" / "image_tld.tif", tld, voxel_size=VOXEL)
    write_tiff(tmp_path / "s1" / "image_cbs.tif", cbs, voxel_size=VOXEL)
    inputs = [{"tld": str(tmp_path / "s1" / "image_tld.tif"), "cbs": str(tmp_path / "s1" / "image_cbs.tif"),
               "name": "mapped"}, str(tmp_path / "s1")]
    result = predict_batch(ckpt, inputs, tmp_path / "out", chunked="true", precision="fp32")
    assert [r.status for r in result.results] == ["ok", "ok"]
    expected = predict_volume(load_checkpoint(ckpt), np.stack([cbs, tld]), precision="fp32").labels
    for name in ("mapped", "s1"):
        np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "out" / name / "labels.zarr") + "/0")[...], expected)


def test_chunked_batch_writes_bigtiff_on_request(tmp_path, scans):
    ckpt, folder = scans
    result = predict_batch(ckpt, str(folder / "a.tif"), tmp_path / "out", chunked="true", chunked_format="tif",
                           precision="fp32", analyze=True)
    assert [r.status for r in result.results] == ["ok"]
    labels = read_volume(tmp_path / "out" / "a" / "labels.tif")
    expected = predict_volume(load_checkpoint(ckpt), read_volume(folder / "a.tif"), precision="fp32").labels
    np.testing.assert_array_equal(labels.numpy(), expected)
    assert labels.voxel_size == pytest.approx(VOXEL)
    assert not (tmp_path / "out" / "a" / "labels.zarr").exists()
    assert (tmp_path / "out" / "a" / "metrics.json").is_file()
    with pytest.raises(InputError, match="chunked_format: expected zarr or tif, got 'h5'"):
        predict_batch(ckpt, str(folder / "a.tif"), tmp_path / "out2", chunked_format="h5")


def test_batch_level_errors(tmp_path, scans):
    ckpt, folder = scans
    with pytest.raises(InputError, match="matched no files"):
        predict_batch(ckpt, str(folder / "*.h5"), tmp_path / "out")
    with pytest.raises(InputError, match="share the output name"):
        predict_batch(ckpt, [str(folder / "a.tif"), str(folder / "a.tif")], tmp_path / "out")
    with pytest.raises(InputError, match="chunked: expected one of"):
        predict_batch(ckpt, str(folder / "a.tif"), tmp_path / "out", chunked="maybe")
    # window options are checked once, before any input is read or any folder made
    for bad, message in ((dict(precision="fp8"), "precision: expected one of"),
                         (dict(overlap=1.0), r"overlap: expected a fraction in \[0, 1\)"),
                         (dict(batch_size=0), "batch_size: expected a positive integer")):
        with pytest.raises(InputError, match=message):
            predict_batch(ckpt, str(folder / "a.tif"), tmp_path / "early", **bad)
        assert not (tmp_path / "early").exists()


def test_prediction_json_records_the_arithmetic_the_network_ran_in(tmp_path, scans, monkeypatch):
    import electroseg.inference.windows as windows

    ckpt, folder = scans
    for native, expected in ((False, "fp32"), (True, "bf16")):
        monkeypatch.setattr(windows, "cpu_has_bf16", lambda: native)
        predict_batch(ckpt, str(folder / "a.tif"), tmp_path / expected, device="cpu", uncertainty=False)
        record = json.loads((tmp_path / expected / "a" / "prediction.json").read_text())
        assert record["arithmetic"] == {"device": "cpu", "precision": expected}
    predict_batch(ckpt, str(folder / "a.tif"), tmp_path / "asked", device="cpu", precision="fp32", uncertainty=False)
    assert json.loads((tmp_path / "asked" / "a" / "prediction.json").read_text())["arithmetic"]["precision"] == "fp32"


def test_rerun_asking_for_more_outputs_redoes_the_input(tmp_path, scans):
    ckpt, folder = scans
    out = tmp_path / "out"
    first = predict_batch(ckpt, str(folder / "a.tif"), out, precision="fp32")
    again = predict_batch(ckpt, str(folder / "a.tif"), out, precision="fp32", save_probabilities=True)
    assert [r.status for r in first.results] == ["ok"] and [r.status for r in again.results] == ["ok"]
    assert zarr.open_array(str(out / "a" / "probabilities.zarr") + "/0").dtype == np.float16
    third = predict_batch(ckpt, str(folder / "a.tif"), out, precision="fp32")  # asks for less
    assert [r.status for r in third.results] == ["skipped"]


def test_batch_traces_the_network_once_and_single_calls_see_changed_weights(tmp_path, scans, monkeypatch):
    import torch

    ckpt, folder = scans
    traced = []
    trace = torch.jit.trace
    monkeypatch.setattr(torch.jit, "trace", lambda *a, **k: traced.append(1) or trace(*a, **k))
    inputs = [str(folder / "a.tif"), str(folder / "b.tif")]
    predict_batch(ckpt, inputs, tmp_path / "out", device="cpu", progress=False)
    assert len(traced) == 1  # one checkpoint, one trace for both inputs
    loaded = load_checkpoint(ckpt)
    for name in ("a", "b"):  # the reused graph gives what a fresh one gives
        expected = predict_volume(loaded, read_volume(folder / f"{name}.tif"), device="cpu").labels
        np.testing.assert_array_equal(read_volume(tmp_path / "out" / name / "labels.tif").numpy(), expected)
    assert len(traced) == 3  # outside a batch every call prepares afresh
    before = predict_volume(loaded, read_volume(folder / "a.tif"), device="cpu").labels
    with torch.no_grad():
        for p in loaded.network.parameters():
            p.mul_(-1.0)
    after = predict_volume(loaded, read_volume(folder / "a.tif"), device="cpu").labels
    assert not np.array_equal(before, after)


def test_a_second_call_into_the_same_folder_keeps_the_first_calls_rows(tmp_path, scans):
    ckpt, folder = scans
    out = tmp_path / "out"
    predict_batch(ckpt, [str(folder / "a.tif")], out, precision="fp32")
    predict_batch(ckpt, [str(folder / "b.tif"), str(folder / "a.tif")], out, precision="fp32")
    summary = pd.read_csv(out / "summary.csv", keep_default_na=False)
    assert list(summary["name"]) == ["b", "a"]  # a's row is this call's (skipped), not a duplicate
    assert list(summary["status"]) == ["ok", "skipped"]
    predict_batch(ckpt, [str(folder / "c_two_channels.tif")], out, precision="fp32")
    summary = pd.read_csv(out / "summary.csv", keep_default_na=False)
    assert list(summary["name"]) == ["b", "a", "c_two_channels"]


def test_failed_inputs_leave_no_folder_and_analysis_checks_the_voxel_size_first(tmp_path, scans, kit,
                                                                                  monkeypatch):
    ckpt, folder = scans
    write_tiff(folder / "no_voxel.tif", kit.grains((10, 20, 18), seed=7))
    import electroseg.inference.predict as predict_module

    calls = []
    real = predict_module.predict_volume
    monkeypatch.setattr(predict_module, "predict_volume", lambda *a, **k: calls.append(1) or real(*a, **k))
    out = tmp_path / "out"
    result = predict_batch(ckpt, [str(folder / "no_voxel.tif")], out, analyze=True, precision="fp32")
    error = result.results[0].error
    assert result.results[0].status == "failed" and "needs the voxel size" in error
    assert error.startswith("no_voxel: ") and error.count("no_voxel") == 1  # named once
    assert "voxel_size=[z,y,x]" in error
    assert calls == []  # refused before predicting
    result = predict_batch(ckpt, [str(folder / "c_two_channels.tif")], out, precision="fp32")
    assert result.results[0].status == "failed"
    assert not (out / "no_voxel").exists() and not (out / "c_two_channels").exists()


def test_uncertainty_map_and_quality_record(tmp_path, scans, kit):
    from electroseg.inference.qa import LOW_CONFIDENCE, normalized_entropy

    ckpt, folder = scans
    write_tiff(folder / "wide.tif", kit.grains((10, 80, 80), seed=3), voxel_size=VOXEL)
    out = tmp_path / "out"
    result = predict_batch(ckpt, [str(folder / "wide.tif")], out, precision="fp32", qa_tiling=True,
                           save_probabilities="float16")
    entropy = read_volume(out / "wide" / "uncertainty.tif").numpy()
    assert entropy.dtype == np.float32 and entropy.shape == (10, 80, 80)  # ImageJ has no float16
    assert 0.0 <= entropy.min() and entropy.max() <= 1.0
    probabilities = zarr.open_array(str(out / "wide" / "probabilities.zarr") + "/0")[...]
    np.testing.assert_allclose(entropy.astype(np.float32), normalized_entropy(probabilities).astype(np.float32),
                               atol=2e-3)
    qa = json.loads((out / "wide" / "prediction.json").read_text())["qa"]
    labels = read_volume(out / "wide" / "labels.tif").numpy()
    uncertain = entropy.astype(np.float16) >= np.float16(LOW_CONFIDENCE)
    assert qa["low_confidence"]["all"] == pytest.approx(uncertain.mean())
    for i, phase in enumerate(("pore", "cbd", "am")):
        share = qa["low_confidence"]["per_phase"][phase]
        assert share is None or share == pytest.approx(uncertain[labels == i].mean())
    assert 0.0 <= qa["tiling_agreement"] <= 1.0 and result.results[0].qa == qa
    summary = pd.read_csv(out / "summary.csv")
    assert summary.loc[0, "low_confidence"] == pytest.approx(qa["low_confidence"]["all"])
    predict_batch(ckpt, [str(folder / "a.tif")], tmp_path / "plain", precision="fp32", uncertainty=False)
    assert not (tmp_path / "plain" / "a" / "uncertainty.tif").exists()
    assert not (tmp_path / "plain" / "a" / "probabilities.zarr").exists()


def test_a_rerun_without_analysis_removes_the_earlier_runs_metrics(tmp_path, scans):
    ckpt, folder = scans
    out = tmp_path / "out"
    predict_batch(ckpt, [str(folder / "a.tif")], out, precision="fp32", analyze=True)
    assert (out / "a" / "metrics.json").is_file() and (out / "a" / "uncertainty.tif").is_file()
    predict_batch(ckpt, [str(folder / "a.tif")], out, precision="fp32", overwrite=True, uncertainty=False)
    assert not (out / "a" / "metrics.json").exists() and not (out / "a" / "uncertainty.tif").exists()
    files = json.loads((out / "a" / "prediction.json").read_text())["files"]
    assert files == ["labels.tif"] and (out / "a" / "labels.tif").is_file()


def test_quality_record_scores_each_inputs_hand_labels(tmp_path, scans):
    ckpt, folder = scans
    plain = predict_batch(ckpt, [str(folder / "a.tif")], tmp_path / "first", precision="fp32")
    labels = read_volume(tmp_path / "first" / "a" / "labels.tif").numpy()
    hand = np.full(labels.shape, 255, np.uint8)  # two labelled slices: one copied, one every voxel wrong
    hand[1] = labels[1]
    hand[3] = (labels[3] + 1) % 3
    (tmp_path / "hand").mkdir()
    write_tiff(tmp_path / "hand" / "a_labels.tif", hand, voxel_size=VOXEL, phases=("pore", "cbd", "am"))
    out = tmp_path / "out"
    result = predict_batch(ckpt, [str(folder / "a.tif"), str(folder / "b.tif")], out, precision="fp32",
                           hand_labels=str(tmp_path / "hand" / "{name}_labels.tif"))
    qa = json.loads((out / "a" / "prediction.json").read_text())["qa"]["hand_labels"]
    assert qa["voxels"] == 2 * labels[1].size and qa["agreement"] == pytest.approx(0.5)
    assert json.loads((out / "b" / "prediction.json").read_text())["qa"]["hand_labels"] is None  # none for b
    summary = pd.read_csv(out / "summary.csv")
    assert summary.loc[0, "hand_label_agreement"] == pytest.approx(0.5) and plain.failed == result.failed == 0
    # an input finished without hand labels is redone when they are asked for, not skipped unscored
    again = predict_batch(ckpt, [str(folder / "a.tif")], tmp_path / "first", precision="fp32",
                          hand_labels=str(tmp_path / "hand" / "{name}_labels.tif"))
    assert again.results[0].status == "ok" and again.results[0].qa["hand_labels"]["agreement"] == pytest.approx(0.5)
    with pytest.raises(InputError, match=r"hand_labels: expected a path with \{name\}"):
        predict_batch(ckpt, [str(folder / "a.tif")], tmp_path / "x", hand_labels="labels.tif")


def test_hand_labels_stored_with_other_values(tmp_path, scans):
    # NREL-style files: phases stored as 3, 1, 2 and unlabelled as 0, named in the mapping form
    ckpt, folder = scans
    plain = predict_batch(ckpt, [str(folder / "a.tif")], tmp_path / "first", precision="fp32", uncertainty=False)
    labels = read_volume(tmp_path / "first" / "a" / "labels.tif").numpy()
    stored = np.zeros(labels.shape, np.uint8)
    stored[2] = np.array([3, 1, 2], np.uint8)[labels[2]]
    (tmp_path / "hand").mkdir()
    write_tiff(tmp_path / "hand" / "a.tif", stored, voxel_size=VOXEL)
    template = str(tmp_path / "hand" / "{name}.tif")
    result = predict_batch(ckpt, [str(folder / "a.tif")], tmp_path / "out", precision="fp32", uncertainty=False,
                           hand_labels={"path": template, "label_values": [3, 1, 2], "ignore_value": 0})
    qa = json.loads((tmp_path / "out" / "a" / "prediction.json").read_text())["qa"]["hand_labels"]
    assert plain.failed == result.failed == 0
    assert qa["voxels"] == labels[2].size and qa["agreement"] == pytest.approx(1.0)
    # the plain template reads them as phase i = i: value 3 is refused with the line naming the file
    failed = predict_batch(ckpt, [str(folder / "a.tif")], tmp_path / "out2", precision="fp32", uncertainty=False,
                           hand_labels=template)
    assert failed.failed == 1 and "a.tif" in failed.results[0].error and "label_values" in failed.results[0].error
    with pytest.raises(InputError, match="hand_labels"):
        predict_batch(ckpt, [str(folder / "a.tif")], tmp_path / "out3", hand_labels={"path": template, "values": [1]})


def test_analysis_measures_the_segmentation_error_on_hand_labels_else_the_checkpoints(tmp_path, scans, kit):
    """analyze=true: an input's own hand-labelled slices correct its metrics; without them, the
    errors its checkpoint measured on held-out slices do; with neither, no segmentation entry."""
    import torch

    from electroseg.analysis.segmentation_error import measure_slice_errors

    ckpt, folder = scans
    plain = predict_batch(ckpt, [str(folder / "a.tif")], tmp_path / "first", precision="fp32", analyze=True)
    assert plain.failed == 0
    metrics = json.loads((tmp_path / "first" / "a" / "metrics.json").read_text())
    assert "segmentation" not in metrics["uncertainty"]
    labels = read_volume(tmp_path / "first" / "a" / "labels.tif").numpy()
    hand = np.full(labels.shape, 255, np.uint8)
    hand[[4, 5]] = np.where(labels[[4, 5]] == 0, 1, labels[[4, 5]])  # the person calls that pore CBD
    (tmp_path / "hand").mkdir()
    write_tiff(tmp_path / "hand" / "a_labels.tif", hand, voxel_size=VOXEL, phases=("pore", "cbd", "am"))
    out = tmp_path / "out"
    predict_batch(ckpt, [str(folder / "a.tif")], out, precision="fp32", analyze=True,
                  hand_labels=str(tmp_path / "hand" / "{name}_labels.tif"))
    unc = json.loads((out / "a" / "metrics.json").read_text())["uncertainty"]
    assert unc["segmentation_check"]["source"].endswith("a_labels.tif")
    pore = unc["segmentation"]["volume_fraction_pore"]
    assert pore["reported"] > 0.1 and pore["estimate"] == 0.0  # every labelled pore voxel was CBD
    # the same errors stored in the checkpoint serve an input without hand labels
    stored = torch.load(ckpt, map_location="cpu", weights_only=True)
    stored["electroseg_slice_errors"] = measure_slice_errors(labels, hand, depth_axis=1).to_dict()
    torch.save(stored, tmp_path / "with_errors.ckpt")
    predict_batch(tmp_path / "with_errors.ckpt", [str(folder / "b.tif")], tmp_path / "other", precision="fp32",
                  analyze=True)
    unc = json.loads((tmp_path / "other" / "b" / "metrics.json").read_text())["uncertainty"]
    assert unc["segmentation_check"]["source"] == "the checkpoint's held-out slices"
    assert unc["total"]["volume_fraction_pore"]["estimate"] == 0.0

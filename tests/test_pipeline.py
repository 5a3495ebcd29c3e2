"""The run pipeline: stage folders, reuse on rerun, dataset path handling, and a tiny end-to-end run."""

import json
from pathlib import Path

import pytest

from electroseg.cli import main
from electroseg.errors import InputError
from electroseg.pipeline import preprocessed_dataset, run_stage, target_scan

DATASET = {
    "name": "two_scans", "phases": ["pore", "cbd", "am"], "depth_axis": 1, "channels": ["bse"],
    "volumes": [
        {"images": {"bse": "s0/image.tif"}, "hand_labels": "s0/sparse_labels.tif", "split": "train"},
        {"images": {"bse": "s1/image.tif"}, "hand_labels": "s1/sparse_labels.tif", "split": "val"},
        {"images": {"bse": "s0/image.tif"}, "labels": "s0/labels.tif", "split": "test"},
    ],
}


def test_run_stage_builds_once_then_reuses(tmp_path):
    calls = []

    def build(folder: Path) -> None:
        calls.append(folder.name)
        (folder / "product.txt").write_text("x")

    first = run_stage("demo", tmp_path / "demo", build)
    second = run_stage("demo", tmp_path / "demo", build)
    assert calls == ["demo.partial"]  # built in a temporary folder, once
    assert (first.reused, second.reused) == (False, True)
    assert (tmp_path / "demo" / "product.txt").is_file()
    assert not (tmp_path / "demo.partial").exists()
    run_stage("demo", tmp_path / "demo", build, force=True)
    assert len(calls) == 2


def test_failed_stage_keeps_previous_outputs(tmp_path):
    run_stage("demo", tmp_path / "demo", lambda f: (f / "good.txt").write_text("ok"))

    def broken(folder: Path) -> None:
        (folder / "half.txt").write_text("partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        run_stage("demo", tmp_path / "demo", broken, force=True)
    assert (tmp_path / "demo" / "good.txt").read_text() == "ok"
    assert not (tmp_path / "demo" / "half.txt").exists()


def test_target_scan_prefers_test_volume_with_truth(tmp_path):
    scan = target_scan(DATASET, tmp_path)
    assert scan.images == {"bse": tmp_path / "s0/image.tif"}
    assert scan.truth == tmp_path / "s0/labels.tif"
    assert scan.hand_labels == tmp_path / "s0/sparse_labels.tif"  # found on the train entry


def test_target_scan_without_train_or_test_is_input_error(tmp_path):
    with pytest.raises(InputError, match="split test or train"):
        target_scan({"name": "x", "volumes": [{"images": {"a": "x.tif"}, "split": "val"}]}, tmp_path)


def test_preprocessed_dataset_points_images_at_copies(tmp_path):
    out = preprocessed_dataset(DATASET, tmp_path / "raw", tmp_path / "pre", {"method": "multiotsu"})
    assert out["volumes"][0]["images"] == {"bse": str(tmp_path / "pre/s0_image/image.tif")}
    assert out["volumes"][1]["images"] == {"bse": str(tmp_path / "pre/s1_image/image.tif")}
    assert out["volumes"][2]["labels"] == str(tmp_path / "raw/s0/labels.tif")
    assert out["classical"] == {"method": "multiotsu"}
    assert out["preprocess"] == []
    assert "synthetic" not in out


TINY_RUN = ["preset=tiny", "model=unet3d_tiny", "trainer=fast", "trainer.max_epochs=1",
            "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
            "trainer.precision=32-true", "trainer.enable_progress_bar=false",
            "data.synthetic.samples={seed0: 0}",
            "train_overrides=[\"loader.samples_per_epoch=4\",\"loader.val_patches=2\"]",
            "analysis.uncertainty=false", "compare.blocks_per_axis=2", "data.preprocess=[]"]


@pytest.mark.slow
def test_tiny_end_to_end_run_writes_every_stage(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative out, as `make demo` gives it
    out = (tmp_path / "run").resolve()
    assert main(["run", "out=run", *TINY_RUN]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(out / "report.html")
    for product in ("data/seed0/image.tif", "preprocess/seed0_image/image.tif",
                    "classical/labels.tif", "classical/confidence.tif",
                    "train/checkpoints/best.ckpt", "predict/labels.tif", "predict/reliability.json",
                    "predict/reliability.png",
                    "analysis/classical/metrics.json", "analysis/learned/metrics.json",
                    "analysis/truth/metrics.json", "compare/comparison.json",
                    "compare/slices.png", "summary.json", "provenance.json", "config.yaml",
                    "report.html", "report.md"):
        assert (out / product).is_file(), product
    for stage in ("data", "preprocess", "classical", "train", "predict", "analysis", "compare"):
        assert json.loads((out / stage / "stage.json").read_text())["stage"] == stage
    comparison = json.loads((out / "compare" / "comparison.json").read_text())
    # the synthetic sample's ground truth is named truth (sparse hand labels would be "hand labels")
    assert set(comparison["agreement"]) == {"learned vs classical", "classical vs truth", "learned vs truth"}
    html = (out / "report.html").read_text()
    assert "Comparison: classical vs learned vs truth" in html and "sha256" in html
    assert "How far to trust this" in html and "expected calibration error" in html
    # rerun: every stage reused, the report rebuilt from the products
    first = (out / "train" / "checkpoints" / "best.ckpt").stat().st_mtime_ns
    assert main(["run", "out=run", *TINY_RUN]) == 0
    assert (out / "train" / "checkpoints" / "best.ckpt").stat().st_mtime_ns == first


def test_changed_settings_redo_the_stage(tmp_path):
    calls = []

    def build(folder: Path) -> None:
        calls.append(1)

    first = run_stage("demo", tmp_path / "demo", build, settings={"threshold": 1})
    again = run_stage("demo", tmp_path / "demo", build, settings={"threshold": 1})
    changed = run_stage("demo", tmp_path / "demo", build, settings={"threshold": 2})
    assert (first.reused, again.reused, changed.reused) == (False, True, False)
    assert len(calls) == 2 and changed.fingerprint != first.fingerprint


@pytest.mark.slow
def test_cycling_experiment_classical_only_on_tiny_samples(tmp_path):
    out = tmp_path / "cycling"
    status = main(["run", "experiment=cycling", f"out={out}", "learned=false",
                   "cycling.pristine=tiny", "cycling.cycled=tiny", "cycling.shape=null",
                   "cycling.preset_changes={cycled: {cycling: {detach_fraction: 0.5}}}",
                   "data.synthetic.samples={seed0: 0}", "data.preprocess=[]",
                   "analysis.n_blocks=2", "compare.blocks_per_axis=2"])
    assert status == 0
    study = json.loads((out / "cycling" / "cycling.json").read_text())
    truth = study["routes"]["truth"]
    # half of the AM surface loses its CBD in the cycled truth: the true PBA must fall
    assert truth["cycled"] < truth["pristine"] and truth["drop"] < -0.1
    assert set(study["routes"]) == {"classical", "truth"}
    html = (out / "report.html").read_text()
    assert "Cycling study" in html and "pba_depth_cycling.png" in html
    for sample in ("pristine", "cycled"):
        assert (out / sample / "compare" / "comparison.json").is_file()


def test_preprocessing_that_crops_the_specimen_is_one_line_error(tmp_path, capsys):
    # the marker dataset crops a 32-row band that the tiny preset's images do not have
    status = main(["run", f"out={tmp_path / 'run'}", "data=nmc_fibsem_markers", "preset=tiny",
                   "learned=false", "data.synthetic.samples={seed0: 0}", "analysis.uncertainty=false"])
    assert status == 2
    err = capsys.readouterr().err
    assert "sparse_labels.tif: expected labels of the preprocessed image's shape (16, 32, 64)" in err
    assert "Traceback" not in err and not (tmp_path / "run" / "classical" / "labels.tif").exists()


@pytest.mark.parametrize("override", ["data.pseudo_labels=false", "+model.channels=[4,8]", "seed=3",
                                      "trainer.max_epochs=1"])
def test_train_override_of_a_key_the_run_sets_is_refused_before_any_work(tmp_path, capsys, override):
    # the run replaces train's data, model, trainer and seed with its own: such an override was dropped
    status = main(["run", f"out={tmp_path / 'run'}", "preset=tiny", f"train_overrides=[{json.dumps(override)}]"])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "train_overrides" in err and "on the run command instead" in err
    assert not (tmp_path / "run").exists()


def test_train_override_hydra_cannot_compose_fails_before_any_work(tmp_path, capsys):
    # the train config is composed once, before the data stage, not when the train stage starts
    status = main(["run", f"out={tmp_path / 'run'}", "preset=tiny", 'train_overrides=["no_such_key=1"]'])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert "no_such_key" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_bad_predict_precision_fails_before_any_work(tmp_path, capsys):
    # the predict stage comes after training: its options are checked before the first stage
    status = main(["run", f"out={tmp_path / 'run'}", "preset=tiny", "predict.precision=fp8"])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "precision: expected one of" in err
    assert not (tmp_path / "run").exists()


def test_preprocess_images_registers_every_channel_on_the_named_detector(tmp_path):
    import numpy as np
    from scipy import ndimage as ndi

    from electroseg.io import read_volume, write_tiff
    from electroseg.pipeline import preprocess_images

    base = ndi.gaussian_filter(np.random.default_rng(0).random((64, 64)), 2).astype(np.float32)
    drifted = np.stack([base, ndi.shift(base, (2.0, 1.0), order=3, mode="wrap")])
    flat = np.stack([base, base])  # cbs: no drift visible; tld: the drift
    images = {"cbs": write_tiff(tmp_path / "cbs.tif", flat), "tld": write_tiff(tmp_path / "tld.tif", drifted)}
    preprocess_images(images, tmp_path / "out", steps=[{"step": "register_slices", "channel": "tld",
                                                        "highpass_sigma": 4}])
    moved = read_volume(tmp_path / "out" / "image_cbs.tif").numpy()
    expected = ndi.shift(base, (-2.0, -1.0), order=1, mode="nearest")  # moved back by tld's drift
    inner = (slice(8, -8), slice(8, -8))
    assert np.abs(moved[1][inner] - expected[inner]).mean() < 0.02
    np.testing.assert_allclose(moved[0], base, atol=1e-6)


def test_run_without_a_voxel_size_stops_before_training_and_names_the_key(tmp_path, capsys, shared_data):
    shared = shared_data / "nrel_expertsegmentation"
    # the NREL micro-CT records no voxel size: the run must say so before it trains
    status = main(["run", f"out={tmp_path / 'run'}", "data=nrel_nmc1cal", f"data.root={shared}"])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "data.voxel_size=[z,y,x]" in err and "nmc1cal.tif" in err
    assert not (tmp_path / "run" / "train").exists()


def test_run_on_hand_labels_stored_with_their_own_values_and_ignore_zero(tmp_path, shared_data):
    # NREL's scribbles store am = 1, pore = 2 and unlabelled = 0 (label_values [2, 1], ignore 0).
    # The stages read them with those values; in memory unlabelled is 255, so pore (0) is counted:
    # the predict, analysis and compare stages failed on "ignore_value: 0 is the index of phase 'pore'"
    import numpy as np

    from electroseg.io import read_labels

    root = shared_data / "nrel_expertsegmentation"
    status = main(["run", f"out={tmp_path / 'run'}", "data=nrel_nmc1cal", f"data.root={root}",
                   "data.voxel_size=[0.4,0.4,0.4]", "trainer.max_steps=4", "trainer.max_epochs=1"])
    assert status == 0
    run = tmp_path / "run"
    comparison = json.loads((run / "compare" / "comparison.json").read_text())
    assert "hand labels" in json.dumps(comparison)
    hand = read_labels(root / "nmc1cal_labels.tiff", phases=["pore", "am"], label_values=[2, 1], ignore_value=0).numpy()
    labelled = hand != 255
    classical = read_labels(run / "classical" / "labels.tif", phases=["pore", "am"]).numpy()
    reliability = json.loads((run / "predict" / "reliability.json").read_text())
    assert reliability["voxels"] == labelled.sum() == 848 + 657  # every scribble, pore included
    check = json.loads((run / "analysis" / "classical" / "metrics.json").read_text())["uncertainty"]["segmentation_check"]
    assert check["source"].endswith("nmc1cal_labels.tiff")  # the classical route was checked against them
    assert 0.5 < (classical[labelled] == hand[labelled]).mean() <= 1


def test_run_refuses_unet3d_on_2d_images_before_any_stage(tmp_path, capsys, shared_data):
    status = main(["run", f"out={tmp_path / 'run'}", "data=segmentpy", f"data.root={shared_data / 'segmentpy'}",
                   "data.voxel_size=[0.064,0.064]", "model=unet3d"])  # named; model=auto takes the 2-D model
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "2-D image" in err and "model=multichannel2d" in err
    assert not (tmp_path / "run").exists()


def test_run_names_the_segmented_scan_when_the_voxel_size_is_missing(tmp_path, capsys, shared_data):
    status = main(["run", f"out={tmp_path / 'run'}", "data=segmentpy", f"data.root={shared_data / 'segmentpy'}",
                   "model=multichannel2d", "learned=false"])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "segmentpy/470.tif (and 10 other images)" in err
    assert "data.voxel_size=[y,x]" in err and "Traceback" not in err


def test_preprocess_without_steps_keeps_the_files_values_and_dtype(tmp_path):
    # a model trained on the copy records its storage: a float copy of 16-bit counts made predict
    # on the original file fall back to the file's own intensity window
    import numpy as np
    import tifffile

    from electroseg.io import write_tiff
    from electroseg.pipeline import preprocess_images

    counts = np.random.default_rng(0).integers(1000, 60000, (4, 16, 16)).astype(np.uint16)
    write_tiff(tmp_path / "scan.tif", counts, voxel_size=(0.1, 0.1, 0.1))
    preprocess_images({"xct": tmp_path / "scan.tif"}, tmp_path / "pre", steps=[])
    copy = tifffile.imread(tmp_path / "pre" / "image.tif")
    assert copy.dtype == np.uint16 and np.array_equal(copy, counts)

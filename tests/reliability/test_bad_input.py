"""Bad input through the real command line: one clear line on stderr, exit 2, nothing half-written.

Each case builds its files under tmp_path, runs `electroseg <command>` in-process and checks that
the last stderr line is `electroseg: error: ...` naming the culprit, that no traceback is printed
and that the output folder holds exactly what it held before (no partial, no temporary file).
"""

from __future__ import annotations

import errno

import numpy as np
import pytest
import tifffile

from electroseg.io import write_tiff


def _bad_file(tmp, case: str, rel, labels: bool = False):
    """A file for an input argument in the state named by `case`; returns (path, text in the message).

    ``labels``: build truncated/corrupt files from a label volume instead of a greyscale image."""
    good = rel.labels((4, 32, 32)) if labels else rel.grains((4, 32, 32))
    path = tmp / "in" / "scan.tif"
    path.parent.mkdir(parents=True, exist_ok=True)
    if case == "missing":
        return tmp / "in" / "nope.tif", "nope.tif"
    if case == "directory":
        folder = tmp / "in" / "folder.tif"
        folder.mkdir()
        return folder, "folder.tif"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "truncated":
        write_tiff(path, good, voxel_size=rel.VOXEL)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif case == "corrupt":
        write_tiff(path, good, voxel_size=rel.VOXEL)
        data = bytearray(path.read_bytes())
        data[4:8] = b"\xff\xff\xff\x7f"  # first IFD offset far past the end of the file
        path.write_bytes(bytes(data))
    elif case == "not_an_image":
        path.write_text("name,value\nporosity,0.3\n")
    elif case == "wrong_dims":
        path = tmp / "in" / "line.npy"
        np.save(path, np.arange(10, dtype=np.uint8))
    elif case in ("nan", "inf"):
        data = rel.grains((4, 16, 16)).astype(np.float32)
        data[1, 2, 3] = np.nan if case == "nan" else np.inf
        tifffile.imwrite(path, data)
    else:
        raise AssertionError(case)
    return path, path.name


FILE_CASES = ["missing", "directory", "empty", "truncated", "corrupt", "not_an_image", "wrong_dims", "nan", "inf"]


def _check(rel, capsys, out, args, *needles):
    before = rel.snapshot(out)
    status, err = rel.cli(capsys, *args)
    rel.assert_one_line_error(status, err, *needles)
    assert rel.snapshot(out) == before
    assert not rel.leftovers(out.parent)


@pytest.fixture()
def good_out(tmp_path):
    """An output folder already holding a good result that a failed run must not touch."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "labels.tif").write_bytes(b"good result")
    return out



@pytest.mark.parametrize("case", FILE_CASES)
def test_segment_bad_image(case, tmp_path, good_out, rel, capsys):
    path, name = _bad_file(tmp_path, case, rel)
    _check(rel, capsys, good_out, ["segment", f"input={path}", f"out={good_out}"], name)


@pytest.mark.parametrize("case", FILE_CASES)
def test_analyze_bad_labels(case, tmp_path, good_out, rel, capsys):
    path, name = _bad_file(tmp_path, case, rel, labels=True)
    _check(rel, capsys, good_out, ["analyze", f"input={path}", f"out={good_out}", "voxel_size=[0.05,0.02,0.02]"],
           name)


@pytest.mark.parametrize("case", FILE_CASES)
def test_predict_bad_input_image(case, tmp_path, good_out, rel, capsys, caplog):
    """A bad input in a batch is logged by name (one line, no traceback), the exit status is 1 (some
    inputs failed) and nothing is written for it."""
    path, name = _bad_file(tmp_path, case, rel)
    ckpt = rel.save_checkpoint(tmp_path / "m.ckpt")
    before = rel.snapshot(good_out)
    status, err = rel.cli(capsys, "predict", f"checkpoint={ckpt}", f"inputs=[{path}]", f"out={good_out}",
                          "progress=false", "precision=fp32")
    log = err + caplog.text
    assert status == 1 and "Traceback" not in log
    assert name in log
    after = rel.snapshot(good_out)
    assert {k: v for k, v in after.items() if k in before} == before
    assert not any(k.startswith(path.stem + "/") and k.endswith(".tif") for k in after)
    assert not rel.leftovers(good_out)


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "truncated", "not_an_image"])
def test_predict_bad_checkpoint(case, tmp_path, good_out, rel, capsys):
    scan = tmp_path / "scan.tif"
    write_tiff(scan, rel.grains((8, 16, 16)), voxel_size=rel.VOXEL)
    ckpt = tmp_path / "m.ckpt"
    if case == "missing":
        ckpt = tmp_path / "nope.ckpt"
    elif case == "directory":
        ckpt.mkdir()
    elif case == "empty":
        ckpt.write_bytes(b"")
    elif case == "truncated":
        rel.save_checkpoint(ckpt)
        ckpt.write_bytes(ckpt.read_bytes()[:500])
    else:
        ckpt.write_text("not a checkpoint")
    _check(rel, capsys, good_out, ["predict", f"checkpoint={ckpt}", f"inputs=[{scan}]", f"out={good_out}",
                                   "progress=false"], ckpt.name)


def test_segment_constant_image(tmp_path, good_out, rel, capsys):
    """Fewer grey levels than phases: thresholds are undefined, the file is named."""
    path = tmp_path / "flat.tif"
    write_tiff(path, np.full((4, 16, 16), 1000, np.uint16), voxel_size=rel.VOXEL)
    _check(rel, capsys, good_out, ["segment", f"input={path}", f"out={good_out}"], "flat.tif")


def test_analyze_label_values_outside_phases(tmp_path, good_out, rel, capsys):
    path = tmp_path / "labels.tif"
    data = rel.labels()
    data[0, 0, 0] = 7
    write_tiff(path, data, voxel_size=rel.VOXEL)
    _check(rel, capsys, good_out, ["analyze", f"input={path}", f"out={good_out}"], "labels.tif", "7")


def test_analyze_needs_voxel_size(tmp_path, good_out, rel, capsys):
    path = tmp_path / "labels.npy"
    np.save(path, rel.labels())
    _check(rel, capsys, good_out, ["analyze", f"input={path}", f"out={good_out}"], "labels.npy", "voxel")


@pytest.mark.parametrize("voxel", ["[0,0.02,0.02]", "[-0.05,0.02,0.02]", "[0.02,0.02]"])
@pytest.mark.parametrize("command", ["analyze", "segment", "compare"])
def test_bad_voxel_size(command, voxel, tmp_path, good_out, rel, capsys):
    labels = tmp_path / "labels.npy"
    np.save(labels, rel.labels())
    image = tmp_path / "image.npy"
    np.save(image, rel.grains((6, 12, 10)))
    args = {"analyze": [f"input={labels}"], "segment": [f"input={image}"],
            "compare": [f"a={labels}", f"b={labels}"]}[command]
    _check(rel, capsys, good_out, [command, *args, f"out={good_out}", f"voxel_size={voxel}"], "voxel_size")


def test_analyze_image_of_other_shape(tmp_path, good_out, rel, capsys):
    labels = tmp_path / "labels.tif"
    write_tiff(labels, rel.labels((6, 12, 10)), voxel_size=rel.VOXEL)
    image = tmp_path / "energy.tif"
    write_tiff(image, rel.grains((6, 12, 11)).astype(np.float32), voxel_size=rel.VOXEL)
    _check(rel, capsys, good_out, ["analyze", f"input={labels}", f"image={image}", f"out={good_out}"],
           "image", "(6, 12, 11)")


def test_compare_labels_of_different_shapes(tmp_path, good_out, rel, capsys):
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    write_tiff(a, rel.labels((6, 12, 10)), voxel_size=rel.VOXEL)
    write_tiff(b, rel.labels((6, 12, 12)), voxel_size=rel.VOXEL)
    _check(rel, capsys, good_out, ["compare", f"a={a}", f"b={b}", f"out={good_out}"], "'b'", "(6, 12, 12)")


def test_compare_label_values_outside_phases(tmp_path, good_out, rel, capsys):
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    write_tiff(a, rel.labels(), voxel_size=rel.VOXEL)
    bad = rel.labels()
    bad[2, 3, 4] = 9
    write_tiff(b, bad, voxel_size=rel.VOXEL)
    _check(rel, capsys, good_out, ["compare", f"a={a}", f"b={b}", f"out={good_out}"], "b.tif")


UNKNOWN_KEYS = [
    ("segment", ["input=X", "no_such_key=1"], "no_such_key"),
    ("segment", ["input=X", "segmenter.no_such_key=1"], "no_such_key"),
    ("analyze", ["input=X", "voxel_sizes=[1,1,1]"], "voxel_sizes"),
    ("compare", ["a=X", "b=X", "no_such_key=1"], "no_such_key"),
    ("synth", ["preset=tiny", "preset.microstructure.am_fractoin=0.5"], "am_fractoin"),
    ("predict", ["checkpoint=X", "inputs=[X]", "no_such_key=1"], "no_such_key"),
    ("train", ["model=unet3d_tiny", "no_such_key=1"], "no_such_key"),
    ("train", ["model=unet3d_tiny", "loader.batch_sise=4"], "batch_sise"),
    ("train", ["model=unet3d_tiny", "data.synthetic.preset=tiny", "+loader.no_such_key=1", "cache_dir=CACHE"],
     "loader.no_such_key"),
]


@pytest.mark.parametrize("command, args, needle", UNKNOWN_KEYS)
def test_unknown_config_key(command, args, needle, tmp_path, good_out, rel, capsys, request):
    if any("CACHE" in a for a in args):
        cache = request.getfixturevalue("tiny_cache")
        args = [a.replace("CACHE", str(cache)) for a in args]
    _check(rel, capsys, good_out, [command, *args, f"out={good_out}"], needle)


@pytest.mark.parametrize("command, override", [
    ("segment", "segmenter=nope"), ("segment", "preprocess=nope"), ("synth", "preset=nope"),
    ("train", "model=nope"), ("train", "data=nope"), ("train", "trainer=nope")])
def test_unknown_group_option(command, override, tmp_path, good_out, rel, capsys):
    extra = ["input=X"] if command == "segment" else []
    _check(rel, capsys, good_out, [command, override, *extra, f"out={good_out}"], "nope")


def test_unknown_model_name(tmp_path, tiny_cache, good_out, rel, capsys):
    """model.name is looked up in the allow-list of build_model; an unknown one is named."""
    _check(rel, capsys, good_out, ["train", "model=unet3d_tiny", "model.name=resnet_from_the_internet",
                                   "data.synthetic.preset=tiny", f"cache_dir={tiny_cache}",
                                   f"out={good_out}"], "resnet_from_the_internet")


def test_predict_checkpoint_spec_phases_mismatch(tmp_path, good_out, rel, capsys):
    """A checkpoint whose spec names 4 phases but whose network has 3 outputs is refused."""
    scan = tmp_path / "scan.tif"
    write_tiff(scan, rel.grains((8, 16, 16)), voxel_size=rel.VOXEL)
    spec = rel.tiny_spec().to_dict()
    spec["phases"] = ["pore", "cbd", "am", "crack"]
    ckpt = rel.save_checkpoint(tmp_path / "m.ckpt", spec_dict=spec)
    _check(rel, capsys, good_out, ["predict", f"checkpoint={ckpt}", f"inputs=[{scan}]", f"out={good_out}",
                                   "progress=false"], "m.ckpt")


def test_train_resume_from_checkpoint_of_other_phase_set(tmp_path, tiny_cache, rel, capsys):
    ckpt = rel.save_checkpoint(tmp_path / "two.ckpt", rel.tiny_spec(phases=("pore", "solid")))
    out = tmp_path / "run"
    status, err = rel.cli(capsys, "train", "model=unet3d_tiny", "trainer=fast", "data.synthetic.preset=tiny",
                          f"cache_dir={tiny_cache}", f"ckpt_path={ckpt}", f"out={out}",
                          "loader.samples_per_epoch=2", "loader.val_patches=1")
    rel.assert_one_line_error(status, err, "two.ckpt")
    assert not (out / "checkpoints").exists() or not any((out / "checkpoints").iterdir())


@pytest.mark.parametrize("fractions", ["{solid: 0.5}", "{am: 1.5}", "{pore: 0.6, am: 0.5}"])
def test_train_volume_fractions_refused_before_training(fractions, tmp_path, tiny_cache, rel, capsys):
    out = tmp_path / "run"
    status, err = rel.cli(capsys, "train", "model=unet3d_tiny", "trainer=fast", "data.synthetic.preset=tiny",
                          f"cache_dir={tiny_cache}", f"out={out}", f"+data.volume_fractions={fractions}")
    rel.assert_one_line_error(status, err, "volume_fractions")
    assert not (out / "checkpoints").exists()


@pytest.mark.parametrize("fractions", ["{solid: 0.5}", "{am: 1.5}", "{pore: 0.6, am: 0.5}"])
def test_predict_volume_fractions_refused_before_predicting(fractions, tmp_path, rel, capsys):
    scan = tmp_path / "scan.tif"
    write_tiff(scan, rel.grains((8, 16, 16)), voxel_size=rel.VOXEL)
    ckpt = rel.save_checkpoint(tmp_path / "m.ckpt")
    out = tmp_path / "out"
    status, err = rel.cli(capsys, "predict", f"checkpoint={ckpt}", f"inputs=[{scan}]", f"out={out}",
                          "progress=false", f"volume_fractions={fractions}")
    rel.assert_one_line_error(status, err, "volume_fractions")
    assert not (out / "scan").exists()


def _out_cases(tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder")
    return {"out_is_file": blocker, "out_under_file": blocker / "sub"}


@pytest.mark.parametrize("where", ["out_is_file", "out_under_file"])
@pytest.mark.parametrize("command", ["segment", "analyze", "compare", "synth", "predict"])
def test_output_folder_cannot_be_written(command, where, tmp_path, rel, capsys):
    out = _out_cases(tmp_path)[where]
    labels = tmp_path / "labels.tif"
    write_tiff(labels, rel.labels(), voxel_size=rel.VOXEL)
    image = tmp_path / "image.tif"
    write_tiff(image, rel.grains((8, 16, 16)), voxel_size=rel.VOXEL)
    args = {"segment": [f"input={image}"], "analyze": [f"input={labels}"], "compare": [f"a={labels}", f"b={labels}"],
            "synth": ["preset=tiny", "shape=[4,16,16]"],
            "predict": [f"checkpoint={rel.save_checkpoint(tmp_path / 'm.ckpt')}", f"inputs=[{image}]",
                        "progress=false"]}[command]
    before = (tmp_path / "taken").read_bytes()
    status, err = rel.cli(capsys, command, *args, f"out={out}")
    rel.assert_one_line_error(status, err, "taken")
    assert (tmp_path / "taken").read_bytes() == before


def _half_then_disk_full(monkeypatch, module, name):
    """Replace module.name by a writer that writes half of something to its path, then fails like a full disk."""
    def full(path, *args, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"\x00" * 100)
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(module, name, full)


@pytest.mark.parametrize("command", ["segment", "predict", "synth"])
def test_disk_full_mid_write_leaves_old_outputs(command, tmp_path, good_out, rel, capsys, caplog, monkeypatch):
    image = tmp_path / "image.tif"
    write_tiff(image, rel.grains((8, 16, 16)), voxel_size=rel.VOXEL)
    if command == "predict":
        (good_out / "image").mkdir()
        (good_out / "image" / "labels.tif").write_bytes(b"good labels")
    args = {"segment": [f"input={image}"], "synth": ["preset=tiny", "shape=[4,16,16]"],
            "predict": [f"checkpoint={rel.save_checkpoint(tmp_path / 'm.ckpt')}", f"inputs=[{image}]",
                        "progress=false", "precision=fp32", "overwrite=true"]}[command]
    _half_then_disk_full(monkeypatch, tifffile, "imwrite")
    before = rel.snapshot(good_out)
    status, err = rel.cli(capsys, command, *args, f"out={good_out}")
    log = err + caplog.text  # predict logs each failed input and exits 1
    assert status == (1 if command == "predict" else 2) and "Traceback" not in log, log
    assert "No space left on device" in log
    after = rel.snapshot(good_out)
    assert {k: v for k, v in after.items() if k in before} == before
    assert not rel.leftovers(good_out)
    assert not any(k.endswith(".tif") for k in set(after) - set(before)), after


def test_analyze_disk_full_mid_write_leaves_old_outputs(tmp_path, good_out, rel, capsys, monkeypatch):
    import pathlib

    labels = tmp_path / "labels.tif"
    write_tiff(labels, rel.labels(), voxel_size=rel.VOXEL)
    (good_out / "metrics.json").write_text('{"good": true}')
    _half_then_disk_full(monkeypatch, pathlib.Path, "write_text")
    before = rel.snapshot(good_out)
    status, err = rel.cli(capsys, "analyze", f"input={labels}", f"out={good_out}", "figures=false")
    rel.assert_one_line_error(status, err, "No space left on device")
    assert rel.snapshot(good_out) == before
    assert not rel.leftovers(good_out)


@pytest.mark.parametrize("where", ["out_is_file", "out_under_file"])
def test_train_output_folder_cannot_be_written(where, tmp_path, tiny_cache, rel, capsys):
    out = _out_cases(tmp_path)[where]
    before = (tmp_path / "taken").read_bytes()
    status, err = rel.cli(capsys, "train", "model=unet3d_tiny", "trainer=fast", "data.synthetic.preset=tiny",
                          f"cache_dir={tiny_cache}", "loader.samples_per_epoch=2", "loader.val_patches=1",
                          f"out={out}")
    rel.assert_one_line_error(status, err, "taken")
    assert (tmp_path / "taken").read_bytes() == before


@pytest.mark.parametrize("voxel", ["[0,0.02,0.02]", "[-0.05,0.02,0.02]"])
def test_predict_bad_voxel_size(voxel, tmp_path, good_out, rel, capsys, caplog):
    scan = tmp_path / "scan.tif"
    write_tiff(scan, rel.grains((8, 16, 16)), voxel_size=rel.VOXEL)
    ckpt = rel.save_checkpoint(tmp_path / "m.ckpt")
    before = rel.snapshot(good_out)
    status, err = rel.cli(capsys, "predict", f"checkpoint={ckpt}", f"inputs=[{scan}]", f"out={good_out}",
                          "progress=false", f"voxel_size={voxel}")
    log = err + caplog.text
    assert status in (1, 2) and "Traceback" not in log and "voxel_size" in log
    assert not (good_out / "scan" / "labels.tif").exists()
    assert {k: v for k, v in rel.snapshot(good_out).items() if k in before} == before


@pytest.mark.parametrize("case", ["missing", "file", "empty_folder"])
def test_report_bad_run_folder(case, tmp_path, rel, capsys):
    folder = {"missing": tmp_path / "nope", "file": tmp_path / "file.txt", "empty_folder": tmp_path / "empty"}[case]
    if case == "file":
        folder.write_text("not a run folder")
    elif case == "empty_folder":
        folder.mkdir()
    before = rel.snapshot(tmp_path)
    status, err = rel.cli(capsys, "report", f"dir={folder}")
    rel.assert_one_line_error(status, err, folder.name)
    assert rel.snapshot(tmp_path) == before


@pytest.mark.parametrize("override, needle", [
    ("experiment=nope", "nope"), ("preset=nope", "nope"), ("data=nope", "nope"), ("no_such_key=1", "no_such_key")])
def test_run_unknown_options(override, needle, tmp_path, rel, capsys):
    """out lies under a file, so a run that ignored the bad option stops at once with an error about out."""
    blocker = tmp_path / "taken"
    blocker.write_text("a file")
    status, err = rel.cli(capsys, "run", override, f"out={blocker / 'run'}")
    rel.assert_one_line_error(status, err, needle)


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "truncated", "not_an_image", "wrong_dims", "nan"])
def test_compare_bad_label_file(case, tmp_path, good_out, rel, capsys):
    path, name = _bad_file(tmp_path, case, rel, labels=True)
    good = tmp_path / "good.tif"
    write_tiff(good, rel.labels((4, 32, 32)), voxel_size=rel.VOXEL)
    _check(rel, capsys, good_out, ["compare", f"a={good}", f"b={path}", f"out={good_out}"], name)


@pytest.mark.parametrize("shape", ["[0,16,16]", "[-4,16,16]", "[4,16]", "[a,b,c]"])
def test_synth_bad_shape(shape, tmp_path, good_out, rel, capsys):
    _check(rel, capsys, good_out, ["synth", "preset=tiny", f"shape={shape}", f"out={good_out}"], "shape")


def test_predict_channels_of_different_shapes(tmp_path, good_out, rel, capsys, caplog):
    """A two-detector input whose channel files differ in shape is refused, both files named."""
    cbs, tld = tmp_path / "cbs.tif", tmp_path / "tld.tif"
    write_tiff(cbs, rel.grains((8, 16, 16)), voxel_size=rel.VOXEL)
    write_tiff(tld, rel.grains((8, 16, 18)), voxel_size=rel.VOXEL)
    ckpt = rel.save_checkpoint(tmp_path / "m.ckpt", rel.tiny_spec(channels=("cbs", "tld")))
    before = rel.snapshot(good_out)
    status, err = rel.cli(capsys, "predict", f"checkpoint={ckpt}", f"inputs=[{{cbs: {cbs}, tld: {tld}}}]",
                          f"out={good_out}", "progress=false")
    log = err + caplog.text
    assert status == 1 and "Traceback" not in log
    assert "tld.tif" in log and "(8, 16, 18)" in log
    after = rel.snapshot(good_out)
    assert {k: v for k, v in after.items() if k in before} == before
    assert not any(k.endswith(".tif") for k in set(after) - set(before)), after

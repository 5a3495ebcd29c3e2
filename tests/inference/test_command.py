"""`electroseg predict` end to end through the CLI: outputs, exit status, one-line errors."""

import json

import numpy as np
import pandas as pd
import pytest

from electroseg.cli import main
from electroseg.io import write_tiff

VOXEL = (0.05, 0.02, 0.02)


@pytest.fixture()
def setup(tmp_path, kit):
    ckpt = kit.save_checkpoint(tmp_path / "m.ckpt", kit.tiny_spec(patch_size=(8, 16, 16)))
    for i, name in enumerate(["a", "b"]):
        write_tiff(tmp_path / "scans" / f"{name}.tif", kit.grains((8, 20, 18), seed=i), voxel_size=VOXEL)
    return ckpt, tmp_path


@pytest.mark.slow
def test_predict_command_with_glob_and_analysis(setup):
    ckpt, tmp = setup
    out = tmp / "out"
    status = main(["predict", f"checkpoint={ckpt}", f"inputs={tmp}/scans/*.tif", f"out={out}",
                   "analyze=true", "progress=false", "precision=fp32"])
    assert status == 0
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["name"]) == ["a", "b"] and set(summary["status"]) == {"ok"}
    metrics = json.loads((out / "a" / "metrics.json").read_text())
    assert metrics["volume_fraction"]["am"] == pytest.approx(summary.loc[0, "fraction_am"])
    assert (out / "config.yaml").exists()


def test_predict_command_exit_status_and_one_line_errors(setup, capsys):
    ckpt, tmp = setup
    out = tmp / "out"
    status = main(["predict", f"checkpoint={ckpt}", f"inputs=[{tmp}/scans/a.tif,{tmp}/scans/nope.tif]",
                   f"out={out}", "progress=false"])
    assert status == 1  # one input failed, the other was written
    assert (out / "a" / "labels.tif").exists()
    bad = tmp / "bad.ckpt"
    bad.write_bytes(b"\x00not a checkpoint")
    assert main(["predict", f"checkpoint={bad}", f"inputs={tmp}/scans/a.tif", f"out={out}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "bad.ckpt: not a readable checkpoint" in err and "Traceback" not in err


def test_predict_command_takes_a_fixed_intensity_window(setup, capsys):
    ckpt, tmp = setup
    out = tmp / "out"
    assert main(["predict", f"checkpoint={ckpt}", f"inputs={tmp}/scans/a.tif", f"out={out}", "progress=false",
                 "intensity_window=[1000,50000]", "uncertainty=false"]) == 0
    record = json.loads((out / "a" / "prediction.json").read_text())
    assert record["intensity"] == [{"lo": 1000.0, "hi": 50000.0, "route": "given"}]
    # a reversed window is refused in one line before any input is read
    status = main(["predict", f"checkpoint={ckpt}", f"inputs={tmp}/scans/b.tif", f"out={tmp / 'out2'}",
                   "progress=false", "intensity_window=[5,1]"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert status == 2 and "intensity_window: expected [lo, hi] with lo < hi, got [5, 1]" in err
    assert "Traceback" not in err and not (tmp / "out2" / "b").exists()
    # a crop predicted in its parent's window, read from the parent's prediction.json
    write_tiff(tmp / "crop.tif", np.asarray(_crop(tmp / "scans" / "a.tif")), voxel_size=VOXEL)
    assert main(["predict", f"checkpoint={ckpt}", f"inputs={tmp}/crop.tif", f"out={tmp / 'out3'}", "progress=false",
                 f"intensity_window={out / 'a' / 'prediction.json'}", "uncertainty=false"]) == 0
    record = json.loads((tmp / "out3" / "crop" / "prediction.json").read_text())
    assert record["intensity"] == [{"lo": 1000.0, "hi": 50000.0, "route": "given"}]
    status = main(["predict", f"checkpoint={ckpt}", f"inputs={tmp}/crop.tif", f"out={tmp / 'out4'}",
                   "progress=false", f"intensity_window={tmp / 'nope.json'}"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert status == 2 and "intensity_window: expected [lo, hi] or a prediction.json, got" in err and "nope.json" in err


def _crop(path):
    import tifffile

    return tifffile.imread(path)[:, 2:18, 3:16]

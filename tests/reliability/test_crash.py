"""Crashes: a SIGKILLed `predict` or `train` leaves only complete files, and the same command run
again finishes the work without redoing what was finished. Real subprocesses, real kills."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile
import torch

from electroseg.io import read_volume, write_tiff

pytestmark = pytest.mark.slow

ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _start(*args, cwd):
    return subprocess.Popen([sys.executable, "-m", "electroseg.cli", *map(str, args)], cwd=cwd, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _kill_when(proc, ready, *, timeout=90.0) -> bool:
    """SIGKILL proc as soon as ready() holds; False when proc ended (or timed out) first."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if ready():
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                return True
            if proc.poll() is not None:
                return False
            time.sleep(0.02)
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def _outputs(folder):
    """Output files of a folder, without atomic_output temporaries."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and ".tmp-" not in str(p.relative_to(folder)))


def test_killed_predict_batch_resumes_without_redoing_finished_inputs(tmp_path, rel):
    names = [f"scan{i}" for i in range(6)]
    for i, name in enumerate(names):
        write_tiff(tmp_path / "scans" / f"{name}.tif", rel.grains((16, 64, 64), seed=i), voxel_size=rel.VOXEL)
    ckpt = rel.save_checkpoint(tmp_path / "m.ckpt")
    out = tmp_path / "out"
    args = ["predict", f"checkpoint={ckpt}", f"inputs={tmp_path}/scans/*.tif", f"out={out}", "progress=false",
            "precision=fp32", "batch_size=1"]

    def markers():
        return [n for n in names if (out / n / "prediction.json").is_file()]

    proc = _start(*args, cwd=tmp_path)
    killed = _kill_when(proc, lambda: bool(markers()))
    assert killed, f"predict finished before it could be killed: {proc.stderr.read()[-2000:]}"
    finished = markers()
    assert 0 < len(finished) < len(names), "the kill should land mid-batch"
    # whatever exists after the kill opens cleanly: markers are complete JSON, labels complete TIFFs
    for name in finished:
        json.loads((out / name / "prediction.json").read_text())
        assert read_volume(out / name / "labels.tif").shape == (16, 64, 64)
    stamps = {n: ((out / n / "prediction.json").read_bytes(), (out / n / "labels.tif").stat().st_mtime_ns)
              for n in finished}

    rerun = rel.run_cli(*args, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    for name in finished:  # not redone: same marker bytes, same label file
        assert (out / name / "prediction.json").read_bytes() == stamps[name][0]
        assert (out / name / "labels.tif").stat().st_mtime_ns == stamps[name][1]
        assert f"{name}: complete from an earlier run, skipped" in rerun.stderr
    for name in names:
        labels = tifffile.imread(out / name / "labels.tif")
        assert labels.shape == (16, 64, 64) and labels.dtype == np.uint8 and labels.max() <= 2
    summary = (out / "summary.csv").read_text()
    assert all(name in summary for name in names) and "failed" not in summary
    for path in _outputs(out):
        if path.suffix == ".json":
            json.loads(path.read_text())


TRAIN = ["data.synthetic.preset=tiny", "model=unet3d_tiny", "trainer=fast", "trainer.enable_progress_bar=false",
         "loader.samples_per_epoch=8", "loader.val_patches=2"]


def test_killed_training_resumes_from_last_checkpoint(tmp_path, tiny_cache, rel):
    out = tmp_path / "run"
    args = ["train", *TRAIN, f"out={out}", f"cache_dir={tiny_cache}", "ckpt_path=last",
            "callbacks.checkpoint_every_n_steps=1", "trainer.max_epochs=2"]
    last = out / "checkpoints" / "last.ckpt"
    proc = _start(*args, cwd=tmp_path)
    killed = _kill_when(proc, last.is_file)
    assert killed, f"train finished before it could be killed: {proc.stderr.read()[-2000:]}"
    assert not (out / "train_metrics.json").exists()
    for ckpt in _outputs(out / "checkpoints"):  # whatever exists after the kill loads cleanly
        torch.load(ckpt, map_location="cpu", weights_only=True)
    step_at_kill = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    assert step_at_kill < 8  # 2 epochs x 4 batches

    rerun = rel.run_cli(*args, cwd=tmp_path, timeout=240)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming from" in rerun.stderr
    final = torch.load(last, map_location="cpu", weights_only=True)
    assert final["global_step"] == 8  # the 4 + 4 steps of both epochs, none twice
    json.loads((out / "train_metrics.json").read_text())
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]

"""Builders for the reliability tests: small inputs, a tiny checkpoint, CLI runners, folder snapshots.

Tests run with --import-mode=importlib, so the helpers reach test modules as the `rel` fixture.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from electroseg.cli import main

PHASES = ("pore", "cbd", "am")
VOXEL = (0.05, 0.02, 0.02)
REPO = Path(__file__).resolve().parents[2]


def grains(shape, *, seed: int = 0) -> np.ndarray:
    """Smooth random uint16 image with three grey levels plus noise (a fake FIB-SEM slab)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.random(shape), 2.0)
    levels = np.digitize(field, np.quantile(field, [0.4, 0.7]))
    return (levels * 20000 + 5000 + rng.normal(0, 2000, shape)).clip(0, 65535).astype(np.uint16)


def labels(shape=(6, 12, 10), *, seed: int = 0) -> np.ndarray:
    """uint8 phase labels 0..2 in blobs."""
    return (grains(shape, seed=seed) // 20000).clip(0, 2).astype(np.uint8)


def tiny_spec(*, phases=PHASES, patch_size=(8, 16, 16), channels=("bse",)):
    from electroseg.models import ModelSpec

    kwargs = dict(in_channels=len(channels), out_channels=len(phases), channels=[4, 8], strides=[[1, 1, 1], [2, 2, 2]],
                  kernel_sizes=[[3, 3, 3]] * 2)
    return ModelSpec(name="unet3d", kwargs=kwargs, phases=tuple(phases), channels=tuple(channels),
                     voxel_size=VOXEL, patch_size=tuple(patch_size), context_slices=0,
                     normalization={"method": "percentile", "lower": 1, "upper": 99})


def save_checkpoint(path: Path, spec=None, *, seed: int = 0, spec_dict=None) -> Path:
    """Lightning-style checkpoint as `electroseg train` writes: spec under "electroseg", weights "net.*"."""
    import torch

    from electroseg.models import build_model

    spec = spec or tiny_spec()
    torch.manual_seed(seed)
    net = build_model(spec)
    torch.save({"electroseg": spec_dict or spec.to_dict(), "epoch": 1,
                "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, path)
    return path


def cli(capsys, *args: str) -> tuple[int, str]:
    """Run `electroseg` in-process; return (exit status, stderr)."""
    capsys.readouterr()
    status = main([str(a) for a in args])
    return status, capsys.readouterr().err


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python -m electroseg.cli` in a subprocess (the real console path)."""
    env = dict(os.environ, PYTHONHASHSEED="0", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "electroseg.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def snapshot(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under folder (empty when it does not exist)."""
    if not folder.exists():
        return {}
    if folder.is_file():
        return {".": hashlib.sha256(folder.read_bytes()).hexdigest()}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_one_line_error(status: int, err: str, *needles: str) -> None:
    """Exit 2, no traceback, the last stderr line is `electroseg: error: ...` naming each needle."""
    assert status == 2, err
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("electroseg: error: "), err
    for needle in needles:
        assert needle in last, (needle, last)


def leftovers(folder: Path) -> list[Path]:
    """Temporary files of atomic_output still present (a failed run must leave none)."""
    return [p for p in folder.rglob("*") if ".tmp-" in p.name] if folder.exists() else []


@pytest.fixture()
def rel():
    return SimpleNamespace(PHASES=PHASES, VOXEL=VOXEL, REPO=REPO, grains=grains, labels=labels,
                           tiny_spec=tiny_spec, save_checkpoint=save_checkpoint, cli=cli, run_cli=run_cli,
                           snapshot=snapshot, assert_one_line_error=assert_one_line_error, leftovers=leftovers)


TINY_TRAIN = ["data.synthetic.preset=tiny", "model=unet3d_tiny", "trainer=fast", "trainer.enable_progress_bar=false",
              "loader.samples_per_epoch=8", "loader.val_patches=2"]


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> Path:
    """Cache folder with the generated tiny synthetic samples and pseudo-labels, shared by training tests."""
    from electroseg.synthetic.samples import prepare_synthetic
    from electroseg.config import compose_command

    cache = tmp_path_factory.mktemp("cache")
    prepare_synthetic(compose_command("train", [*TINY_TRAIN, "out=unused", f"cache_dir={cache}"]))
    return cache

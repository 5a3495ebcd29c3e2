"""Small checkpoints, known predictors and a logit-recording sink, shared through the `kit` fixture.

Tests run with --import-mode=importlib, so helpers reach test modules as a fixture, not an import.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from electroseg.inference.engine import Sink
from electroseg.models import ModelSpec, build_model

PHASES = ("pore", "cbd", "am")


def tiny_spec(*, name: str = "unet3d", channels=("bse",), context_slices: int = 0,
              patch_size=(8, 16, 16), normalization=None) -> ModelSpec:
    """Two-level U-Net spec with 4/8 features: fast enough for tests on 2 cores."""
    dims = 3 if name == "unet3d" else 2
    kwargs = dict(in_channels=len(channels) * (2 * context_slices + 1), out_channels=3,
                  channels=[4, 8], strides=[[1] * dims, [2] * dims], kernel_sizes=[[3] * dims] * 2)
    return ModelSpec(name=name, kwargs=kwargs, phases=PHASES, channels=tuple(channels),
                     voxel_size=(0.05, 0.02, 0.02)[-dims:], patch_size=tuple(patch_size),
                     context_slices=context_slices,
                     normalization=normalization or {"method": "percentile", "lower": 1, "upper": 99})


def save_checkpoint(path: Path, spec: ModelSpec, *, seed: int = 0) -> Path:
    """A Lightning-style checkpoint: spec under "electroseg", weights under "net." keys."""
    torch.manual_seed(seed)
    net = build_model(spec)
    torch.save({"electroseg": spec.to_dict(), "epoch": 3,
                "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, path)
    return path


class PlusOne(nn.Module):
    """Known pointwise predictor: logits (x + 1, 2x, -x) from a one-channel input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x + 1, 2 * x, -x], dim=1)


class Identity(nn.Module):
    """Logits = the input channels (for checking 2.5D channel order)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 1.0


def plus_one_logits(volume: np.ndarray) -> np.ndarray:
    return np.stack([volume + 1, 2 * volume, -volume]).astype(np.float32)


class LogitSink(Sink):
    """Records the blended logits instead of labels."""

    def __init__(self, n_classes: int, shape) -> None:
        self.logits = np.full((n_classes, *shape), np.nan, np.float32)

    def emit(self, z0, logits) -> None:
        self.logits[:, z0:z0 + logits.shape[1]] = logits.cpu().numpy()


def grains(shape, *, seed: int = 0) -> np.ndarray:
    """Smooth random uint16 image with three grey levels plus noise (a fake FIB-SEM slab)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.random(shape), 2.0)
    levels = np.digitize(field, np.quantile(field, [0.4, 0.7]))
    return (levels * 20000 + 5000 + rng.normal(0, 2000, shape)).clip(0, 65535).astype(np.uint16)


@pytest.fixture()
def kit():
    """The builders above: kit.tiny_spec, kit.save_checkpoint, kit.PlusOne, kit.LogitSink, ..."""
    return SimpleNamespace(PHASES=PHASES, tiny_spec=tiny_spec, save_checkpoint=save_checkpoint,
                           PlusOne=PlusOne, Identity=Identity, plus_one_logits=plus_one_logits,
                           LogitSink=LogitSink, grains=grains)

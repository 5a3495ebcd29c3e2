"""Fixtures: the real composed ``train`` config pointed at a tiny synthetic sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from electroseg.synthetic.samples import prepare_synthetic
from electroseg.config import compose_command

TINY = ["data=nmc_fibsem", "data.synthetic.preset=tiny", "model=unet3d_tiny", "trainer=fast",
        "trainer.enable_progress_bar=false", "loader.samples_per_epoch=8", "loader.val_patches=2"]


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> Path:
    """Cache folder holding the generated tiny samples (seeds 0, 1) and their pseudo-labels."""
    cache = tmp_path_factory.mktemp("cache")
    prepare_synthetic(compose_command("train", [*TINY, "out=unused", f"cache_dir={cache}"]))
    return cache


@pytest.fixture
def train_config(tiny_cache, tmp_path):
    """``compose(overrides) -> DictConfig`` of the real train config on the tiny sample."""

    def compose(*overrides: str):
        cfg = compose_command("train", [*TINY, f"out={tmp_path / 'run'}", f"cache_dir={tiny_cache}", *overrides])
        prepare_synthetic(cfg)
        return cfg

    return compose

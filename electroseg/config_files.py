"""Where the built-in Hydra configs live (shipped inside the package as ``electroseg.configs``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any


def builtin_config_dir() -> Path:
    """Return the folder holding the built-in ``configs/`` (editable or installed)."""
    return Path(str(resources.files("electroseg.configs")))


def builtin_config(name: str) -> dict[str, Any]:
    """One built-in config file (``name`` relative to :func:`builtin_config_dir`, e.g.
    ``"model/unet3d.yaml"``) as a plain dict, without composing it."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(builtin_config_dir() / name))

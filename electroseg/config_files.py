"""Where the built-in Hydra configs live (shipped inside the package as ``electroseg.configs``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def builtin_config_dir() -> Path:
    """Return the folder holding the built-in ``configs/`` (editable or installed)."""
    return Path(str(resources.files("electroseg.configs")))

"""Reading and checking checkpoints before resuming or fine-tuning."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from electroseg.errors import InputError
from electroseg.models import ModelSpec, spec_from_checkpoint

__all__ = ["read_checkpoint", "check_compatible"]


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with clear errors for missing or corrupt files."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"{path}: not a readable checkpoint (corrupt or truncated file? {first})") from None
    spec_from_checkpoint(checkpoint, source=str(path))
    return checkpoint


def check_compatible(stored: ModelSpec, wanted: ModelSpec, *, source: str) -> None:
    """Refuse to resume from a checkpoint of another model, phase set or channel set."""
    for field, what in (("name", "model"), ("phases", "phases"), ("channels", "detector channels"),
                        ("context_slices", "context slices"), ("kwargs", "network settings")):
        a, b = getattr(stored, field), getattr(wanted, field)
        if a != b:
            raise InputError(
                f"{source}: checkpoint was trained with {what} {a!r} but this run uses {b!r}; "
                "use a matching checkpoint or start fresh (ckpt_path=null, new out=)"
            )

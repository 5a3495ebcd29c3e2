"""Reading and checking checkpoints before resuming or fine-tuning."""

from __future__ import annotations

from electroseg.errors import InputError
from electroseg.models import ModelSpec, read_checkpoint

__all__ = ["read_checkpoint", "check_compatible"]


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

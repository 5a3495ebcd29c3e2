"""The electrode models shipped inside the package, trained on domain-randomised synthetic data.

``models.json`` (written by ``benchmarks/pretrain.py``, which reproduces every file here) lists
each model: its checkpoint file, phases, channels, sha256 and a one-line summary; ``NAME.md`` is
its model card (training data, recipe, measured scores, limits). ``pretrained:NAME`` stands for
the checkpoint wherever a command takes one (``predict``, ``run``, ``inspect``, ``export``, and
``train init=``).
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

from electroseg.errors import InputError

__all__ = ["PREFIX", "available", "card_path", "resolve_checkpoint"]

PREFIX = "pretrained:"
FOLDER = Path(__file__).resolve().parent


def available() -> dict[str, dict]:
    """``{name: entry}`` from models.json (empty when no model ships)."""
    path = FOLDER / "models.json"
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text(encoding="utf-8")).get("models", {}))


def card_path(name: str) -> Path:
    """The model card of ``name``."""
    return FOLDER / f"{_entry(name)[0]}.md"


def _entry(name: str) -> tuple[str, dict]:
    models = available()
    if name not in models:
        known = ", ".join(sorted(models)) or "none ships with this installation"
        raise InputError(f"{PREFIX}{name}: no such pretrained model (known: {known}; `electroseg models` lists them)")
    return name, models[name]


@lru_cache(maxsize=None)
def _verified(path: str, sha256: str) -> bool:
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if digest != sha256:
        raise InputError(f"{path}: sha256 {digest[:12]}... differs from models.json's {sha256[:12]}... "
                         "(the shipped weights were changed; reinstall electroseg)")
    return True


def resolve_checkpoint(value: str | os.PathLike) -> Path:
    """``pretrained:NAME`` → the shipped checkpoint (its sha256 checked once per process); any
    other value → ``Path(value)``."""
    text = os.fspath(value)
    if not text.startswith(PREFIX):
        return Path(text)
    name, entry = _entry(text[len(PREFIX):])
    path = FOLDER / entry["file"]
    if not path.is_file():
        raise InputError(f"{text}: the weights file {path.name} is missing from the installation")
    _verified(str(path), entry["sha256"])
    return path

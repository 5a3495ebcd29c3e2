"""Which inputs a batch covers: globs, paths, per-detector mappings and channel folders.

An entry of ``inputs`` is one of

- a path (``scan.tif``, ``scan.zarr``, ``scan.h5:/data``, a folder of 2-D slices) for a
  one-channel model, or a channels-first multi-channel file;
- a glob pattern (``scans/*.tif``), expanded in natural order;
- a mapping ``{detector: path}`` (e.g. ``{cbs: a.tif, tld: b.tif}``) for several detectors;
  an optional ``name`` key names the input (default: the first file's stem);
- a folder holding ``image_<detector>.tif`` files, one per checkpoint channel (the folder name
  names the input).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from electroseg.errors import InputError
from electroseg.io import Volume, read_channels, read_volume

_SUFFIXES = (".ome.tiff", ".ome.tif", ".tiff", ".tif", ".zarr", ".h5", ".hdf5", ".npy", ".png")


@dataclass(frozen=True)
class InputItem:
    """One input of a batch: its output name and its file(s) (one path or detector -> path)."""

    name: str
    path: str | None = None
    channels: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return self.path if self.path is not None else ", ".join(f"{k}={v}" for k, v in self.channels.items())

    def read(self, *, lazy: bool, voxel_size: Sequence[float] | None) -> Volume:
        """Open the input (lazily when asked); missing files raise InputError naming them."""
        for path in ([self.path] if self.path is not None else list(self.channels.values())):
            if not Path(str(path).split(".h5:")[0].split(".hdf5:")[0]).exists():
                raise InputError(f"{path}: input not found")
        if self.path is not None:
            return read_volume(self.path, voxel_size=voxel_size, lazy=lazy)
        return read_channels(dict(self.channels), voxel_size=voxel_size, lazy=lazy)


def _stem(path: str) -> str:
    name = Path(str(path).split(":")[0] if ".h5:" in str(path) else str(path)).name
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _channel_folder(folder: Path, channels: Sequence[str]) -> dict[str, str] | None:
    """``{detector: folder/image_<detector>.tif}`` when the folder is laid out that way."""
    found = {p.name.split(".")[0][len("image_"):]: str(p) for p in folder.glob("image_*.tif*")}
    if not found:
        return None
    missing = [c for c in channels if c not in found]
    if missing:
        raise InputError(f"{folder}: expected image_<channel>.tif for channels {list(channels)}, "
                         f"found {sorted(found)}; missing {missing}")
    return {c: found[c] for c in channels}


def _expand(entry: Any, channels: Sequence[str]) -> list[InputItem]:
    if isinstance(entry, Mapping):
        files = {str(k): str(v) for k, v in entry.items() if k != "name"}
        if not files:
            raise InputError(f"inputs: a mapping entry needs detector: path items, got {dict(entry)}")
        return [InputItem(name=str(entry.get("name") or _stem(next(iter(files.values())))), channels=files)]
    text = os.fspath(entry) if isinstance(entry, (str, os.PathLike)) else None
    if text is None:
        raise InputError(f"inputs: expected a path, glob or {{detector: path}} mapping, got {entry!r}")
    if glob.has_magic(text):
        from natsort import natsorted

        matches = natsorted(glob.glob(text))
        if not matches:
            raise InputError(f"inputs: the pattern {text!r} matched no files")
        return [item for match in matches for item in _expand(match, channels)]
    path = Path(text)
    if path.is_dir() and path.suffix.lower() != ".zarr" and len(channels) > 1:
        files = _channel_folder(path, channels)
        if files is not None:
            return [InputItem(name=path.name, channels=files)]
    return [InputItem(name=_stem(text), path=text)]


def resolve_inputs(inputs: Any, *, channels: Sequence[str] = ()) -> list[InputItem]:
    """Expand ``inputs`` (one entry or a list of entries, see module doc) into named items.

    Raises InputError when nothing is listed, a pattern matches nothing or two inputs would
    write to the same output folder.
    """
    entries = [inputs] if isinstance(inputs, (str, os.PathLike, Mapping)) else list(inputs or [])
    items = [item for entry in entries for item in _expand(entry, channels)]
    if not items:
        raise InputError("inputs: expected at least one input (a path, glob or list), got none")
    names = [item.name for item in items]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"inputs: several inputs share the output name(s) {duplicates}; rename the "
                         "files or give mapping entries a distinct 'name'")
    return items

"""Dataset configs: which image files, label files and splits make up a training dataset.

A dataset config is a YAML file (see ``configs/data/TEMPLATE.yaml``). Paths in ``volumes`` are
relative to ``root``; ``root`` itself is absolute or relative to the folder the config file is
in, whether it is read with :func:`read_dataset_config` or composed by a command (built-in or from
``--config-dir``; `electroseg.config` resolves it). The built-in configs of third-party data say
``root: ${data_dir:<folder>}``: ``$ELECTROSEG_DATA/<folder>``. ``root: null`` means the folder of
the config file or, for ``synthetic`` datasets, the cache folder the samples are generated into.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from electroseg.errors import InputError
from electroseg.models.logit_bias import check_volume_fractions

__all__ = ["DatasetConfig", "VolumeEntry", "parse_dataset_config", "read_dataset_config", "SPLITS"]

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
_KEYS = {"name", "phases", "voxel_size", "depth_axis", "channels", "volumes", "ignore_value",
         "label_values", "pseudo_labels", "root", "synthetic", "classical", "preprocess", "volume_fractions"}
_VOLUME_KEYS = {"images", "hand_labels", "labels", "split"}


@dataclass(frozen=True)
class VolumeEntry:
    """One scan: an image file per detector channel and optional label files (resolved paths)."""

    images: Mapping[str, Path]
    split: str
    hand_labels: Path | None = None
    labels: Path | None = None

    @property
    def name(self) -> str:
        """The volume's name in training logs, scores and a checkpoint's held-out errors
        (``by_volume``): its image paths, joined."""
        return ", ".join(str(p) for p in self.images.values())


@dataclass(frozen=True)
class DatasetConfig:
    """A validated dataset config (see ``configs/data/TEMPLATE.yaml`` for every field)."""

    name: str
    phases: tuple[str, ...]
    channels: tuple[str, ...]
    volumes: tuple[VolumeEntry, ...]
    voxel_size: tuple[float, ...] | None = None
    depth_axis: int = 1
    ignore_value: int = 255
    label_values: tuple[int, ...] | None = None
    pseudo_labels: bool = False
    classical: Mapping[str, Any] = field(default_factory=dict)
    preprocess: tuple[Mapping[str, Any], ...] = ()
    volume_fractions: Mapping[str, float] | None = None

    def split(self, name: str) -> tuple[VolumeEntry, ...]:
        """Volumes of one split (``train``, ``val`` or ``test``)."""
        return tuple(v for v in self.volumes if v.split == name)

    def to_dict(self) -> dict:
        """JSON-able summary."""
        return {
            "name": self.name, "phases": list(self.phases), "channels": list(self.channels),
            "voxel_size": None if self.voxel_size is None else list(self.voxel_size),
            "volumes": [{"images": {k: str(p) for k, p in v.images.items()}, "split": v.split,
                         "hand_labels": v.hand_labels and str(v.hand_labels),
                         "labels": v.labels and str(v.labels)} for v in self.volumes],
        }


def read_dataset_config(path: str | os.PathLike) -> DatasetConfig:
    """Read a dataset YAML; relative paths resolve against its folder (or its ``root``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such dataset config file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise InputError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    root = data.get("root") if isinstance(data, dict) else None
    base = path.parent if root is None else (path.parent / str(root))
    return parse_dataset_config(data, root=base, name=str(path))


def parse_dataset_config(
    data: Mapping[str, Any], *, root: str | os.PathLike, name: str = "data"
) -> DatasetConfig:
    """Validate a dataset mapping (e.g. ``cfg.data`` as a plain dict) and resolve its paths.

    Parameters
    ----------
    data : mapping
        The dataset config; keys as in ``configs/data/TEMPLATE.yaml``.
    root : path
        Folder that relative paths in ``data["volumes"]`` are relative to.
    name : str
        How to refer to this config in error messages.
    """
    if not isinstance(data, Mapping):
        raise InputError(f"{name}: expected a mapping of dataset settings, got {type(data).__name__}")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise InputError(f"{name}: unknown keys {unknown}; expected keys among {sorted(_KEYS)}")
    phases = _str_list(data.get("phases", ["pore", "cbd", "am"]), f"{name}: phases")
    channels = _str_list(data.get("channels"), f"{name}: channels")
    volumes = data.get("volumes") or []
    if not isinstance(volumes, Sequence) or not volumes:
        raise InputError(f"{name}: expected a non-empty list 'volumes', got {volumes!r}")
    entries = tuple(_volume(v, i, channels, Path(root), name) for i, v in enumerate(volumes))
    if not any(e.split == "train" for e in entries):
        raise InputError(f"{name}: no volume has split: train (splits given: {[e.split for e in entries]})")
    label_values = data.get("label_values")
    if label_values is not None and len(label_values) != len(phases):
        raise InputError(f"{name}: label_values {list(label_values)} needs one value per phase {phases}")
    voxel_size = data.get("voxel_size")
    return DatasetConfig(
        name=str(data.get("name", name)), phases=tuple(phases), channels=tuple(channels),
        volumes=entries,
        voxel_size=None if voxel_size is None else tuple(float(v) for v in voxel_size),
        depth_axis=int(data.get("depth_axis", 1)), ignore_value=int(data.get("ignore_value", 255)),
        label_values=None if label_values is None else tuple(int(v) for v in label_values),
        pseudo_labels=bool(data.get("pseudo_labels", False)),
        classical=dict(data.get("classical") or {}),
        preprocess=_steps(data.get("preprocess"), name),
        volume_fractions=check_volume_fractions(data.get("volume_fractions"), phases, name),
    )


def _steps(value: Any, name: str) -> tuple[dict, ...]:
    if value is None:
        return ()
    if not isinstance(value, Sequence) or not all(isinstance(s, Mapping) and "step" in s for s in value):
        raise InputError(f"{name}: preprocess must be a list of {{step: NAME, ...}} mappings, got {value!r}")
    return tuple(dict(s) for s in value)


def _str_list(value: Any, what: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise InputError(f"{what}: expected a non-empty list of names, got {value!r}")
    return [str(v) for v in value]


def _volume(entry: Any, index: int, channels: list[str], root: Path, name: str) -> VolumeEntry:
    where = f"{name}: volumes[{index}]"
    if not isinstance(entry, Mapping) or set(entry) - _VOLUME_KEYS:
        raise InputError(f"{where}: expected keys among {sorted(_VOLUME_KEYS)}, got {entry!r}")
    images = entry.get("images")
    if not isinstance(images, Mapping) or list(images) != channels:
        got = list(images) if isinstance(images, Mapping) else images
        raise InputError(f"{where}: 'images' needs one file per channel {channels} in that order, got {got}")
    split = str(entry.get("split", "train"))
    if split not in SPLITS:
        raise InputError(f"{where}: split must be one of {SPLITS}, got {split!r}")

    def resolve(p: Any) -> Path | None:
        return None if p is None else (root / str(p)).resolve()

    return VolumeEntry(images={c: resolve(p) for c, p in images.items()}, split=split,
                       hand_labels=resolve(entry.get("hand_labels")), labels=resolve(entry.get("labels")))

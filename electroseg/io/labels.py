"""Reading and validating label volumes (phase indices, uint8)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from electroseg import DEFAULT_PHASES
from electroseg.errors import InputError
from electroseg.io.readers import read_volume
from electroseg.io.volume import Volume

logger = logging.getLogger(__name__)

UNLABELLED = 255
"""Unlabelled voxels of a label array in memory; `read_labels` maps a file's stored ignore value to it."""


def label_file_spec(value: Any, *, key: str = "hand_labels") -> dict[str, Any]:
    """``{"path", "label_values", "ignore_value"}`` of a label file given as a path, or as a
    mapping with ``path`` and, for files stored with other values, ``label_values`` and
    ``ignore_value`` (NREL's scribbles: ``{path: ..., label_values: [2, 1], ignore_value: 0}``).

    Examples
    --------
    >>> label_file_spec("hand.tif")
    {'path': 'hand.tif', 'label_values': None, 'ignore_value': 255}
    >>> label_file_spec({"path": "s.tif", "label_values": [2, 1], "ignore_value": 0})["label_values"]
    [2, 1]
    """
    if not isinstance(value, Mapping):
        return {"path": str(value), "label_values": None, "ignore_value": UNLABELLED}
    if set(value) - {"path", "label_values", "ignore_value"} or "path" not in value:
        raise InputError(f"{key}: expected a file, or {{path: ..., label_values: [...], ignore_value: N}}, "
                         f"got {dict(value)}")
    values = value.get("label_values")
    try:
        values = None if values is None else [int(v) for v in values]
        ignore = int(value.get("ignore_value", UNLABELLED))
    except (TypeError, ValueError):
        raise InputError(f"{key}: label_values must be integers and ignore_value one integer, "
                         f"got {dict(value)}") from None
    return {"path": str(value["path"]), "label_values": values, "ignore_value": ignore}


def read_labels(
    path: str | os.PathLike,
    *,
    phases: Sequence[str] = DEFAULT_PHASES,
    label_values: Sequence[int] | None = None,
    ignore_value: int = 255,
    voxel_size: Any = None,
) -> Volume:
    """Read a label volume and return phase indices as uint8.

    Parameters
    ----------
    path : path
        Any format `read_volume` reads.
    phases : sequence of str
        Phase names; phase ``i`` is label ``i`` in the result.
    label_values : sequence of int, optional
        The stored value of each phase, in the order of ``phases`` (e.g. ``[0, 85, 170]``).
        Default: ``0 .. len(phases) - 1``.
    ignore_value : int
        Stored value of unlabelled voxels; 255 in the result, whatever value the file stores.

    Raises
    ------
    InputError
        Non-integer labels, or values outside ``label_values`` and ``ignore_value`` (the message
        lists them and how to map them); a file that names other phases than ``phases``.

    Notes
    -----
    A label file that names its phases (electroseg's label TIFFs and OME-Zarr label images,
    :func:`recorded_phases`) is read by name, with 255 unlabelled: the same phases in another
    order are mapped to the order of ``phases``, and ``label_values`` / ``ignore_value`` are
    left for files that do not name their phases (one command often reads both: a segmentation
    and hand labels stored with other values). A file naming other phases is refused unless
    ``label_values`` maps its stored values.
    """
    recorded = recorded_phases(path)
    if recorded is not None and sorted(recorded) == sorted(phases):
        by_name = [recorded.index(p) for p in phases]
        if (label_values is not None and [int(v) for v in label_values] != by_name) or int(ignore_value) != UNLABELLED:
            # one label_values / ignore_value serves several files of a command (a segmentation and
            # its hand labels): a file that names its phases is read by them, the others by the values
            logger.info("%s: the file names its phases %s (value i = phase i, 255 unlabelled): read by name; "
                        "label_values=%s and ignore_value=%s apply to label files that do not name them",
                        path, list(recorded), None if label_values is None else list(label_values), ignore_value)
        label_values, ignore_value = by_name, UNLABELLED
    elif recorded is not None and label_values is None:
        raise InputError(f"{path}: the file names its phases {list(recorded)} (value i = phase i), but "
                         f"phases={list(phases)} were asked for; give phases={list(recorded)}, or "
                         "label_values=[...] to map the stored values yourself")
    volume = read_volume(path, voxel_size=voxel_size, allow_channels=False)
    labels = to_phase_indices(volume.numpy(), phases=phases, label_values=label_values,
                              ignore_value=ignore_value, name=volume.name)
    return Volume(labels, volume.voxel_size, (), volume.source)


def labelled_slices(labels: Any, *, unlabelled: int = 255) -> list[int]:
    """Indices of the planes along axis 0 (Z) holding any voxel other than ``unlabelled``; a
    2-D array is slice 0.

    >>> labelled_slices(np.array([[[255, 255]], [[255, 2]], [[0, 255]]]))
    [1, 2]
    >>> labelled_slices(np.array([[0, 0], [0, 3]]), unlabelled=0)
    [0]
    """
    planes = np.asarray(labels)
    planes = planes[None] if planes.ndim == 2 else planes
    marked = (planes != unlabelled).reshape(planes.shape[0], -1).any(axis=1)
    return [int(z) for z in np.flatnonzero(marked)]


def recorded_phases(path: str | os.PathLike) -> tuple[str, ...] | None:
    """The phase names a label file records (value i = phase i), else None.

    ImageJ TIFFs written with ``write_tiff(..., phases=...)`` (ImageJ property ``phases``) and
    OME-Zarr label images (``image-label`` properties) record them; other files do not.
    """
    from pathlib import Path

    from electroseg.io.ngff import ngff_phases
    from electroseg.io.writers import label_phases

    path = Path(os.fspath(path))
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff") and path.is_file():
            return label_phases(path)
        if suffix == ".zarr" and path.is_dir():
            return ngff_phases(path)
    except Exception:  # noqa: BLE001 - an unreadable file is reported by read_volume with its own line
        return None
    return None


def to_phase_indices(
    array: np.ndarray,
    *,
    phases: Sequence[str] = DEFAULT_PHASES,
    label_values: Sequence[int] | None = None,
    ignore_value: int = 255,
    name: str = "labels",
) -> np.ndarray:
    """Map stored label values to phase indices 0..K-1 (uint8), keeping ``ignore_value`` as 255.

    Examples
    --------
    >>> to_phase_indices(np.array([[0, 85], [170, 255]]), label_values=[0, 85, 170]).tolist()
    [[0, 1], [2, 255]]
    """
    array = _integer_labels(array, name)
    values = list(range(len(phases))) if label_values is None else [int(v) for v in label_values]
    if len(values) != len(phases):
        raise InputError(f"{name}: label_values has {len(values)} entries but phases {list(phases)} has {len(phases)}")
    expected = set(values) | {int(ignore_value)}
    if array.dtype.itemsize <= 2:
        # 8- and 16-bit labels: lookup tables over every storable value (one gather per voxel;
        # np.bincount and np.unique cast or sort the whole volume: 7.6 s for 236 M voxels here)
        size = 1 << (8 * array.dtype.itemsize)
        allowed = np.zeros(size, dtype=bool)
        allowed[[v for v in expected if 0 <= v < size]] = True
        outside = ~allowed
        if array.size and not allowed[:int(array.max()) + 1].all() and outside[array].any():
            _refuse_values(np.unique(array[outside[array]]), phases, values, ignore_value, name)
        if values == list(range(len(phases))) and array.dtype == np.uint8 and int(ignore_value) == 255:
            return array
        lut = np.full(size, 255, dtype=np.uint8)
        for index, value in enumerate(values):  # everything else (the ignore value) maps to 255
            if 0 <= value < size:
                lut[value] = index
        return lut[array]
    present = np.unique(array)
    if set(present.tolist()) - expected:
        _refuse_values(present, phases, values, ignore_value, name)
    lut_keys = np.array(values + [int(ignore_value)])
    lut_vals = np.array(list(range(len(phases))) + [255], dtype=np.uint8)
    order = np.argsort(lut_keys)
    return lut_vals[order][np.searchsorted(lut_keys[order], array)].astype(np.uint8)


def _refuse_values(present: np.ndarray, phases, values, ignore_value, name: str) -> None:
    unexpected = sorted(set(present.tolist()) - set(values) - {int(ignore_value)})
    raise InputError(
        f"{name}: label values {unexpected[:20]} are not among the phases {list(phases)} "
        f"(expected values {values}, ignore {ignore_value}); map them with label_values=[...] "
        "listing the stored value of each phase in order"
    )


def _integer_labels(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype.kind == "b":
        return array.astype(np.uint8)
    if array.dtype.kind == "f":
        if not np.isfinite(array).all() or not np.array_equal(array, np.round(array)):
            raise InputError(f"{name}: expected integer labels, got non-integer {array.dtype} values")
        if array.size and (array.min() < 0 or array.max() > 65535):
            raise InputError(f"{name}: label values must lie in 0..65535, got {array.min()}..{array.max()}")
        return array.astype(np.uint16 if array.max() > 255 else np.uint8)
    if array.dtype.kind not in "iu":
        raise InputError(f"{name}: expected integer labels, got dtype {array.dtype}")
    if array.dtype.kind == "i" and array.size and array.min() < 0:
        raise InputError(f"{name}: label values must be non-negative, got minimum {array.min()}")
    return array

"""Validation helpers shared by the analysis functions.

Every public analysis function checks its inputs once, here, so that the messages are the same
everywhere: they name the argument, what was expected and what arrived.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from electroseg.errors import InputError


def check_phases(phases: Sequence[str], *, ignore_value: int = 255) -> tuple[str, ...]:
    """Return ``phases`` as a tuple after checking names are unique strings and fit in uint8."""
    if isinstance(phases, str) or not isinstance(phases, Sequence):
        raise InputError(f"phases: expected a list of phase names like ['pore', 'cbd', 'am'], "
                         f"got {phases!r}")
    names = tuple(str(p) for p in phases)
    if not names or len(set(names)) != len(names):
        raise InputError(f"phases: expected at least one phase and unique names, got {list(names)}")
    if not 0 <= int(ignore_value) <= 255:
        raise InputError(f"ignore_value: expected a value in 0..255, got {ignore_value}")
    if int(ignore_value) < len(names):
        raise InputError(f"ignore_value: {ignore_value} is the index of phase "
                         f"{names[int(ignore_value)]!r}; expected a value >= {len(names)} "
                         f"(phases are labels 0..{len(names) - 1})")
    return names


def check_labels(labels: np.ndarray, *, phases: Sequence[str], ignore_value: int = 255,
                 name: str = "labels") -> np.ndarray:
    """Return ``labels`` as a uint8 array of phase indices, raising InputError if it is not one.

    Accepts 2-D (Y, X) and 3-D (Z, Y, X) integer arrays whose values are phase indices
    ``0..len(phases)-1`` or ``ignore_value``. A uint8 input is returned as is (never copied).
    """
    if not hasattr(labels, "shape") or not hasattr(labels, "dtype"):
        raise TypeError(f"{name}: expected a numpy array of phase indices, got {type(labels).__name__}")
    labels = np.asarray(labels)
    names = check_phases(phases, ignore_value=ignore_value)
    if labels.ndim not in (2, 3):
        raise InputError(f"{name}: expected a 2-D (Y, X) or 3-D (Z, Y, X) label array, "
                         f"got shape {labels.shape}")
    if labels.size == 0:
        raise InputError(f"{name}: expected a non-empty label array, got shape {labels.shape}")
    if labels.dtype != np.uint8:
        labels = _to_uint8(labels, name=name)
    if int(labels.max()) < len(names):
        return labels
    present = np.flatnonzero(label_histogram(labels))
    unexpected = [int(v) for v in present if v >= len(names) and v != int(ignore_value)]
    if unexpected:
        raise InputError(
            f"{name}: found label values {unexpected} outside the phases {list(names)} "
            f"(expected 0..{len(names) - 1} or ignore_value={ignore_value}); values present: "
            f"{[int(v) for v in present]}. Map stored values onto phases in order with "
            f"label_values=[...], e.g. label_values={[int(v) for v in present[:len(names)]]}")
    return labels


def _to_uint8(labels: np.ndarray, *, name: str) -> np.ndarray:
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise InputError(f"{name}: expected an integer label array (uint8 phase indices), "
                         f"got dtype {labels.dtype}")
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi > 255:
        raise InputError(f"{name}: expected label values in 0..255 (uint8), got range {lo}..{hi}")
    return labels.astype(np.uint8)


def label_histogram(labels: np.ndarray) -> np.ndarray:
    """Voxel count of every uint8 value, shape (256,) int64, without a whole-volume int64 copy."""
    counts = np.zeros(256, dtype=np.int64)
    flat = labels.reshape(labels.shape[0], -1) if labels.ndim > 1 else labels[None]
    step = max(1, (1 << 22) // max(1, flat.shape[1]))
    for start in range(0, flat.shape[0], step):
        counts += np.bincount(flat[start:start + step].ravel(), minlength=256)
    return counts


def check_depth_axis(depth_axis: int, ndim: int) -> int:
    """Return ``depth_axis`` as a non-negative axis index for an array of ``ndim`` dimensions."""
    if isinstance(depth_axis, bool) or not isinstance(depth_axis, (int, np.integer)):
        raise InputError(f"depth_axis: expected an integer axis, got {depth_axis!r}")
    if not -ndim <= depth_axis < ndim:
        raise InputError(f"depth_axis: expected an axis in {-ndim}..{ndim - 1} for a {ndim}-D "
                         f"label array, got {depth_axis}")
    return int(depth_axis) % ndim


def check_voxel_size(voxel_size: Sequence[float] | None, ndim: int, *, what: str,
                     source: str = "labels") -> tuple[float, ...]:
    """Return ``voxel_size`` as a tuple of ``ndim`` positive floats (µm), else raise InputError.

    ``what`` names the metric that needs it; ``source`` names the input it belongs to.
    """
    if voxel_size is None:
        raise InputError(f"{source}: {what} needs a voxel size in µm and none is known; "
                         f"pass voxel_size=[{', '.join(['...'] * ndim)}] (one value per axis)")
    if np.isscalar(voxel_size):
        raise InputError(f"voxel_size: expected {ndim} values in µm (one per axis, array order), "
                         f"got {voxel_size!r}")
    try:
        sizes = tuple(float(v) for v in voxel_size)
    except (TypeError, ValueError):
        raise InputError(f"voxel_size: expected {ndim} numbers in µm, got {voxel_size!r}") from None
    if len(sizes) != ndim:
        raise InputError(f"voxel_size: expected {ndim} values (one per axis of {source}), "
                         f"got {len(sizes)}: {list(sizes)}")
    if not all(np.isfinite(s) and s > 0 for s in sizes):
        raise InputError(f"voxel_size: expected positive finite values in µm, got {list(sizes)}")
    return sizes


def phase_index(phases: Sequence[str], phase: str, *, argument: str = "phase") -> int:
    """Index of ``phase`` in ``phases``, raising InputError naming the argument if absent."""
    if phase not in phases:
        raise InputError(f"{argument}: expected one of the phases {list(phases)}, got {phase!r}")
    return list(phases).index(phase)

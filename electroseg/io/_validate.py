"""Validation helpers shared by the readers and writers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from electroseg.errors import InputError


def default_max_bytes() -> int:
    """Largest array read into memory by default: 80 % of the memory available now."""
    import psutil

    return int(0.8 * psutil.virtual_memory().available)


def check_voxel_size(voxel_size: Any, ndim: int, name: str) -> tuple[float, ...] | None:
    """Return ``voxel_size`` as a tuple of ``ndim`` positive floats (µm), or None.

    A single number means isotropic voxels. A 3-value size given for a 2D image keeps its
    last two values (y, x).
    """
    if voxel_size is None:
        return None
    values = [voxel_size] if np.isscalar(voxel_size) else list(voxel_size)
    try:
        values = [float(v) for v in values]
    except (TypeError, ValueError):
        raise InputError(f"{name}: voxel_size must be numbers in micrometres, got {voxel_size!r}")
    if len(values) == 1:
        values = values * ndim
    if ndim == 2 and len(values) == 3:
        values = values[1:]
    if len(values) != ndim:
        raise InputError(
            f"{name}: voxel_size needs {ndim} values for a {ndim}-D array, got {len(values)} ({voxel_size!r})"
        )
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise InputError(f"{name}: voxel_size must be positive and finite (micrometres), got {voxel_size!r}")
    return tuple(values)


def check_image_array(data: Any, name: str, *, allow_channels: bool = False) -> None:
    """Check dimensionality, emptiness, dtype and (for in-memory arrays) finiteness."""
    shape = tuple(data.shape)
    allowed = (2, 3, 4) if allow_channels else (2, 3)
    if len(shape) not in allowed:
        expected = "a 2-D image (Y, X) or a 3-D volume (Z, Y, X)"
        raise InputError(f"{name}: expected {expected}, got shape {shape}")
    if 0 in shape:
        raise InputError(f"{name}: the image is empty (shape {shape})")
    dtype = np.dtype(data.dtype)
    if dtype.kind not in "uifb":
        raise InputError(f"{name}: expected a numeric image, got dtype {dtype}")
    if dtype.kind == "f" and isinstance(data, np.ndarray) and not np.isfinite(data).all():
        bad = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
        raise InputError(f"{name}: the image has {bad} NaN or infinite values; expected finite intensities")


def check_same_shape(shapes: Sequence[tuple[int, ...]], names: Sequence[str], what: str) -> None:
    """Raise when ``shapes`` differ, naming every input with its shape."""
    if len(set(shapes)) > 1:
        listed = ", ".join(f"{n} {s}" for n, s in zip(names, shapes))
        raise InputError(f"{what} must all have the same shape, got {listed}")

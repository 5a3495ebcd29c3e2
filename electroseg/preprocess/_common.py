"""Shared helpers of the preprocessing steps: validation and slice iteration."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Callable

import numpy as np

from electroseg.errors import InputError

logger = logging.getLogger(__name__)


def roi_slices(shape: Sequence[int], roi: Sequence[Sequence[int | None] | None], *, name: str,
               min_size: int = 1) -> list[slice]:
    """Slices of the last ``len(roi)`` axes of ``shape`` for ``[start, stop]`` pairs (None or a
    None bound = full extent), each keeping at least ``min_size`` pixels; errors name ``name``.

    >>> roi_slices((4, 5), [[1, 3], None], name="roi")
    [slice(1, 3, None), slice(None, None, None)]
    """
    roi = list(roi)
    if len(roi) > len(shape):
        raise InputError(f"{name}: expected at most {len(shape)} [start, stop] pairs, got {len(roi)}")
    slices = []
    for axis, bounds in enumerate(roi, start=len(shape) - len(roi)):
        bounds = [None, None] if bounds is None else list(bounds)
        if len(bounds) != 2:
            raise InputError(f"{name}: expected [start, stop] pairs, got {bounds!r}")
        part = slice(*bounds)
        kept = len(range(*part.indices(shape[axis])))
        if kept < min_size:
            what = "is empty" if kept == 0 else f"keeps fewer than {min_size} pixels"
            raise InputError(f"{name}: {bounds!r} {what} for axis {axis} of length {shape[axis]}")
        slices.append(part)
    return slices


def as_float_image(image: np.ndarray, *, name: str = "image") -> np.ndarray:
    """Return ``image`` as float32 (a copy when the dtype changes), after checking its shape.

    Raises
    ------
    InputError
        If ``image`` is not a 2-D (Y, X) or 3-D (Z, Y, X) numeric array.
    """
    if not isinstance(image, np.ndarray):
        image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise InputError(
            f"{name}: expected a 2-D image (Y, X) or a 3-D volume (Z, Y, X), got shape {image.shape}"
        )
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool):
        raise InputError(f"{name}: expected a numeric array, got dtype {image.dtype}")
    return image.astype(np.float32, copy=False)


def as_stack(image: np.ndarray) -> np.ndarray:
    """View a 2-D image as a one-slice stack; volumes are returned unchanged."""
    return image[np.newaxis] if image.ndim == 2 else image


def map_slices(
    func: Callable[[np.ndarray], np.ndarray], image: np.ndarray, *, out: np.ndarray | None = None
) -> np.ndarray:
    """Apply ``func`` to every (Y, X) slice of a 2-D or 3-D float32 array.

    Slice by slice keeps the working set small (one slice of temporaries at a time), which
    matters for 300 x 768 x 1024 FIB-SEM stacks.
    """
    stack = as_stack(image)
    result = np.empty(stack.shape, np.float32) if out is None else as_stack(out)
    for k in range(stack.shape[0]):
        result[k] = func(stack[k])
    return result[0] if image.ndim == 2 else result


def check_positive(value: float, *, name: str) -> float:
    """Raise `InputError` unless ``value`` is a finite number > 0."""
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"{name}: expected a number > 0, got {value!r}")
    return float(value)

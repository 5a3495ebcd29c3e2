"""Shared helpers of the preprocessing steps: validation and slice iteration."""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np

from electroseg.errors import InputError

logger = logging.getLogger(__name__)


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

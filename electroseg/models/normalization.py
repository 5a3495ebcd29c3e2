"""Intensity normalisation and 2.5D slice stacking shared by training and inference."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from electroseg.errors import InputError

__all__ = ["normalize_intensity", "stack_context", "NORMALIZATION_METHODS"]

NORMALIZATION_METHODS = ("percentile", "minmax", "none")
_MAX_SAMPLES = 4_000_000


def _sample(array: np.ndarray) -> np.ndarray:
    flat = np.asarray(array).reshape(-1)
    step = max(1, flat.size // _MAX_SAMPLES)
    sample = flat[::step].astype(np.float64)
    return sample[np.isfinite(sample)]


def normalize_intensity(array: np.ndarray, normalization: Mapping[str, Any]) -> np.ndarray:
    """Map one channel of an image or volume to [0, 1] as float32.

    Parameters
    ----------
    array : ndarray, any shape
        One detector channel (apply per channel for multi-channel data).
    normalization : mapping
        ``{"method": "percentile", "lower": 0.5, "upper": 99.5}`` (percentiles of the whole
        array, values outside clipped), ``{"method": "minmax"}`` or ``{"method": "none"}``
        (cast only).

    Returns
    -------
    ndarray, float32, same shape

    Notes
    -----
    ``(x - lo) / (hi - lo)`` clipped to [0, 1]; lo, hi are the percentiles (or min, max).
    Percentiles are taken on at most 4 M evenly strided samples. A constant array maps to 0.

    Examples
    --------
    >>> normalize_intensity(np.array([0, 5, 10]), {"method": "minmax"}).tolist()
    [0.0, 0.5, 1.0]
    """
    method = normalization.get("method", "percentile")
    unknown = set(normalization) - {"method", "lower", "upper"}
    if method not in NORMALIZATION_METHODS or unknown:
        raise InputError(
            f"normalization: expected method in {NORMALIZATION_METHODS} with optional lower/upper, "
            f"got {dict(normalization)}"
        )
    data = np.asarray(array, dtype=np.float32)
    if method == "none":
        return data.copy()
    sample = _sample(data)
    if sample.size == 0:
        return np.zeros_like(data)
    if method == "percentile":
        lower, upper = float(normalization.get("lower", 0.5)), float(normalization.get("upper", 99.5))
        if not 0 <= lower < upper <= 100:
            raise InputError(f"normalization: expected 0 <= lower < upper <= 100, got {lower}, {upper}")
        lo, hi = np.percentile(sample, [lower, upper])
    else:
        lo, hi = sample.min(), sample.max()
    if hi <= lo:
        return np.zeros_like(data)
    out = (data - np.float32(lo)) / np.float32(hi - lo)
    return np.clip(out, 0.0, 1.0, out=out)


def stack_context(volume: np.ndarray, *, context_slices: int) -> np.ndarray:
    """Per-slice 2.5D input: each Z slice with its ±k neighbours as extra channels.

    Parameters
    ----------
    volume : ndarray, shape (C, Z, Y, X)
        Normalised detector channels.
    context_slices : int
        k >= 0.

    Returns
    -------
    ndarray, shape (Z, C * (2k + 1), Y, X)
        Channel ``c * (2k + 1) + (j + k)`` of output slice z is detector c at slice
        ``clip(z + j, 0, Z - 1)`` for j in -k..k (ends repeat the edge slice).

    Examples
    --------
    >>> v = np.arange(3, dtype=np.float32).reshape(1, 3, 1, 1)
    >>> stack_context(v, context_slices=1)[:, :, 0, 0].tolist()
    [[0.0, 0.0, 1.0], [0.0, 1.0, 2.0], [1.0, 2.0, 2.0]]
    """
    if volume.ndim != 4:
        raise InputError(f"stack_context: expected a (C, Z, Y, X) array, got shape {volume.shape}")
    if context_slices < 0:
        raise InputError(f"stack_context: context_slices must be >= 0, got {context_slices}")
    n_z = volume.shape[1]
    offsets = np.arange(-context_slices, context_slices + 1)
    index = np.clip(np.arange(n_z)[:, None] + offsets[None, :], 0, n_z - 1)  # (Z, 2k+1)
    stacked = volume[:, index]  # (C, Z, 2k+1, Y, X)
    stacked = np.moveaxis(stacked, 1, 0)  # (Z, C, 2k+1, Y, X)
    return np.ascontiguousarray(stacked.reshape(n_z, -1, *volume.shape[2:]))

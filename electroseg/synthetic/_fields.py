"""Small shared helpers of the synthetic generators: random fields, streams, validation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from electroseg.errors import InputError


def child_rngs(seed: int | Sequence[int], count: int) -> list[np.random.Generator]:
    """Independent generators derived from one seed, one per named step.

    Using spawned streams (instead of one shared generator) keeps e.g. the particles identical
    when a later step (CBD detachment, imaging) changes its parameters.
    """
    children = np.random.SeedSequence(seed).spawn(count)
    return [np.random.default_rng(child) for child in children]


def smooth_field(
    shape: Sequence[int],
    *,
    sigma_px: Sequence[float],
    rng: np.random.Generator,
) -> np.ndarray:
    """Gaussian random field with zero mean and unit standard deviation (float32).

    White noise filtered with a Gaussian of ``sigma_px`` (one value per axis, in voxels).
    Large ``sigma`` values are computed on a coarser grid and upsampled (linear) for speed.
    """
    sigma = np.asarray(sigma_px, dtype=float)
    factor = np.maximum(1, np.floor(sigma / 2.0)).astype(int)
    coarse_shape = [int(np.ceil(n / f)) + 1 for n, f in zip(shape, factor)]
    noise = rng.standard_normal(coarse_shape, dtype=np.float32)
    field = ndimage.gaussian_filter(noise, sigma / factor, mode="wrap")
    if np.any(factor > 1):
        field = ndimage.zoom(field, factor, order=1)
    field = field[tuple(slice(0, n) for n in shape)]
    field = field - field.mean()
    std = float(field.std())
    return (field / std if std > 0 else field).astype(np.float32)


def check_voxel_size(voxel_size: Sequence[float], ndim: int, *, name: str = "voxel_size") -> tuple:
    """Validate a voxel size (µm, one positive value per spatial axis) and return it as floats."""
    try:
        values = tuple(float(v) for v in voxel_size)
    except (TypeError, ValueError):
        message = f"{name}: expected {ndim} positive numbers in µm, got {voxel_size!r}"
        raise InputError(message) from None
    if len(values) != ndim or not all(v > 0 and np.isfinite(v) for v in values):
        raise InputError(f"{name}: expected {ndim} positive numbers in µm, got {voxel_size!r}")
    return values


def check_fraction(value: float, name: str, *, low: float = 0.0, high: float = 1.0) -> float:
    """Validate a number in [low, high] and return it as float."""
    if not isinstance(value, (int, float, np.floating, np.integer)) or not low <= value <= high:
        raise InputError(f"{name}: expected a number in [{low}, {high}], got {value!r}")
    return float(value)


def check_shape(shape: Sequence[int], *, ndim: int = 3) -> tuple[int, ...]:
    """Validate a volume shape (Z, Y, X) of positive integers."""
    try:
        values = tuple(int(n) for n in shape)
    except (TypeError, ValueError):
        message = f"shape: expected {ndim} positive integers (Z, Y, X), got {shape!r}"
        raise InputError(message) from None
    if len(values) != ndim or min(values) < 1 or any(int(n) != n for n in shape):
        raise InputError(f"shape: expected {ndim} positive integers (Z, Y, X), got {shape!r}")
    return values


def check_labels_levels(labels, voxel_size, levels) -> tuple[np.ndarray, tuple, np.ndarray]:
    """Validate a label volume (Z, Y, X), its voxel size and one grey level per label."""
    labels = np.asarray(labels)
    if labels.ndim != 3 or labels.dtype.kind not in "ui":
        raise InputError(f"labels: expected an integer volume (Z, Y, X), got shape {labels.shape} "
                         f"dtype {labels.dtype}")
    levels_arr = np.asarray(levels, dtype=np.float32)
    if labels.size and int(labels.max()) >= levels_arr.size:
        raise InputError(f"levels: expected one grey level per label 0..{int(labels.max())}, "
                         f"got {list(levels)}")
    return labels, check_voxel_size(voxel_size, 3), levels_arr

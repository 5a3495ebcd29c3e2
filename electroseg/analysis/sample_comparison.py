"""Two-sample comparison of sub-block metrics (e.g. pristine versus cycled electrode).

Seed paper 000 reports PBA falling from about 0.54 to 0.43 after 50 cycles. Whether such a
difference exceeds the variation within one volume is judged here: the sub-blocks of each sample
are resampled independently and the difference of the means (b − a) gets a bootstrap interval.
Where both samples' segmentation error was measured (``uncertainty.total``), the difference of the
corrected estimates gets an interval holding both samples' sampling and segmentation errors
(`difference_interval`, `total_differences`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from electroseg.analysis._bootstrap import (
    bootstrap_means,
    check_bootstrap,
    nan_to_none,
    nanmean,
    none_if_nan,
    percentile_interval,
    pooled_ratio,
    resample_index,
)
from electroseg.analysis.uncertainty import BlockMetrics, block_values
from electroseg.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["SampleComparison", "compare_samples", "difference_interval", "total_differences"]


@dataclass(frozen=True, eq=False)
class SampleComparison:
    """Difference of each metric between two samples, with a bootstrap interval.

    Attributes
    ----------
    names : tuple of (str, str)
        Sample names (a, b), e.g. ``("pristine", "cycled")``.
    metrics : tuple of str
        Metrics present in both samples.
    n_blocks : tuple of (int, int)
        Sub-blocks in a and in b.
    mean_a, mean_b : ndarray (n_metrics,), float64
        Mean over the blocks of each sample (NaN blocks left out).
    difference : ndarray (n_metrics,), float64
        ``mean_b - mean_a``.
    ci_low, ci_high : ndarray (n_metrics,), float64
        Percentile bootstrap interval of the difference at level ``confidence``.
    pba_pooled : ndarray (5,), float64 or None
        ``(pooled_a, pooled_b, difference, ci_low, ci_high)`` with ``pooled = ΣC / ΣS`` over the
        blocks' PBA counts; None unless both samples carry ``pba_contacts`` and ``pba_surface``.
    confidence : float
    n_boot : int
    seed : int
    """

    names: tuple[str, str]
    metrics: tuple[str, ...]
    n_blocks: tuple[int, int]
    mean_a: np.ndarray
    mean_b: np.ndarray
    difference: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    pba_pooled: np.ndarray | None
    confidence: float
    n_boot: int
    seed: int

    @property
    def excludes_zero(self) -> np.ndarray:
        """True where the interval lies entirely above or below 0, shape (n_metrics,)."""
        return (self.ci_low > 0) | (self.ci_high < 0)

    def as_table(self):
        """pandas DataFrame, one row per metric: metric, <name a>, <name b>, difference,
        ci_low, ci_high, excludes_zero."""
        import pandas as pd

        a, b = self.names
        return pd.DataFrame({"metric": list(self.metrics), a: self.mean_a, b: self.mean_b,
                             "difference": self.difference, "ci_low": self.ci_low,
                             "ci_high": self.ci_high, "excludes_zero": self.excludes_zero})

    def to_dict(self) -> dict:
        """JSON-ready dict (written as comparison.json); NaN → None."""
        a, b = self.names
        metrics = {m: {a: none_if_nan(self.mean_a[j]), b: none_if_nan(self.mean_b[j]),
                       "difference": none_if_nan(self.difference[j]),
                       "ci_low": none_if_nan(self.ci_low[j]),
                       "ci_high": none_if_nan(self.ci_high[j]),
                       "excludes_zero": bool(self.excludes_zero[j])}
                   for j, m in enumerate(self.metrics)}
        pooled = None
        if self.pba_pooled is not None:
            pooled = dict(zip((a, b, "difference", "ci_low", "ci_high"),
                              nan_to_none(self.pba_pooled)))
        return {"samples": [a, b], "difference": f"{b} - {a}",
                "method": "percentile bootstrap, blocks of each sample resampled independently",
                "n_blocks": {a: self.n_blocks[0], b: self.n_blocks[1]},
                "confidence": self.confidence, "n_boot": self.n_boot, "seed": self.seed,
                "metrics": metrics, "pba_pooled_from_counts": pooled}


def compare_samples(a, b, *, names: Sequence[str] = ("pristine", "cycled"), n_boot: int = 2000,
                    seed: int = 0, confidence: float = 0.95) -> SampleComparison:
    """Difference ``b − a`` of every metric with a bootstrap interval from the sub-blocks.

    Parameters
    ----------
    a, b : Uncertainty, BlockMetrics, pandas DataFrame or dict
        Per-block metric values of each sample (`subblock_metrics`, `summarize_uncertainty`,
        their tables, their ``to_dict()`` or the ``uncertainty`` entry of a metrics.json).
    names : (str, str)
        Names of a and b.
    n_boot : int
        Bootstrap resamples.
    seed : int
        Seed of ``numpy.random.default_rng``.
    confidence : float
        Interval level in (0, 1).

    Returns
    -------
    SampleComparison

    Notes
    -----
    For each resample, ``n_a`` blocks of a and ``n_b`` blocks of b are drawn with replacement,
    independently; the interval is the percentile interval of ``mean(b*) − mean(a*)``. The
    pooled-PBA difference uses ``ΣC*/ΣS*`` of each resample (ratio of sums), so it weighs blocks
    by their AM surface exactly as the whole-volume pooled PBA does. Metrics found in only one
    sample are left out (logged).

    Examples
    --------
    >>> import pandas as pd
    >>> a = pd.DataFrame({"pba_pooled": [0.55, 0.57, 0.56]})
    >>> b = pd.DataFrame({"pba_pooled": [0.45, 0.47, 0.46]})
    >>> round(float(compare_samples(a, b).difference[0]), 6)
    -0.1
    """
    names = _check_names(names)
    check_bootstrap(n_boot, seed, confidence)
    blocks_a, blocks_b = block_values(a, name="a"), block_values(b, name="b")
    metrics = tuple(m for m in blocks_a.names if m in blocks_b.names)
    only = sorted(set(blocks_a.names) ^ set(blocks_b.names))
    if only:
        logger.info("compare_samples: metrics in only one sample are left out: %s", only)
    if not metrics:
        raise InputError(f"a, b: expected metrics in common, got {list(blocks_a.names)} and "
                         f"{list(blocks_b.names)}")
    values_a, values_b = _columns(blocks_a, metrics), _columns(blocks_b, metrics)
    rng = np.random.default_rng(seed)
    index_a = resample_index(rng, blocks_a.n_blocks, n_boot)
    index_b = resample_index(rng, blocks_b.n_blocks, n_boot)
    mean_a, mean_b = nanmean(values_a, axis=0), nanmean(values_b, axis=0)
    boot = bootstrap_means(values_b, index_b) - bootstrap_means(values_a, index_a)
    low, high = percentile_interval(boot, confidence)
    pooled = _pooled_difference(blocks_a, blocks_b, index_a, index_b, confidence)
    return SampleComparison(names, metrics, (blocks_a.n_blocks, blocks_b.n_blocks), mean_a,
                            mean_b, mean_b - mean_a, low, high, pooled, float(confidence),
                            int(n_boot), int(seed))


def _check_names(names: Sequence[str]) -> tuple[str, str]:
    if isinstance(names, str) or len(names) != 2 or len(set(map(str, names))) != 2:
        raise InputError(f"names: expected two different sample names such as "
                         f"('pristine', 'cycled'), got {names!r}")
    return str(names[0]), str(names[1])


def _columns(blocks: BlockMetrics, metrics: tuple[str, ...]) -> np.ndarray:
    return np.stack([blocks.column(m) for m in metrics], axis=1)


def _pooled_difference(blocks_a: BlockMetrics, blocks_b: BlockMetrics, index_a: np.ndarray,
                       index_b: np.ndarray, confidence: float) -> np.ndarray | None:
    """(pooled_a, pooled_b, difference, ci_low, ci_high) from the PBA counts, or None."""
    needed = {"pba_contacts", "pba_surface"}
    if not (needed <= set(blocks_a.names) and needed <= set(blocks_b.names)):
        return None
    (pooled_a, boot_a), (pooled_b, boot_b) = (
        pooled_ratio(blocks.column("pba_contacts"), blocks.column("pba_surface"), index)
        for blocks, index in ((blocks_a, index_a), (blocks_b, index_b)))
    low, high = percentile_interval(boot_b - boot_a, confidence)
    return np.array([pooled_a, pooled_b, pooled_b - pooled_a, low, high], dtype=np.float64)


def difference_interval(a: Mapping | None, b: Mapping | None) -> tuple[float, float, float] | None:
    """``(difference, low, high)`` of ``b − a`` from two ``{estimate, ci_low, ci_high}`` entries
    (e.g. ``uncertainty.total.pba_pooled`` of two samples): the two samples' half widths added
    in quadrature on each side (independent errors). None when either is incomplete.

    Examples
    --------
    >>> difference_interval({"estimate": 0.5, "ci_low": 0.47, "ci_high": 0.54},
    ...                     {"estimate": 0.4, "ci_low": 0.37, "ci_high": 0.44})
    (-0.1, -0.15, -0.05)
    """
    values = [None if e is None else (e.get("estimate"), e.get("ci_low"), e.get("ci_high")) for e in (a, b)]
    if any(v is None or None in v for v in values):
        return None
    (p, p_low, p_high), (c, c_low, c_high) = values
    difference = c - p
    low = difference - math.hypot(c - c_low, p_high - p)
    high = difference + math.hypot(c_high - c, p - p_low)
    return round(difference, 12), round(low, 12), round(high, 12)


def total_differences(a: Mapping | None, b: Mapping | None) -> dict | None:
    """``{metric: {difference, ci_low, ci_high, excludes_zero}}`` of ``b − a`` for every metric
    with a complete total interval in both ``uncertainty.total`` dicts (`difference_interval`);
    None when either sample has none (its segmentation error was not measured).

    Examples
    --------
    >>> a = {"pba_pooled": {"estimate": 0.5, "ci_low": 0.47, "ci_high": 0.54}}
    >>> b = {"pba_pooled": {"estimate": 0.4, "ci_low": 0.37, "ci_high": 0.44},
    ...      "particle_median_diameter_um": {"estimate": None, "ci_low": None, "ci_high": None}}
    >>> total_differences(a, b)
    {'pba_pooled': {'difference': -0.1, 'ci_low': -0.15, 'ci_high': -0.05, 'excludes_zero': True}}
    """
    if not a or not b:
        return None
    out = {}
    for metric in a:
        found = difference_interval(a[metric], b.get(metric))
        if found is not None:
            difference, low, high = found
            out[metric] = {"difference": difference, "ci_low": low, "ci_high": high,
                           "excludes_zero": bool(low > 0 or high < 0)}
    return out

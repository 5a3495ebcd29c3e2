"""How volume fractions and PBA move when each threshold moves by ±delta."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from electroseg import DEFAULT_PHASES
from electroseg.classical.cleanup import CleanupOptions
from electroseg.classical.gradient import GradientOptions
from electroseg.classical.segment import segment_volume
from electroseg.errors import InputError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThresholdSensitivity:
    """Metrics of the segmentation for the baseline thresholds and each ±delta variation.

    Attributes
    ----------
    phases : tuple of str
    delta : float
        Grey-value shift applied to one threshold at a time.
    rows : tuple of dict
        One per variant: ``threshold_index`` (-1 for the baseline), ``shift`` (grey values),
        ``thresholds``, ``fraction_<phase>`` and ``pba_pooled`` / ``pba_depth_mean``.
    """

    phases: tuple[str, ...]
    delta: float
    rows: tuple[dict[str, Any], ...]

    def as_table(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.rows))

    def max_change(self) -> dict[str, float]:
        """Largest absolute change from the baseline of every metric column."""
        table = self.as_table()
        metrics = [c for c in table.columns if c.startswith(("fraction_", "pba_"))]
        base = table.iloc[0]
        return {c: float(np.nanmax(np.abs(table[c].astype(float) - float(base[c])))) for c in metrics}

    def to_dict(self) -> dict[str, Any]:
        return {"phases": list(self.phases), "delta": self.delta, "rows": list(self.rows),
                "max_change": self.max_change()}


def _metrics(labels: np.ndarray, phases: Sequence[str], depth_axis: int) -> dict[str, Any]:
    from electroseg.analysis import pba_profile, volume_fractions

    fractions = volume_fractions(labels, phases=phases).fractions
    row: dict[str, Any] = {f"fraction_{p}": fractions[p] for p in phases}
    if "am" in phases and "cbd" in phases:
        pba = pba_profile(labels, depth_axis=depth_axis, phases=phases)
        row["pba_pooled"] = pba.pooled
        row["pba_depth_mean"] = pba.depth_mean
    return row


def threshold_sensitivity(
    image: np.ndarray,
    *,
    thresholds: Sequence[float],
    delta: float,
    phases: Sequence[str] = DEFAULT_PHASES,
    phase_order: Sequence[str] | None = None,
    depth_axis: int = 1,
    gradient: GradientOptions | Mapping[str, Any] | None = GradientOptions(),
    cleanup: CleanupOptions | Mapping[str, Any] | None = CleanupOptions(),
    smooth: float | str | None = "auto",
) -> ThresholdSensitivity:
    """Re-segment with each threshold moved by ``-delta`` and ``+delta`` (one at a time).

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X)
    thresholds : sequence of float
        Baseline global thresholds (e.g. ``Segmentation.thresholds``; per-slice thresholds are
        not supported here).
    delta : float
        Grey-value shift, > 0.
    phases, phase_order, gradient, cleanup, smooth
        As in `segment_volume`; the whole pipeline is re-run with ``method="manual"``. Pass the
        baseline's ``Segmentation.smoothing_sigma`` as ``smooth`` so that every variant
        thresholds the same smoothed image.
    depth_axis : int
        Depth axis of the PBA profile.

    Returns
    -------
    ThresholdSensitivity
        Baseline first, then (threshold 0, -delta), (threshold 0, +delta), (threshold 1, ...).
    """
    base = np.asarray(thresholds, dtype=float)
    if base.ndim != 1:
        raise InputError(f"thresholds: expected one global threshold per class boundary, got shape {base.shape}")
    if not np.isfinite(delta) or delta <= 0:
        raise InputError(f"delta: expected a grey-value shift > 0, got {delta!r}")
    variants = [(-1, 0.0, base)]
    for index in range(base.size):
        for shift in (-delta, delta):
            moved = base.copy()
            moved[index] += shift
            if np.all(np.diff(moved) > 0):
                variants.append((index, shift, moved))
    rows = []
    for index, shift, cuts in variants:
        seg = segment_volume(image, phases=phases, phase_order=phase_order, method="manual",
                             thresholds=cuts, smooth=smooth, gradient=gradient, cleanup=cleanup)
        rows.append({"threshold_index": index, "shift": float(shift), "thresholds": cuts.tolist(),
                     **_metrics(seg.labels, tuple(phases), depth_axis)})
    logger.info("threshold sensitivity: %d variants, delta %.3g", len(rows), delta)
    return ThresholdSensitivity(phases=tuple(phases), delta=float(delta), rows=tuple(rows))

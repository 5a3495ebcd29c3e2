"""Compare two segmentations (and each with a reference): voxel agreement and metric differences."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.stats import wasserstein_distance

from electroseg import DEFAULT_PHASES
from electroseg.errors import InputError
from electroseg.evaluation.agreement import Agreement, agreement
from electroseg.evaluation.downstream import (DownstreamValues, block_spread, downstream_values,
                                              within_sample_wasserstein)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricDifference:
    """One downstream metric of two segmentations, their difference and the within-sample spread.

    ``difference`` is ``b - a`` (for the Wasserstein distance: the distance, ``a``/``b`` None);
    ``exceeds_variability`` is ``|difference| > variability``, None when either is undefined.
    """

    pair: str
    metric: str
    a: float | None
    b: float | None
    difference: float | None
    variability: float | None
    exceeds_variability: bool | None
    note: str = ""

    def to_dict(self) -> dict:
        return {"pair": self.pair, "metric": self.metric, "a": self.a, "b": self.b,
                "difference": self.difference, "variability": self.variability,
                "exceeds_variability": self.exceeds_variability, "note": self.note}


@dataclass(frozen=True, eq=False)
class Comparison:
    """Result of `compare_segmentations`.

    Attributes
    ----------
    names : tuple of str
        Names of the compared segmentations (a, b), plus "reference" when one was given.
    phases : tuple of str
    agreement : dict of str to Agreement
        ``"<b> vs <a>"`` (a taken as reference) and, with a reference, ``"<x> vs <reference_name>"``.
    differences : tuple of MetricDifference
        Downstream differences b − a, and x − reference when the reference is dense.
    pba_per_depth : dict of str to list
        PBA profile of each segmentation (for the depth figure).
    particle_log10_volume : dict of str to ndarray
        log10 particle volumes (µm³) of each segmentation (for the size figure).
    corrected : dict
        With sparse hand labels as the reference: each segmentation's headline metrics corrected
        by its error on the labelled slices, with 95 % intervals
        (`electroseg.analysis.segmentation_error.segmentation_intervals`), and ``overlap``: per
        metric, whether the two intervals overlap (if not, the routes disagree beyond what the
        labelled slices can explain). Empty otherwise.
    """

    names: tuple[str, ...]
    phases: tuple[str, ...]
    agreement: dict[str, Agreement]
    differences: tuple[MetricDifference, ...]
    pba_per_depth: dict[str, list] = field(default_factory=dict)
    particle_log10_volume: dict[str, np.ndarray] = field(default_factory=dict)
    corrected: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The content of comparison.json."""
        return {"names": list(self.names), "phases": list(self.phases),
                "agreement": {k: v.to_dict() for k, v in self.agreement.items()},
                "differences": [d.to_dict() for d in self.differences],
                "pba_per_depth": {k: list(v) for k, v in self.pba_per_depth.items()},
                "particle_count": {k: int(len(v)) for k, v in self.particle_log10_volume.items()},
                "corrected_by_hand_labels": self.corrected or None}

    def as_table(self):
        """pandas DataFrame of the downstream differences, one row per metric and pair."""
        import pandas as pd

        return pd.DataFrame([d.to_dict() for d in self.differences])


def _difference(pair: str, metric: str, a, b, variability: float, note: str = "") -> MetricDifference:
    diff = None if a is None or b is None or math.isnan(a) or math.isnan(b) else float(b - a)
    var = None if not np.isfinite(variability) else float(variability)
    exceeds = None if diff is None or var is None else bool(abs(diff) > var)
    return MetricDifference(pair, metric, a, b, diff, var, exceeds, note)


def _largest_depth_difference(pair: str, va: DownstreamValues, vb: DownstreamValues) -> MetricDifference:
    pa = np.array([np.nan if v is None else v for v in va.pba_per_depth], float)
    pb = np.array([np.nan if v is None else v for v in vb.pba_per_depth], float)
    gap = np.abs(pb - pa)
    if not np.isfinite(gap).any():
        return _difference(pair, "pba.largest_depth_difference", None, None, np.nan)
    k = int(np.nanargmax(gap))
    spread = block_spread(va.block_pba_per_depth[:, k], vb.block_pba_per_depth[:, k])
    return _difference(pair, "pba.largest_depth_difference", float(pa[k]), float(pb[k]), spread,
                       note=f"depth index {k}")


def metric_differences(va: DownstreamValues, vb: DownstreamValues, *, pair: str,
                       phases: Sequence[str]) -> list[MetricDifference]:
    """Volume fractions, pooled PBA, largest per-depth PBA gap and size-distribution distance.

    Notes
    -----
    Variability of a scalar metric is the sub-block spread ``sqrt((s_a² + s_b²) / 2)``; for the
    size distributions, the Wasserstein distance on log10 volume is set against the mean distance
    between sub-blocks of the same segmentation (averaged over a and b).
    """
    out = [_difference(pair, f"volume_fraction.{p}", va.fractions[p], vb.fractions[p],
                       block_spread(va.block_fractions[p], vb.block_fractions[p])) for p in phases]
    out.append(_difference(pair, "pba.pooled", va.pba_pooled, vb.pba_pooled,
                           block_spread(va.block_pba_pooled, vb.block_pba_pooled)))
    out.append(_largest_depth_difference(pair, va, vb))
    la, lb = va.particle_log10_volume, vb.particle_log10_volume
    distance = float(wasserstein_distance(la, lb)) if len(la) and len(lb) else None
    within = [within_sample_wasserstein(v.block_particle_log10_volume) for v in (va, vb)]
    within = [w for w in within if np.isfinite(w)]
    var = float(np.mean(within)) if within and distance is not None else None
    out.append(MetricDifference(pair, "particles.wasserstein_log10_volume", None, None, distance,
                                var, None if distance is None or var is None else distance > var,
                                note=f"particles {len(la)} vs {len(lb)}"))
    return out


def _check_inputs(arrays: dict[str, np.ndarray], depth_axis: int) -> None:
    shapes = {k: np.shape(v) for k, v in arrays.items() if v is not None}
    if len(set(shapes.values())) != 1:
        raise InputError(f"compare: expected segmentations of the same shape, got {shapes}")
    ndim = len(next(iter(shapes.values())))
    if not -ndim <= depth_axis < ndim:
        raise InputError(f"depth_axis: expected an axis of a {ndim}-D array, got {depth_axis}")


def compare_segmentations(a: np.ndarray, b: np.ndarray, *, reference: np.ndarray | None = None,
                          voxel_size: Sequence[float], depth_axis: int = 1,
                          phases: Sequence[str] = DEFAULT_PHASES, ignore_value: int = 255,
                          names: Sequence[str] = ("a", "b"),
                          blocks_per_axis: int = 3, reference_name: str = "reference") -> Comparison:
    """Agreement of two segmentations and of the metrics computed from them.

    Parameters
    ----------
    a, b : ndarray of uint8, shape (Z, Y, X) or (Y, X)
        Phase indices of the two segmentations (e.g. classical and learned).
    reference : ndarray of uint8, same shape, optional
        Dense ground truth or sparse hand labels (``ignore_value`` = unlabelled). Metric
        differences against it are computed only when it is dense.
    voxel_size : sequence of float
        µm per voxel in array order (particle volumes).
    depth_axis, phases, ignore_value
        As in `electroseg.analysis`.
    names : pair of str
    blocks_per_axis : int
        In-plane sub-blocks per axis for the within-sample variability.
    reference_name : str
        What the reference is, as the tables and figures name it: ``"truth"`` (a generator's
        ground truth), ``"hand labels"`` (sparse labels made by a person), ``"reference"``.

    Returns
    -------
    Comparison
    """
    _check_inputs({"a": a, "b": b, "reference": reference}, depth_axis)
    na, nb = (str(n) for n in names)
    opts = dict(voxel_size=voxel_size, depth_axis=depth_axis, phases=phases,
                ignore_value=ignore_value, blocks_per_axis=blocks_per_axis)
    values = {na: downstream_values(a, **opts), nb: downstream_values(b, **opts)}
    found = {f"{nb} vs {na}": agreement(b, a, phases=phases, ignore_value=ignore_value)}
    differences = metric_differences(values[na], values[nb], pair=f"{nb} − {na}", phases=phases)
    ref = str(reference_name)
    if reference is not None:
        for name, arr in ((na, a), (nb, b)):
            found[f"{name} vs {ref}"] = agreement(arr, reference, phases=phases, ignore_value=ignore_value)
        if not np.any(reference == ignore_value):
            values[ref] = downstream_values(reference, **opts)
            for name in (na, nb):
                differences += metric_differences(values[ref], values[name], pair=f"{name} − {ref}",
                                                  phases=phases)
    corrected = (_corrected_by_hand_labels({na: a, nb: b}, reference, voxel_size=voxel_size, depth_axis=depth_axis,
                                           phases=phases, ignore_value=ignore_value, source=ref)
                 if reference is not None and np.any(reference == ignore_value) else {})
    return Comparison(
        names=(na, nb) + ((ref,) if reference is not None else ()), phases=tuple(phases),
        agreement=found, differences=tuple(differences),
        pba_per_depth={k: v.pba_per_depth for k, v in values.items()},
        particle_log10_volume={k: v.particle_log10_volume for k, v in values.items()},
        corrected=corrected,
    )


def _corrected_by_hand_labels(segmentations: dict, hand: np.ndarray, *, voxel_size, depth_axis: int, phases,
                              ignore_value: int, source: str) -> dict:
    """Each segmentation's headline metrics corrected on the hand-labelled slices, and whether
    the two intervals overlap; empty when no slice is labelled densely enough (or the depth
    axis is the slicing axis)."""
    from electroseg.analysis.segmentation_error import dense_slices, measure_slice_errors, segmentation_intervals

    if hand.ndim == 3 and depth_axis % 3 == 0:
        return {}
    dense, _ = dense_slices(hand, ignore_value=ignore_value)
    out: dict = {}
    for name, labels in segmentations.items():
        errors = measure_slice_errors(labels, dense, depth_axis=depth_axis, phases=phases,
                                      ignore_value=ignore_value, source=source)
        if errors is None:
            return {}
        found = segmentation_intervals(labels, errors, voxel_size=voxel_size, ignore_value=ignore_value, source=source)
        out[name] = found["segmentation"]
        out["check"] = {k: found[k] for k in ("source", "labelled", "through_slice", "confidence")}
    a, b = (out[n] for n in segmentations)
    out["overlap"] = {m: not (a[m]["ci_high"] < b[m]["ci_low"] or b[m]["ci_high"] < a[m]["ci_low"])
                      for m in a if m in b and None not in (a[m]["ci_low"], a[m]["ci_high"], b[m]["ci_low"], b[m]["ci_high"])}
    return out

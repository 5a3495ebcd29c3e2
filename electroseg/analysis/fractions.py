"""Volume fractions of each phase, overall and as a profile along the depth axis."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from electroseg import DEFAULT_PHASES
from electroseg.analysis._validate import check_depth_axis, check_labels, label_histogram

logger = logging.getLogger(__name__)

__all__ = ["VolumeFractions", "VolumeFractionProfile", "volume_fractions",
           "volume_fraction_profile"]


@dataclass(frozen=True, eq=False)
class VolumeFractions:
    """Voxel counts and volume fractions of each phase.

    Attributes
    ----------
    phases : tuple of str
        Phase names; phase i is label value i.
    counts : dict of str to int
        Voxels of each phase.
    total : int
        Voxels counted (all voxels except those equal to ``ignore_value``).
    ignored : int
        Voxels equal to ``ignore_value`` (excluded).
    fractions : dict of str to float or None
        ``counts[p] / total``; None for every phase when no voxel is counted.
    """

    phases: tuple[str, ...]
    counts: dict[str, int]
    total: int
    ignored: int
    fractions: dict[str, float | None]

    @classmethod
    def from_counts(cls, counts: Sequence[int], *, phases: Sequence[str],
                    ignored: int = 0) -> VolumeFractions:
        """Build from per-phase voxel counts (length ``len(phases)``)."""
        counts = [int(c) for c in counts]
        total = sum(counts)
        fractions = {p: (c / total if total else None) for p, c in zip(phases, counts)}
        return cls(tuple(phases), dict(zip(phases, counts)), total, int(ignored), fractions)

    def to_dict(self) -> dict:
        """JSON-ready dict: phases, counts, total, ignored and fractions."""
        return {"phases": list(self.phases), "counts": dict(self.counts), "total": self.total,
                "ignored": self.ignored, "fractions": dict(self.fractions)}

    def as_table(self):
        """pandas DataFrame with one row per phase: phase, voxels, fraction."""
        import pandas as pd

        return pd.DataFrame({"phase": list(self.phases),
                             "voxels": [self.counts[p] for p in self.phases],
                             "fraction": [self.fractions[p] for p in self.phases]})


@dataclass(frozen=True, eq=False)
class VolumeFractionProfile:
    """Volume fractions per depth plane.

    Attributes
    ----------
    phases : tuple of str
    depth_axis : int
    counts : ndarray, shape (n_depth, n_phases), int64
        Voxels of each phase in each plane ``k`` normal to the depth axis.
    ignored : ndarray, shape (n_depth,), int64
        Ignored voxels per plane.
    fractions : ndarray, shape (n_depth, n_phases), float64
        ``counts[k, p] / counts[k].sum()``; NaN in planes where nothing is counted.
    """

    phases: tuple[str, ...]
    depth_axis: int
    counts: np.ndarray
    ignored: np.ndarray
    fractions: np.ndarray

    @classmethod
    def from_counts(cls, counts: np.ndarray, *, phases: Sequence[str], depth_axis: int,
                    ignored: np.ndarray | None = None) -> VolumeFractionProfile:
        """Build from a (n_depth, n_phases) count array."""
        counts = np.asarray(counts, dtype=np.int64)
        total = counts.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            fractions = np.where(total > 0, counts / np.maximum(total, 1), np.nan)
        if ignored is None:
            ignored = np.zeros(counts.shape[0], dtype=np.int64)
        return cls(tuple(phases), int(depth_axis), counts, np.asarray(ignored, np.int64), fractions)

    def overall(self) -> VolumeFractions:
        """Whole-volume fractions (the profile summed over depth)."""
        return VolumeFractions.from_counts(self.counts.sum(axis=0), phases=self.phases,
                                           ignored=int(self.ignored.sum()))

    def to_dict(self) -> dict:
        """JSON-ready dict: per phase a list over depth (null where nothing counted)."""
        return {"depth_axis": self.depth_axis,
                "fractions": {p: [None if np.isnan(v) else float(v) for v in self.fractions[:, i]]
                              for i, p in enumerate(self.phases)}}

    def as_table(self):
        """pandas DataFrame: depth_index, then one ``<phase>`` fraction column per phase,
        then ``voxels``."""
        import pandas as pd

        table = pd.DataFrame({"depth_index": np.arange(self.counts.shape[0])})
        for i, p in enumerate(self.phases):
            table[p] = self.fractions[:, i]
        table["voxels"] = self.counts.sum(axis=1)
        return table


def volume_fractions(labels: np.ndarray, *, phases: Sequence[str] = DEFAULT_PHASES,
                     ignore_value: int = 255) -> VolumeFractions:
    """Volume fraction of each phase.

    Parameters
    ----------
    labels : ndarray, shape (Z, Y, X) or (Y, X), uint8
        Phase indices 0..len(phases)-1; ``ignore_value`` marks unlabelled voxels.
    phases : sequence of str
        Phase names in label order.
    ignore_value : int
        Label excluded from every count.

    Returns
    -------
    VolumeFractions

    Notes
    -----
    ``fraction[p] = N_p / Σ_q N_q`` where ``N_p`` counts voxels of phase p; ignored voxels are in
    neither numerator nor denominator.

    Examples
    --------
    >>> import numpy as np
    >>> volume_fractions(np.array([[0, 2], [2, 255]], dtype=np.uint8)).fractions["am"]
    0.6666666666666666
    """
    labels = check_labels(labels, phases=phases, ignore_value=ignore_value)
    hist = label_histogram(labels)
    result = VolumeFractions.from_counts(hist[:len(phases)], phases=phases,
                                         ignored=int(hist[ignore_value]))
    if result.total == 0:
        logger.warning("labels: every voxel equals ignore_value=%s; volume fractions are null",
                       ignore_value)
    return result


def volume_fraction_profile(labels: np.ndarray, *, depth_axis: int = 1,
                            phases: Sequence[str] = DEFAULT_PHASES,
                            ignore_value: int = 255) -> VolumeFractionProfile:
    """Volume fraction of each phase in every plane normal to ``depth_axis``.

    Parameters
    ----------
    labels : ndarray, shape (Z, Y, X) or (Y, X), uint8
        Phase indices; ``ignore_value`` excluded.
    depth_axis : int
        Axis running from separator (index 0) to current collector.
    phases : sequence of str
    ignore_value : int

    Returns
    -------
    VolumeFractionProfile
        ``fractions[k, p] = N_p(k) / Σ_q N_q(k)`` for plane k.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[2, 2], [0, 2]], dtype=np.uint8)
    >>> volume_fraction_profile(labels, depth_axis=0).fractions[:, 2].tolist()
    [1.0, 0.5]
    """
    labels = check_labels(labels, phases=phases, ignore_value=ignore_value)
    axis = check_depth_axis(depth_axis, labels.ndim)
    moved = np.moveaxis(labels, axis, 0)
    hist = np.stack([np.bincount(plane.ravel(), minlength=256) for plane in moved])
    return VolumeFractionProfile.from_counts(hist[:, :len(phases)], phases=phases,
                                             depth_axis=axis, ignored=hist[:, ignore_value])

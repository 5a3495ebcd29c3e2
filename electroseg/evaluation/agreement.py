"""Voxel-wise agreement of a segmentation with a reference: IoU, Dice, confusion, boundary F1.

numpy/scipy only. The reference may be dense or sparse (hand-labelled slices): voxels whose
reference value is ``ignore_value`` are left out of every count.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage

from electroseg import DEFAULT_PHASES
from electroseg.errors import InputError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Agreement:
    """Agreement of ``labels`` with ``reference`` over the voxels the reference labels.

    Attributes
    ----------
    phases : tuple of str
        Phase names; phase ``i`` is label value ``i``.
    confusion : tuple of tuple of int
        ``confusion[i][j]`` = voxels with reference ``i`` and label ``j`` (rows: reference).
    iou, dice : dict of str to float
        Per phase; NaN where the phase is absent from both.
    mean_iou : float
        Mean of the defined per-phase IoU values.
    accuracy : float
        Fraction of counted voxels whose label equals the reference.
    boundary_precision, boundary_recall, boundary_f1 : float
        Boundary agreement with a 1-voxel tolerance (see :func:`boundary_scores`).
    n_voxels : int
        Voxels counted (reference not equal to ``ignore_value``).
    """

    phases: tuple[str, ...]
    confusion: tuple[tuple[int, ...], ...]
    iou: dict[str, float]
    dice: dict[str, float]
    mean_iou: float
    accuracy: float
    boundary_precision: float
    boundary_recall: float
    boundary_f1: float
    n_voxels: int

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (NaN stays NaN; ``write_json`` turns it into null)."""
        return {
            "phases": list(self.phases),
            "n_voxels": self.n_voxels,
            "accuracy": self.accuracy,
            "mean_iou": self.mean_iou,
            "iou": dict(self.iou),
            "dice": dict(self.dice),
            "confusion": {"rows": "reference", "columns": "labels",
                          "matrix": [list(row) for row in self.confusion]},
            "boundary": {"precision": self.boundary_precision, "recall": self.boundary_recall,
                         "f1": self.boundary_f1, "tolerance_voxels": 1},
        }

    def as_table(self):
        """Per-phase table: columns ``phase, iou, dice, reference_voxels, label_voxels``."""
        import pandas as pd

        matrix = np.asarray(self.confusion)
        return pd.DataFrame({
            "phase": list(self.phases),
            "iou": [self.iou[p] for p in self.phases],
            "dice": [self.dice[p] for p in self.phases],
            "reference_voxels": matrix.sum(axis=1),
            "label_voxels": matrix.sum(axis=0),
        })


def _check_pair(labels: np.ndarray, reference: np.ndarray, names: tuple[str, str]) -> None:
    for name, arr in zip(names, (labels, reference)):
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{name}: expected a numpy array, got {type(arr).__name__}")
        if not np.issubdtype(arr.dtype, np.integer):
            raise InputError(f"{name}: expected an integer label array, got dtype {arr.dtype}")
    if labels.shape != reference.shape:
        raise InputError(f"{names[0]} and {names[1]}: expected the same shape, "
                         f"got {labels.shape} and {reference.shape}")


def _check_values(arr: np.ndarray, name: str, n_phases: int, ignore_value: int) -> None:
    values = np.unique(arr)
    bad = values[(values >= n_phases) & (values != ignore_value)]
    if bad.size or (values < 0).any():
        raise InputError(f"{name}: expected values 0..{n_phases - 1} (or {ignore_value} for "
                         f"unlabelled), got values {values.tolist()[:12]}")


def confusion_matrix(labels: np.ndarray, reference: np.ndarray, *, n_phases: int,
                     ignore_value: int = 255) -> np.ndarray:
    """Counts ``C[i, j]`` of voxels with reference ``i`` and label ``j``.

    Voxels where ``reference == ignore_value`` are skipped; a label equal to ``ignore_value``
    where the reference is labelled counts as an error in no column (it is dropped).

    Returns
    -------
    ndarray of int64, shape (n_phases, n_phases)

    Examples
    --------
    >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), n_phases=2).tolist()
    [[1, 1], [0, 1]]
    """
    keep = (reference != ignore_value) & (labels != ignore_value)
    ref = reference[keep].astype(np.int64)
    lab = labels[keep].astype(np.int64)
    counts = np.bincount(ref * n_phases + lab, minlength=n_phases * n_phases)
    return counts[: n_phases * n_phases].reshape(n_phases, n_phases)


def boundary_map(labels: np.ndarray, *, ignore_value: int = 255) -> np.ndarray:
    """Voxels that have a differently labelled face neighbour (pairs with ``ignore_value`` skipped).

    Returns
    -------
    ndarray of bool, same shape as ``labels``
    """
    edge = np.zeros(labels.shape, dtype=bool)
    for axis in range(labels.ndim):
        lo = [slice(None)] * labels.ndim
        hi = [slice(None)] * labels.ndim
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        a, b = labels[tuple(lo)], labels[tuple(hi)]
        differ = (a != b) & (a != ignore_value) & (b != ignore_value)
        edge[tuple(lo)] |= differ
        edge[tuple(hi)] |= differ
    return edge


def boundary_scores(labels: np.ndarray, reference: np.ndarray, *,
                    ignore_value: int = 255) -> tuple[float, float, float]:
    """Boundary precision, recall and F1 with a tolerance of 1 voxel.

    A boundary voxel of ``labels`` is matched when a boundary voxel of ``reference`` lies within
    Euclidean distance 1 (one binary dilation with the face-connected cross), and vice versa.
    Only voxels the reference labels are counted.

    Returns
    -------
    (precision, recall, f1) : tuple of float
        Precision is NaN when ``labels`` has no boundary there, recall NaN when the reference
        has none; F1 is 1 when neither has a boundary and 0 when only one has. A sparse
        reference (scribbles, some ``ignore_value``) without a boundary between two of its
        phases cannot judge boundaries: all three are NaN ("not measured").
    """
    mask = reference != ignore_value
    pred = boundary_map(np.where(mask, labels, ignore_value), ignore_value=ignore_value)
    ref = boundary_map(reference, ignore_value=ignore_value)
    cross = ndimage.generate_binary_structure(labels.ndim, 1)
    n_pred, n_ref = int(pred.sum()), int(ref.sum())
    if n_ref == 0 and not mask.all():
        return math.nan, math.nan, math.nan
    if n_pred == 0 or n_ref == 0:
        f1 = 1.0 if n_pred == n_ref else 0.0
        return (math.nan if n_pred == 0 else 0.0, math.nan if n_ref == 0 else 0.0, f1)
    precision = float((pred & ndimage.binary_dilation(ref, cross)).sum()) / n_pred
    recall = float((ref & ndimage.binary_dilation(pred, cross)).sum()) / n_ref
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return precision, recall, f1


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else math.nan


def agreement(labels: np.ndarray, reference: np.ndarray, *,
              phases: Sequence[str] = DEFAULT_PHASES, ignore_value: int = 255) -> Agreement:
    """Per-phase IoU and Dice, confusion matrix and boundary F1 of ``labels`` against ``reference``.

    Parameters
    ----------
    labels : ndarray of int, shape (Z, Y, X) or (Y, X)
        Phase indices to judge.
    reference : ndarray of int, same shape
        Dense or sparse reference; voxels equal to ``ignore_value`` are not counted.
    phases : sequence of str
        Phase names, label ``i`` = ``phases[i]``.
    ignore_value : int
        Unlabelled value in the reference (default 255).

    Returns
    -------
    Agreement

    Notes
    -----
    With ``C`` the confusion matrix (rows reference): ``IoU_p = C[p,p] / (row_p + col_p - C[p,p])``,
    ``Dice_p = 2 C[p,p] / (row_p + col_p)``. Mean IoU averages the phases present in either.

    Examples
    --------
    >>> agreement(np.array([[0, 1]]), np.array([[0, 1]]), phases=("a", "b")).mean_iou
    1.0
    """
    _check_pair(labels, reference, ("labels", "reference"))
    n = len(phases)
    _check_values(labels, "labels", n, ignore_value)
    _check_values(reference, "reference", n, ignore_value)
    conf = confusion_matrix(labels, reference, n_phases=n, ignore_value=ignore_value)
    rows, cols, tp = conf.sum(axis=1), conf.sum(axis=0), np.diag(conf)
    iou = {p: _ratio(tp[i], rows[i] + cols[i] - tp[i]) for i, p in enumerate(phases)}
    dice = {p: _ratio(2 * tp[i], rows[i] + cols[i]) for i, p in enumerate(phases)}
    defined = [v for v in iou.values() if not math.isnan(v)]
    precision, recall, f1 = boundary_scores(labels, reference, ignore_value=ignore_value)
    n_voxels = int(np.count_nonzero(reference != ignore_value))
    if n_voxels == 0:
        logger.warning("reference labels no voxel: every agreement score is undefined")
    return Agreement(
        phases=tuple(phases), confusion=tuple(tuple(int(v) for v in r) for r in conf),
        iou=iou, dice=dice, mean_iou=float(np.mean(defined)) if defined else math.nan,
        accuracy=_ratio(tp.sum(), conf.sum()), boundary_precision=precision,
        boundary_recall=recall, boundary_f1=f1, n_voxels=n_voxels,
    )

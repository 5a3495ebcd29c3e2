"""Are the probabilities honest? A reliability table: confidence against accuracy, and its error.

A model's probabilities are calibrated when, of the voxels it labels with confidence c (its
largest class probability), a share c is right. :func:`reliability` bins the labelled voxels by
confidence and gives, per bin, the mean confidence, the accuracy and the count; the expected
calibration error (ECE) is the count-weighted mean gap ``|accuracy - confidence|``. A model that
is right less often than it is sure is over-confident (accuracy below the diagonal).
"""

from __future__ import annotations

import numpy as np

__all__ = ["reliability", "reliability_figure"]


def reliability(probabilities: np.ndarray, truth: np.ndarray, *, n_bins: int = 10,
                ignore_value: int = 255) -> dict:
    """Reliability table of class probabilities against true labels.

    Parameters
    ----------
    probabilities : ndarray, shape (K, ...)
        Class probabilities (any float or uint8 scaled to 0-255), summing to about 1 over K.
    truth : ndarray of int, shape (...)
        True phase indices; ``ignore_value`` is left out.
    n_bins : int
        Equal-width confidence bins over [1/K, 1].

    Returns
    -------
    dict
        ``bins`` (lower edges), ``confidence``, ``accuracy``, ``count`` (per bin; null where
        empty), ``ece``, ``mean_confidence``, ``accuracy_overall``, ``voxels``.

    Examples
    --------
    >>> p = np.array([[0.9, 0.9, 0.6, 0.6], [0.1, 0.1, 0.4, 0.4]])
    >>> r = reliability(p, np.array([0, 0, 0, 1]), n_bins=2)
    >>> r["accuracy"], r["confidence"], round(r["ece"], 3)
    ([0.5, 1.0], [0.6, 0.9], 0.1)
    """
    probabilities = np.asarray(probabilities)
    scale = 255.0 if probabilities.dtype == np.uint8 else 1.0
    k = probabilities.shape[0]
    keep = np.asarray(truth) != ignore_value
    confidence = probabilities.max(axis=0)[keep].astype(np.float64) / scale
    correct = probabilities.argmax(axis=0)[keep] == np.asarray(truth)[keep]
    edges = np.linspace(1.0 / k, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    conf_sum = np.bincount(index, weights=confidence, minlength=n_bins)
    right = np.bincount(index, weights=correct.astype(np.float64), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf, accuracy = conf_sum / count, right / count
    total = int(count.sum())
    ece = float(np.nansum(count * np.abs(accuracy - mean_conf)) / total) if total else None

    def listed(values):
        return [None if c == 0 else round(float(v), 6) for v, c in zip(values, count)]

    return {"bins": [round(float(e), 6) for e in edges[:-1]], "confidence": listed(mean_conf),
            "accuracy": listed(accuracy), "count": count.astype(int).tolist(), "ece": ece,
            "mean_confidence": float(confidence.mean()) if total else None,
            "accuracy_overall": float(correct.mean()) if total else None, "voxels": total}


def reliability_figure(table: dict, *, title: str = "reliability of the learned probabilities"):
    """Accuracy against confidence per bin (the diagonal is perfect calibration)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.8, 4.2), layout="constrained")
    ax = fig.subplots()
    points = [(c, a, n) for c, a, n in zip(table["confidence"], table["accuracy"], table["count"]) if c is not None]
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="calibrated")
    if points:
        conf, acc, n = map(np.array, zip(*points))
        ax.plot(conf, acc, "o-", color="C0", label=f"model (ECE {table['ece']:.3f})")
        for c, a, m in zip(conf, acc, n):
            ax.annotate(f"{m / table['voxels']:.0%}", (c, a), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set(xlabel="confidence (largest class probability)", ylabel="accuracy against the truth",
           xlim=(0, 1.02), ylim=(0, 1.02), title=title)
    ax.legend(fontsize=8, loc="upper left")
    return fig

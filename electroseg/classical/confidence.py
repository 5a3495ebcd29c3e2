"""Per-voxel confidence of a threshold segmentation (used to mask pseudo-labels)."""

from __future__ import annotations

import numpy as np


def class_statistics(image: np.ndarray, classes: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the intensity of each class, shape (count,) each.

    Computed on a strided sample; an empty class gets NaN mean and spread 0.
    """
    flat_image = np.asarray(image).reshape(-1)
    flat_classes = np.asarray(classes).reshape(-1)
    step = max(1, flat_image.size // 4_000_000)
    values = flat_image[::step].astype(np.float64)
    index = flat_classes[::step]
    n = np.bincount(index, minlength=count)[:count].astype(float)
    total = np.bincount(index, weights=values, minlength=count)[:count]
    squares = np.bincount(index, weights=values * values, minlength=count)[:count]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
        spread = np.sqrt(np.maximum(squares / n - mean * mean, 0.0))
    return mean, np.nan_to_num(spread)


def _plane_confidence(plane: np.ndarray, classes: np.ndarray, thresholds: np.ndarray, spread: np.ndarray) -> np.ndarray:
    edges = np.concatenate([[-np.inf], thresholds, [np.inf]]).astype(np.float32)
    distance = np.minimum(plane - edges[classes], edges[classes + 1] - plane)
    scale = np.maximum(spread, 1e-12).astype(np.float32)
    return np.clip(distance / scale[classes], 0.0, 1.0)


def threshold_confidence(
    image: np.ndarray, classes: np.ndarray, thresholds: np.ndarray, spread: np.ndarray
) -> np.ndarray:
    """Confidence in [0, 1] from the distance of each voxel's intensity to the nearest threshold.

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X)
    classes : ndarray of uint8, same shape
        Intensity class of each voxel (as thresholded, before any reassignment).
    thresholds : ndarray, shape (K - 1,) or (Z, K - 1)
    spread : ndarray, shape (K,)
        Intensity standard deviation of each class.

    Returns
    -------
    ndarray of float32, same shape

    Notes
    -----
    ``confidence = clip(d / s_c, 0, 1)`` where ``d`` is the distance from the voxel's intensity
    to the nearest threshold bounding its class ``c`` and ``s_c`` that class's standard
    deviation: 0 on a threshold, 1 one class-spread away from it or more.
    """
    thresholds = np.asarray(thresholds, dtype=float)
    out = np.empty(np.shape(image), np.float32)
    if np.ndim(image) == 2:
        out[:] = _plane_confidence(image, classes, np.ravel(thresholds), spread)
        return out
    for k in range(out.shape[0]):
        row = thresholds[k] if thresholds.ndim == 2 else thresholds
        out[k] = _plane_confidence(image[k], classes[k], row, spread)
    return out

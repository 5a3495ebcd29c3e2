"""Denoising of slices: fast exact 3x3 median, larger medians, bilateral, non-local means."""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage as ndi

from electroseg.errors import InputError
from electroseg.preprocess._common import as_float_image, check_positive, map_slices

logger = logging.getLogger(__name__)

METHODS = ("median", "bilateral", "nl_means", "gaussian")


def _median3x3(plane: np.ndarray) -> np.ndarray:
    """Exact 3x3 median with edge replication, by sorting columns then taking the anti-diagonal.

    After sorting each vertical triple into (lo, mid, hi), the median of the 9 values is the
    median of (max of the three lows, median of the three mids, min of the three highs).
    Vectorised min/max on whole slices is about ten times faster than `scipy.ndimage.median_filter`.
    """
    p = np.pad(plane, 1, mode="edge")
    a, b, c = p[:-2], p[1:-1], p[2:]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    mid = np.minimum(hi, c)
    hi = np.maximum(hi, c)
    lo, mid = np.minimum(lo, mid), np.maximum(lo, mid)
    low = np.maximum(np.maximum(lo[:, :-2], lo[:, 1:-1]), lo[:, 2:])
    high = np.minimum(np.minimum(hi[:, :-2], hi[:, 1:-1]), hi[:, 2:])
    m0, m1, m2 = mid[:, :-2], mid[:, 1:-1], mid[:, 2:]
    middle = np.maximum(np.minimum(m0, m1), np.minimum(np.maximum(m0, m1), m2))
    return np.maximum(np.minimum(low, middle), np.minimum(np.maximum(low, middle), high))


def _denoise_slice(plane: np.ndarray, method: str, size: int, strength: float) -> np.ndarray:
    if method == "median":
        if size == 3:
            return _median3x3(plane)
        return ndi.median_filter(plane, size=size, mode="nearest")
    if method == "gaussian":
        return ndi.gaussian_filter(plane, strength)
    from skimage.restoration import denoise_bilateral, denoise_nl_means

    scale = float(np.ptp(plane)) or 1.0
    unit = (plane - plane.min()) / scale
    if method == "bilateral":
        smooth = denoise_bilateral(unit, win_size=size, sigma_color=strength, sigma_spatial=1.0)
    else:
        smooth = denoise_nl_means(unit, patch_size=size, patch_distance=2 * size, h=strength)
    return (smooth * scale + plane.min()).astype(np.float32)


def denoise(
    image: np.ndarray, *, method: str = "median", size: int = 3, strength: float = 0.05
) -> np.ndarray:
    """Denoise every (Y, X) slice.

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X)
    method : {"median", "bilateral", "nl_means", "gaussian"}
        ``median`` (default, fast; size 3 uses an exact vectorised kernel), ``bilateral`` and
        ``nl_means`` (`skimage.restoration`, slow on full stacks), ``gaussian``.
    size : int
        Window side (median, bilateral) or patch size (nl_means), pixels.
    strength : float
        ``sigma_color`` (bilateral) or ``h`` (nl_means), both relative to the slice's intensity
        range; Gaussian sigma in pixels for ``gaussian``.

    Returns
    -------
    ndarray, float32, same shape as ``image``

    Examples
    --------
    >>> spike = np.zeros((5, 5), np.float32); spike[2, 2] = 9.0
    >>> float(denoise(spike).max())
    0.0
    """
    image = as_float_image(image)
    if method not in METHODS:
        raise InputError(f"method: expected one of {METHODS}, got {method!r}")
    if int(size) < 1:
        raise InputError(f"size: expected an integer >= 1, got {size!r}")
    check_positive(strength, name="strength")
    logger.info("denoise: %s, size %d", method, size)
    return map_slices(lambda plane: _denoise_slice(plane, method, int(size), float(strength)), image)

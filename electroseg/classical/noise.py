"""Smoothing sized from the image's own noise: none on clean images, enough on noisy ones.

A voxel of one phase is thresholded into the next when noise carries it across the cut halfway
between the two class means, with probability ``Phi(-d / 2)`` where ``d`` is the contrast between
the classes in units of the noise. At ``d = 6`` that is 0.13 % of the voxels; at ``d = 2.3`` (the
project's noisiest FIB-SEM presets) 12 %. Smoothing in-plane with a Gaussian of width ``s`` pixels
divides white noise by about ``2 sqrt(pi) s`` but also blurs boundaries, so `smoothing_sigma`
picks the smallest ``s`` that brings ``d`` up to `TARGET_SEPARATION`, and none when ``d`` is
already there. The real labelled images of the benchmark (SEM, nano-CT, micro-CT) are all above it
and are left unchanged (benchmarks/segmentation_accuracy.py).
"""

from __future__ import annotations

import logging

import numpy as np

from electroseg.classical.thresholds import apply_thresholds, sample_values

logger = logging.getLogger(__name__)

TARGET_SEPARATION = 6.0  # class contrast / noise reached by the smoothing
MAX_SIGMA = 1.5  # pixels; stronger smoothing erases CBD films more than it removes noise
_SLICES = 8  # slices of a stack the noise is measured on


def noise_sigma(image: np.ndarray) -> float:
    """Robust estimate of the standard deviation of white noise in an image or stack.

    The five-point in-plane Laplacian of white noise of std ``s`` has std ``sqrt(20) s``; its
    median absolute deviation ignores the few pixels on phase boundaries. Measured on at most
    8 evenly spaced slices of a stack.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> round(noise_sigma(rng.normal(0, 2.0, (256, 256))), 1)
    2.0
    """
    image = np.asarray(image)
    planes = image[None] if image.ndim == 2 else image.reshape((-1,) + image.shape[-2:])
    planes = planes[:: max(1, len(planes) // _SLICES)][:_SLICES].astype(np.float32)
    if planes.shape[-1] < 3 or planes.shape[-2] < 3:
        return 0.0
    core = planes[:, 1:-1, 1:-1]
    laplacian = (4 * core - planes[:, :-2, 1:-1] - planes[:, 2:, 1:-1]
                 - planes[:, 1:-1, :-2] - planes[:, 1:-1, 2:]).reshape(-1)
    mad = np.median(np.abs(laplacian - np.median(laplacian)))
    return float(1.4826 * mad / np.sqrt(20.0))


def smoothing_sigma(image: np.ndarray, thresholds: np.ndarray) -> tuple[float, float]:
    """In-plane Gaussian width (pixels) that lifts the class separation to `TARGET_SEPARATION`.

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X)
    thresholds : ndarray, shape (K - 1,) or (Z, K - 1)
        Thresholds between the intensity classes, from the unsmoothed image.

    Returns
    -------
    sigma : float
        0 when the image is clean enough, else at most `MAX_SIGMA`.
    separation : float
        Smallest contrast between adjacent class means, in units of the noise (inf without noise).
    """
    cuts = np.asarray(thresholds, dtype=np.float32)
    if cuts.ndim == 2:
        cuts = cuts.mean(axis=0)
    values = sample_values(image, max_values=1_000_000)
    classes = apply_thresholds(values, cuts)
    means = [values[classes == k].mean() for k in range(cuts.size + 1) if np.any(classes == k)]
    noise = noise_sigma(image)
    if len(means) < 2 or noise <= 0:
        return 0.0, float("inf")
    separation = float(np.min(np.abs(np.diff(means)))) / noise
    if separation >= TARGET_SEPARATION:
        return 0.0, separation
    sigma = min(MAX_SIGMA, TARGET_SEPARATION / (2.0 * np.sqrt(np.pi) * max(separation, 1e-6)))
    return float(sigma), separation


def smooth_in_plane(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian of width ``sigma`` pixels over the last two axes, float32; the image if 0."""
    from scipy import ndimage

    if sigma <= 0:
        return image
    widths = [0.0] * (image.ndim - 2) + [float(sigma)] * 2
    return ndimage.gaussian_filter(np.asarray(image, np.float32), widths, output=np.float32)

"""Shading (background) flattening and per-slice brightness normalisation."""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage as ndi

from electroseg.errors import InputError
from electroseg.preprocess._common import as_float_image, check_positive, map_slices

logger = logging.getLogger(__name__)

_SHADING_MODES = ("divide", "subtract")
_NORMALIZE_MODES = ("percentiles", "mean")


def _linear_weights(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left index, right index and right weight of linear interpolation from n_in block
    centres to n_out pixel centres."""
    position = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    left = np.floor(position).astype(int)
    right = np.minimum(left + 1, n_in - 1)
    return left, right, (position - left).astype(np.float32)


def _background(plane: np.ndarray, *, sigma: float, factor: int) -> np.ndarray:
    """Large-scale background of a slice: Gaussian blur computed on a block-averaged copy,
    brought back to full size by separable linear interpolation."""
    ny, nx = plane.shape
    factor = max(1, min(factor, ny // 4 or 1, nx // 4 or 1))
    small = plane[: ny - ny % factor, : nx - nx % factor]
    small = small.reshape(ny // factor, factor, nx // factor, factor).mean(axis=(1, 3))
    small = ndi.gaussian_filter(small, sigma / factor, mode="reflect").astype(np.float32)
    left, right, weight = _linear_weights(nx, small.shape[1])
    wide = small[:, left] * (1 - weight) + small[:, right] * weight
    top, bottom, weight = _linear_weights(ny, small.shape[0])
    return wide[top] * (1 - weight)[:, None] + wide[bottom] * weight[:, None]


def flatten_shading(
    image: np.ndarray, *, sigma: float = 100.0, mode: str = "divide", downsample: int = 8
) -> np.ndarray:
    """Remove slowly varying shading from every slice.

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X)
    sigma : float
        Gaussian sigma (pixels) of the background; much larger than a particle.
    mode : {"divide", "subtract"}
        ``divide``: ``I / B * mean(B)`` (multiplicative shading, e.g. detector shadowing);
        ``subtract``: ``I - B + mean(B)``.
    downsample : int
        The background is computed on ``downsample x downsample`` block means for speed.

    Returns
    -------
    ndarray, float32, same shape; each slice keeps its mean brightness.

    Notes
    -----
    The background is the image itself blurred, so phase regions comparable to ``sigma`` bias
    it: on the Pt-infiltrated SAMBA SEM image (200 px bright Pt areas) dividing by it lowers
    the mean IoU of the classical segmentation from 0.86 to 0.33. Use it for stacks whose
    shading is larger than the microstructure (FIB-SEM ramps and vignetting), not by default on
    single SEM cross-sections.

    Examples
    --------
    >>> yy, xx = np.mgrid[:128, :128]
    >>> vignette = 100.0 - 40.0 * ((yy - 64) ** 2 + (xx - 64) ** 2) / 64**2
    >>> flat = flatten_shading(vignette, sigma=8, mode="subtract", downsample=4)
    >>> bool(np.ptp(flat[16:-16, 16:-16]) < 0.1 * np.ptp(vignette[16:-16, 16:-16]))
    True
    """
    image = as_float_image(image)
    check_positive(sigma, name="sigma")
    if mode not in _SHADING_MODES:
        raise InputError(f"mode: expected one of {_SHADING_MODES}, got {mode!r}")

    def flatten(plane: np.ndarray) -> np.ndarray:
        background = _background(plane, sigma=sigma, factor=int(downsample))
        level = float(background.mean())
        if mode == "subtract":
            return plane - background + level
        return plane / np.maximum(background, 1e-6 * max(abs(level), 1e-12)) * level

    logger.info("flatten_shading: %s by a Gaussian background of sigma %.1f px", mode, sigma)
    return map_slices(flatten, image)


def _slice_statistics(stack: np.ndarray, percentiles: tuple[float, float], mode: str) -> np.ndarray:
    """Per-slice (low, high) percentiles, or (mean, std), on a strided sample of each slice."""
    stats = np.empty((stack.shape[0], 2))
    step = max(1, int(np.sqrt(stack.shape[1] * stack.shape[2] / 60_000)))
    for k, plane in enumerate(stack):
        sample = plane[::step, ::step]
        if mode == "mean":
            stats[k] = sample.mean(), sample.std()
        else:
            stats[k] = np.percentile(sample, percentiles)
    return stats


def normalize_slices(
    image: np.ndarray,
    *,
    mode: str = "percentiles",
    percentiles: tuple[float, float] = (5.0, 95.0),
    z_window: int = 15,
) -> np.ndarray:
    """Remove slice-to-slice brightness flicker of a stack.

    Each slice is mapped linearly so that its statistics (two percentiles, or mean and standard
    deviation) equal a smoothed trend of those statistics along Z (running median over
    ``z_window`` slices), keeping slow depth trends but removing flicker.

    Parameters
    ----------
    image : ndarray, shape (Z, Y, X)
    mode : {"percentiles", "mean"}
    percentiles : (float, float)
        Low and high percentiles matched in ``percentiles`` mode.
    z_window : int
        Length (slices) of the running median defining the trend.

    Returns
    -------
    ndarray, float32, shape (Z, Y, X)
    """
    image = as_float_image(image)
    if mode not in _NORMALIZE_MODES:
        raise InputError(f"mode: expected one of {_NORMALIZE_MODES}, got {mode!r}")
    low, high = (float(p) for p in percentiles)
    if not 0 <= low < high <= 100:
        raise InputError(f"percentiles: expected two increasing values in [0, 100], got {percentiles!r}")
    if image.ndim == 2:
        logger.info("normalize_slices: skipped, a 2-D image has a single slice")
        return image
    stats = _slice_statistics(image, (low, high), mode)
    trend = ndi.median_filter(stats, size=(max(1, int(z_window)), 1), mode="nearest")
    if mode == "mean":
        centre, scale = stats[:, 0], stats[:, 1]
        target_centre, target_scale = trend[:, 0], trend[:, 1]
    else:
        centre, scale = stats[:, 0], stats[:, 1] - stats[:, 0]
        target_centre, target_scale = trend[:, 0], trend[:, 1] - trend[:, 0]
    gain = np.where(scale > 0, target_scale / np.where(scale > 0, scale, 1.0), 1.0)
    out = np.empty_like(image)
    for k in range(image.shape[0]):
        np.subtract(image[k], centre[k], out=out[k])
        out[k] *= gain[k]
        out[k] += target_centre[k]
    logger.info(
        "normalize_slices: %s, gain range %.3f-%.3f over %d slices",
        mode, gain.min(), gain.max(), image.shape[0],
    )
    return out

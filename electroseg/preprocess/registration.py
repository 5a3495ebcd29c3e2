"""Slice registration (drift correction) of FIB-SEM stacks.

During serial sectioning the imaged block face drifts in the image plane from slice to slice
(Tang et al., sec. 2.2: "the images will appear to shift upwards during serial sectioning").
Successive slices are registered by phase correlation and the pairwise shifts accumulated.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage as ndi
from skimage.registration import phase_cross_correlation

from electroseg.errors import InputError
from electroseg.preprocess._common import as_float_image, check_positive

logger = logging.getLogger(__name__)


def _registration_view(image: np.ndarray, *, max_size: int, highpass_sigma: float) -> np.ndarray:
    """Central crop of a slice, with curtaining and shading suppressed, ready for correlation.

    Vertical curtaining stripes do not move with the drift of the block face, so they would lock
    the correlation at zero horizontal shift; removing each column's mean (and each row's mean)
    suppresses them. A difference-of-Gaussians high-pass removes shading; a Hann window removes
    the wrap-around edge of the discrete Fourier transform.
    """
    ny, nx = image.shape
    y0 = max(0, (ny - max_size) // 2)
    x0 = max(0, (nx - max_size) // 2)
    view = image[y0 : y0 + max_size, x0 : x0 + max_size].astype(np.float32)
    view = view - view.mean(axis=0, keepdims=True)
    view = view - view.mean(axis=1, keepdims=True)
    view = view - ndi.gaussian_filter(view, highpass_sigma)
    window = np.outer(np.hanning(view.shape[0]), np.hanning(view.shape[1])).astype(np.float32)
    return view * window


def estimate_shifts(
    image: np.ndarray,
    *,
    upsample_factor: int = 20,
    max_size: int = 512,
    highpass_sigma: float = 8.0,
) -> np.ndarray:
    """Estimate the in-plane drift of every slice of a stack relative to slice 0.

    Parameters
    ----------
    image : ndarray, shape (Z, Y, X)
        Greyscale stack.
    upsample_factor : int
        Sub-pixel precision of the phase correlation is ``1 / upsample_factor`` pixels.
    max_size : int
        Side of the central square (pixels) used for correlation; smaller is faster.
    highpass_sigma : float
        Gaussian sigma (pixels) of the background removed before correlation.

    Returns
    -------
    ndarray, shape (Z, 2), float64
        ``shifts[k] = (dy, dx)``: the content of slice ``k`` sits ``(dy, dx)`` pixels from where
        it is in slice 0; ``shifts[0] = (0, 0)``.

    Notes
    -----
    Pairwise shifts between slices ``k-1`` and ``k`` (``skimage`` phase correlation) are summed,
    so ``shifts[k] = sum_{j <= k} d_j``.
    """
    image = as_float_image(image)
    if image.ndim != 3:
        raise InputError(f"image: expected a 3-D stack (Z, Y, X) to register, got shape {image.shape}")
    check_positive(upsample_factor, name="upsample_factor")
    pairwise = np.zeros((image.shape[0], 2))
    previous = _registration_view(image[0], max_size=max_size, highpass_sigma=highpass_sigma)
    for k in range(1, image.shape[0]):
        current = _registration_view(image[k], max_size=max_size, highpass_sigma=highpass_sigma)
        shift, _, _ = phase_cross_correlation(
            current, previous, upsample_factor=int(upsample_factor), normalization=None
        )
        pairwise[k] = shift
        previous = current
    return np.cumsum(pairwise, axis=0)


def apply_shifts(image: np.ndarray, shifts: np.ndarray, *, order: int = 1) -> np.ndarray:
    """Move every slice of a stack by ``-shifts[k]`` so that it lines up with slice 0.

    Parameters
    ----------
    image : ndarray, shape (Z, Y, X) or (C, Z, Y, X)
        Stack (or channels of a stack) to correct; every channel gets the same shifts.
    shifts : ndarray, shape (Z, 2)
        Drift of each slice as returned by `estimate_shifts`.
    order : int
        Spline order of the interpolation (1 = linear).

    Returns
    -------
    ndarray, float32, same shape as ``image``
        Edges uncovered by the shift repeat the nearest valid pixel.
    """
    image = np.asarray(image)
    shifts = np.asarray(shifts, dtype=float)
    if shifts.shape != (image.shape[-3], 2):
        raise InputError(
            f"shifts: expected shape ({image.shape[-3]}, 2) for a stack of {image.shape[-3]} slices, "
            f"got {shifts.shape}"
        )
    out = np.empty(image.shape, np.float32)
    for index in np.ndindex(*image.shape[:-2]):
        dy, dx = shifts[index[-1]]
        plane = image[index].astype(np.float32, copy=False)
        if dy == 0 and dx == 0:
            out[index] = plane
        else:
            ndi.shift(plane, (-dy, -dx), output=out[index], order=order, mode="nearest")
    return out


def register_slices(
    image: np.ndarray,
    *,
    upsample_factor: int = 20,
    max_size: int = 512,
    highpass_sigma: float = 8.0,
    order: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Correct slice-to-slice drift of a (Z, Y, X) or (C, Z, Y, X) stack.

    Multi-channel stacks are registered on the first channel and every channel is moved by the
    same shifts. See `estimate_shifts` for the parameters.

    Returns
    -------
    registered : ndarray, float32, same shape as ``image``
    shifts : ndarray, shape (Z, 2)
        Drift ``(dy, dx)`` of each slice relative to slice 0, in pixels.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> base = ndi.gaussian_filter(rng.random((64, 64)), 2)
    >>> stack = np.stack([base, ndi.shift(base, (1.5, -2.0), mode="wrap")])
    >>> _, shifts = register_slices(stack, highpass_sigma=4)
    >>> np.round(shifts[1], 1).tolist()
    [1.5, -2.0]
    """
    image = np.asarray(image)
    if image.ndim not in (3, 4):
        raise InputError(
            f"image: expected a stack (Z, Y, X) or channels of a stack (C, Z, Y, X), got shape {image.shape}"
        )
    reference = image[0] if image.ndim == 4 else image
    shifts = estimate_shifts(
        reference, upsample_factor=upsample_factor, max_size=max_size, highpass_sigma=highpass_sigma
    )
    logger.info(
        "register_slices: %d slices, largest drift |dy| = %.2f px, |dx| = %.2f px",
        len(shifts), np.abs(shifts[:, 0]).max(), np.abs(shifts[:, 1]).max(),
    )
    return apply_shifts(image, shifts, order=order), shifts

"""Slice registration (drift correction) of FIB-SEM stacks.

During serial sectioning the imaged block face drifts in the image plane from slice to slice
(Tang et al., sec. 2.2: "the images will appear to shift upwards during serial sectioning").
Successive slices are registered by phase correlation and the pairwise shifts accumulated.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage as ndi

from electroseg.errors import InputError
from electroseg.preprocess._common import as_float_image, check_positive

logger = logging.getLogger(__name__)


def _registration_spectrum(
    image: np.ndarray, *, max_size: int, highpass_sigma: float, downsample: int
) -> np.ndarray:
    """Fourier transform of a central crop of a slice with curtaining and shading suppressed.

    Vertical curtaining stripes need not move with the drift of the block face, so they could
    lock the correlation at zero horizontal shift; removing each column's mean (and each row's
    mean) suppresses them. A Hann window removes the wrap-around edge of the discrete Fourier
    transform, and a Gaussian high-pass (applied in Fourier space, so it costs nothing)
    removes shading.
    """
    ny, nx = image.shape
    y0 = max(0, (ny - max_size) // 2)
    x0 = max(0, (nx - max_size) // 2)
    view = image[y0 : y0 + max_size, x0 : x0 + max_size].astype(np.float32)
    if downsample > 1:
        ny, nx = (view.shape[0] // downsample) * downsample, (view.shape[1] // downsample) * downsample
        view = view[:ny, :nx].reshape(ny // downsample, downsample, nx // downsample, downsample).mean(axis=(1, 3))
    view = view - view.mean(axis=0, keepdims=True)
    view = view - view.mean(axis=1, keepdims=True)
    view *= np.outer(np.hanning(view.shape[0]), np.hanning(view.shape[1])).astype(np.float32)
    spectrum = np.fft.fft2(view)
    fy = np.fft.fftfreq(view.shape[0])[:, np.newaxis]
    fx = np.fft.fftfreq(view.shape[1])[np.newaxis, :]
    sigma = highpass_sigma / downsample
    spectrum *= 1.0 - np.exp(-2.0 * np.pi**2 * sigma**2 * (fy**2 + fx**2))
    return spectrum


def _upsampled_dft(data: np.ndarray, size: int, factor: int, offsets: np.ndarray) -> np.ndarray:
    """Cross-correlation on a ``size x size`` grid ``1/factor`` px apart, by matrix DFT
    (Guizar-Sicairos et al., Opt. Lett. 33 (2008) 156).

    `numpy.einsum` without BLAS: multi-threaded BLAS on these small complex products is ~50x
    slower than one thread on a busy machine (thread spinning), and library code must not
    change global thread settings.
    """
    kernels = []
    for n, offset in zip(data.shape, offsets):
        phase = (np.arange(size) - offset)[:, None] * np.fft.fftfreq(n, factor)[None, :]
        kernels.append(np.exp(-2j * np.pi * phase).astype(np.complex64))
    partial = np.einsum("yx,kx->yk", data.astype(np.complex64), kernels[1], optimize=False)
    return np.einsum("jy,yk->jk", kernels[0], partial, optimize=False)


def phase_shift(reference: np.ndarray, moving: np.ndarray, *, upsample_factor: int = 20) -> np.ndarray:
    """Sub-pixel translation ``(dy, dx)`` that registers ``moving`` onto ``reference``.

    Both arguments are 2-D Fourier transforms. Same algorithm and sign as
    `skimage.registration.phase_cross_correlation` (integer peak of the cross-correlation,
    then a local matrix-DFT upsampling), with the upsampling done in complex64 without BLAS,
    several times faster than skimage's `tensordot` on a busy machine.
    """
    product = reference * moving.conj()
    correlation = np.abs(np.fft.ifft2(product))
    peak = np.array(np.unravel_index(np.argmax(correlation), correlation.shape), dtype=float)
    shape = np.array(correlation.shape)
    peak[peak > shape // 2] -= shape[peak > shape // 2]
    shift = np.round(peak * upsample_factor) / upsample_factor
    size = int(np.ceil(upsample_factor * 1.5))
    centre = np.fix(size / 2.0)
    local = _upsampled_dft(product.conj(), size, upsample_factor, centre - shift * upsample_factor).conj()
    best = np.array(np.unravel_index(np.argmax(np.abs(local)), local.shape), dtype=float)
    return shift + (best - centre) / upsample_factor


def estimate_shifts(
    image: np.ndarray,
    *,
    upsample_factor: int = 20,
    max_size: int = 512,
    highpass_sigma: float = 8.0,
    downsample: int = 2,
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
    downsample : int
        Block-average the crop by this factor before correlating (4x faster for 2); the
        sub-pixel step is then ``downsample / upsample_factor`` pixels.

    Returns
    -------
    ndarray, shape (Z, 2), float64
        ``shifts[k] = (dy, dx)``: the content of slice ``k`` sits ``(dy, dx)`` pixels from where
        it is in slice 0; ``shifts[0] = (0, 0)``.

    Notes
    -----
    Pairwise shifts between slices ``k-1`` and ``k`` (phase correlation, `phase_shift`) are summed,
    so ``shifts[k] = sum_{j <= k} d_j``.
    """
    image = as_float_image(image)
    if image.ndim != 3:
        raise InputError(f"image: expected a 3-D stack (Z, Y, X) to register, got shape {image.shape}")
    check_positive(upsample_factor, name="upsample_factor")
    pairwise = np.zeros((image.shape[0], 2))
    options = {"max_size": max_size, "highpass_sigma": highpass_sigma, "downsample": max(1, int(downsample))}
    previous = _registration_spectrum(image[0], **options)
    for k in range(1, image.shape[0]):
        current = _registration_spectrum(image[k], **options)
        pairwise[k] = phase_shift(current, previous, upsample_factor=int(upsample_factor)) * options["downsample"]
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
    downsample: int = 2,
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
    >>> _, shifts = register_slices(stack, highpass_sigma=4, downsample=1)
    >>> bool(np.allclose(shifts[1], [1.5, -2.0], atol=0.1))
    True
    """
    image = np.asarray(image)
    if image.ndim not in (3, 4):
        raise InputError(
            f"image: expected a stack (Z, Y, X) or channels of a stack (C, Z, Y, X), got shape {image.shape}"
        )
    reference = image[0] if image.ndim == 4 else image
    shifts = estimate_shifts(
        reference, upsample_factor=upsample_factor, max_size=max_size,
        highpass_sigma=highpass_sigma, downsample=downsample,
    )
    logger.info(
        "register_slices: %d slices, largest drift |dy| = %.2f px, |dx| = %.2f px",
        len(shifts), np.abs(shifts[:, 0]).max(), np.abs(shifts[:, 1]).max(),
    )
    return apply_shifts(image, shifts, order=order), shifts

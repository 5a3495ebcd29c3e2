"""Slice registration (drift correction) of FIB-SEM stacks.

During serial sectioning the imaged block face drifts in the image plane from slice to slice
(Tang et al., sec. 2.2: "the images will appear to shift upwards during serial sectioning").
Successive slices are registered by phase correlation and the pairwise shifts accumulated;
or, where the images show a static reference (the protective cap with tracking marks that
Tang et al. register on), every slice's reference region is registered to one template.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import fft
from scipy import ndimage as ndi
from skimage.registration import phase_cross_correlation

from electroseg.errors import InputError
from electroseg.preprocess._common import as_float_image, roi_slices

logger = logging.getLogger(__name__)


def _registration_view(image: np.ndarray, *, max_size: int, downsample: int) -> np.ndarray:
    """Central crop of a slice, block-averaged, with curtaining suppressed.

    Vertical curtaining stripes need not move with the drift of the block face, so they could
    lock the correlation at zero horizontal shift; removing each column's mean (and each row's
    mean) suppresses them.
    """
    ny, nx = image.shape
    y0 = max(0, (ny - max_size) // 2)
    x0 = max(0, (nx - max_size) // 2)
    view = image[y0 : y0 + max_size, x0 : x0 + max_size].astype(np.float32)
    if downsample > 1:
        ny, nx = (view.shape[0] // downsample) * downsample, (view.shape[1] // downsample) * downsample
        view = view[:ny, :nx].reshape(ny // downsample, downsample, nx // downsample, downsample).mean(axis=(1, 3))
    view = view - view.mean(axis=0, keepdims=True)
    return view - view.mean(axis=1, keepdims=True)


def _tile_spectra(view: np.ndarray, *, tile: int, highpass_sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Real Fourier transforms of Hann-windowed, high-passed, half-overlapping tiles of a view.

    Returns (spectra of shape (n_tiles, ty, tx // 2 + 1), complex64, standard deviation of each
    tile). The Hann window removes the wrap-around edge of the DFT; the Gaussian high-pass (in
    Fourier space) removes shading.
    """
    ty, tx = min(tile, view.shape[0]), min(tile, view.shape[1])
    starts_y = range(0, view.shape[0] - ty + 1, max(1, ty // 2))
    starts_x = range(0, view.shape[1] - tx + 1, max(1, tx // 2))
    tiles = np.stack([view[y : y + ty, x : x + tx] for y in starts_y for x in starts_x])
    spread = tiles.std(axis=(1, 2))
    tiles = tiles * np.outer(np.hanning(ty), np.hanning(tx)).astype(np.float32)
    spectra = fft.rfft2(tiles.astype(np.float32))
    fy = np.fft.fftfreq(ty)[:, np.newaxis]
    fx = np.fft.rfftfreq(tx)[np.newaxis, :]
    spectra *= (1.0 - np.exp(-2.0 * np.pi**2 * highpass_sigma**2 * (fy**2 + fx**2))).astype(np.float32)
    return spectra, spread


def _tiles_within(spread: np.ndarray, contrast: tuple[float, float] = (0.25, np.inf)) -> np.ndarray:
    """Mask of the tiles whose standard deviation lies within ``contrast`` times the median tile's
    (the default: every tile with texture)."""
    median = np.median(spread)
    return (spread >= contrast[0] * median) & (spread <= contrast[1] * median)


def _median_tile_shift(current: np.ndarray, previous: np.ndarray, *, tile: int, highpass_sigma: float) -> np.ndarray:
    """Median over textured tiles of integer-precision tile shifts."""
    spectra, spread = _tile_spectra(current, tile=tile, highpass_sigma=highpass_sigma)
    reference, _ = _tile_spectra(previous, tile=tile, highpass_sigma=highpass_sigma)
    textured = _tiles_within(spread)
    shape = (min(tile, current.shape[0]), min(tile, current.shape[1]))
    return np.median(_parabolic_shift(spectra[textured], reference[textured], shape), axis=0)


def _pairwise_shift(current: np.ndarray, previous: np.ndarray, *, tile: int, highpass_sigma: float,
                    contrast: tuple[float, float] = (0.25, np.inf)) -> np.ndarray:
    """Drift from ``previous`` to ``current`` (two registration views), coarse then by tiles.

    The median over tiles 4x larger gives the integer shift (robust to large drifts);
    ``previous`` is moved by it and the residual is the median over textured small tiles.
    Between two serial sections the structure itself changes: inclined particle walls move
    in-plane, which a single correlation of the whole field reads as drift. Those local motions
    point in all directions, so the median over tiles follows the common drift more closely.
    Only small tiles whose standard deviation lies within ``contrast`` times the median tile's
    enter that median.
    """
    estimate = np.round(_median_tile_shift(current, previous, tile=4 * tile, highpass_sigma=highpass_sigma))
    spectra, spread = _tile_spectra(current, tile=tile, highpass_sigma=highpass_sigma)
    textured = _tiles_within(spread, contrast)
    previous_spectrum = fft.rfft2(previous)
    shape = (min(tile, current.shape[0]), min(tile, current.shape[1]))
    # the fixed tile windows (which correlate with themselves at zero shift) and the parabolic
    # peak fit both pull the residual towards whole pixels or 0; moving `previous` by the
    # estimate and measuring again, three times, removes that bias (tests: 0.1 px on known shifts)
    for _ in range(3):
        moved = fft.irfft2(ndi.fourier_shift(previous_spectrum, estimate, n=previous.shape[1]), s=previous.shape)
        reference, _ = _tile_spectra(moved, tile=tile, highpass_sigma=highpass_sigma)
        residual = _parabolic_shift(spectra[textured], reference[textured], shape)
        estimate = estimate + np.median(residual, axis=0)
    return estimate


def _parabolic_shift(reference: np.ndarray, moving: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Translations (B, 2) that register ``moving`` onto ``reference``, for batches of real 2-D
    Fourier transforms of (ny, nx) = ``shape`` tiles (same sign as
    `skimage.registration.phase_cross_correlation`).

    Integer peak of the cross-correlation, then the sub-pixel position from a parabola through
    the peak and its two neighbours along each axis. Several times cheaper than matrix-DFT
    upsampling (skimage); its bias (a pull towards whole pixels) vanishes as the shift goes to
    zero, which is where the iterative refinement of `_pairwise_shift` evaluates it.
    """
    correlation = fft.irfft2(reference * moving.conj(), s=shape)
    batch, ny, nx = correlation.shape
    flat = correlation.reshape(batch, -1).argmax(axis=1)
    iy, ix = np.unravel_index(flat, (ny, nx))
    rows = np.arange(batch)
    result = np.empty((batch, 2))
    for axis, (index, n) in enumerate(((iy, ny), (ix, nx))):
        before = [iy, ix]
        after = [iy, ix]
        before[axis] = (index - 1) % n
        after[axis] = (index + 1) % n
        left = correlation[rows, before[0], before[1]]
        centre = correlation[rows, iy, ix]
        right = correlation[rows, after[0], after[1]]
        curvature = left - 2.0 * centre + right
        offset = np.where(curvature < 0, 0.5 * (left - right) / np.where(curvature < 0, curvature, -1.0), 0.0)
        peak = np.where(index > n // 2, index - n, index).astype(float)
        result[:, axis] = peak + np.clip(offset, -0.5, 0.5)
    return result


def estimate_shifts(
    image: np.ndarray,
    *,
    max_size: int = 256,
    highpass_sigma: float = 8.0,
    downsample: int = 1,
    tile_size: int = 16,
    fiducial_roi: Sequence[Sequence[int | None] | None] | None = None,
    tile_contrast: Sequence[float | None] = (0.25, None),
) -> np.ndarray:
    """Estimate the in-plane drift of every slice of a stack relative to slice 0.

    Parameters
    ----------
    image : ndarray, shape (Z, Y, X)
        Greyscale stack.
    max_size : int
        Side of the central square (pixels) used for correlation; smaller is faster.
    highpass_sigma : float
        Gaussian sigma (pixels) of the background removed before correlation.
    downsample : int
        Block-average the crop by this factor before correlating (4x faster for 2, but fine
        texture that tracks the drift is lost).
    tile_size : int
        Side (pixels after downsampling) of the half-overlapping tiles correlated separately;
        the pairwise shift is the median over tiles with texture. A value at least the crop
        size correlates the whole crop at once. Serial sections differ (inclined particle walls
        move in-plane from slice to slice) and only the common part of many local motions is
        the drift: on synthetic FIB-SEM stacks (64 slices of 256 x 256, random-walk drift of
        0.3 px per slice) 16-px tiles recover the drift to about 1-1.5 px RMS where one
        whole-crop correlation is off by 3.5-4 px (0.2 px on a control stack without
        structural change).
    fiducial_roi : ``[[y0, y1], [x0, x1]]``, optional
        Region (pixels; None bounds = full extent) showing something that does not change from
        slice to slice: the protective cap with tracking marks milled along Z, trench edges.
        Every slice's region is registered directly to a template (no accumulation of pairwise
        errors), so the specimen's own change from slice to slice does not enter; ``max_size``,
        ``downsample`` and ``tile_size`` are then unused. See `_fiducial_shifts`.
    tile_contrast : (low, high)
        Tiles enter the median only if their standard deviation lies between ``low`` and
        ``high`` times the median tile's (``high`` None: no upper bound). ``low`` leaves out
        featureless tiles. A ``high`` of 1 leaves out the most contrasted half, mostly tiles on
        particle walls, whose in-plane motion between inclined sections is the structural error
        described below; texture inside the particles then carries the estimate, which works
        where that texture (primary grains) persists over several slices. RMS error with
        ``high`` None -> 1, synthetic stacks of 64 x 256 x 256, seeds 0-11
        (benchmarks/drift.py): nmc_fibsem 1.05 -> 0.88 px, kintsugi_2ch on TLD 1.28 -> 1.03 px
        and on CBS 1.37 -> 1.14 px, nmc_fibsem_cycled 1.03 -> 0.94 px; but he_nmc_fibsem,
        whose grains are 3.6 px across and decorrelate within two slices, 0.84 -> 1.03 px, and
        the 32 x 128 x 128 demo stack (a quarter of the tiles) 1.09 -> 1.17 px.

    Returns
    -------
    ndarray, shape (Z, 2), float64
        ``shifts[k] = (dy, dx)``: the content of slice ``k`` sits ``(dy, dx)`` pixels from where
        it is in slice 0; ``shifts[0] = (0, 0)``.

    Notes
    -----
    Pairwise shifts between slices ``k-1`` and ``k`` (phase correlation of tiles,
    `_parabolic_shift`) are summed,
    so ``shifts[k] = sum_{j <= k} d_j``.

    Accuracy is limited by the structure, not by the pairwise fit. Inclined particle walls and
    tilted ellipsoids make cross-sections move in-plane in the same direction over many slices.
    Even with no drift at all, a synthetic nmc_fibsem stack (64 x 256 x 256, seeds 0-2) reads as
    1.1-2.1 px RMS of apparent drift with the unshrunk fit described below, and its label volume
    alone as up to 4 px at one slice. This error is coherent along Z, so it is not a random walk
    that averaging could remove. The following were measured on nmc_fibsem and kintsugi_2ch,
    seeds 0-3, and all do worse or show no consistent gain: a robust least-squares solve over
    pairs at offsets 1-16; a running-average reference of the previous 2-4 registered slices; a
    2-D kernel mode instead of the median over tiles; high-pass sigma 2-4 px; 8-12 px tiles. On
    those samples `_pairwise_shift` recovers only 0.45-0.7 of each true step: the shared Hann
    windows pull the residual to 0, so the sum shrinks towards 0. Removing each tile's mean and
    iterating to convergence cuts the control error (a rigidly moved slice 0) from 0.18 to 0.02
    px. On the structured samples, though, the error rises from 0.9 to 2.1 px (nmc_fibsem, seed
    0), because the shrinkage also damps the apparent motion of the structure. Where the images
    show a static reference, ``fiducial_roi`` avoids all of this (0.05-0.09 px RMS on the same
    stacks simulated with a marker band, `benchmarks/segmentation_accuracy.py`).
    """
    image = as_float_image(image)
    if image.ndim != 3:
        raise InputError(f"image: expected a 3-D stack (Z, Y, X) to register, got shape {image.shape}")
    if fiducial_roi is not None:
        return _fiducial_shifts(image, fiducial_roi, highpass_sigma=highpass_sigma)
    factor = max(1, int(downsample))
    pairwise = np.zeros((image.shape[0], 2))

    options = {"tile": int(tile_size), "highpass_sigma": highpass_sigma / factor,
               "contrast": _contrast_range(tile_contrast)}
    previous = _registration_view(image[0], max_size=max_size, downsample=factor)
    for k in range(1, image.shape[0]):
        current = _registration_view(image[k], max_size=max_size, downsample=factor)
        pairwise[k] = _pairwise_shift(current, previous, **options) * factor
        previous = current
    return np.cumsum(pairwise, axis=0)


def _contrast_range(value: Any) -> tuple[float, float]:
    """``tile_contrast`` as (low, high) floats with 0 <= low <= 1 <= high (None high: infinity)."""
    try:
        low, high = value
        low, high = float(low), np.inf if high is None else float(high)
    except (TypeError, ValueError):
        low = high = np.nan
    if not 0 <= low <= 1 <= high:
        raise InputError(f"tile_contrast: expected [low, high] with 0 <= low <= 1 <= high (high may be "
                         f"null), relative to the median tile's contrast; got {value!r}")
    return low, high


def _fiducial_shifts(image: np.ndarray, roi: Sequence[Sequence[int | None] | None], *,
                     highpass_sigma: float) -> np.ndarray:
    """Drift of every slice from a static reference region, relative to slice 0.

    The region is tracked: slice k's view is cut where slice k-1's estimate put the content
    (whole pixels), so it keeps showing the marks under drifts far larger than the region
    (a cross-correlation of fixed windows could not tell a 20 px drift in a 32-row band from
    -12 px). Each view, minus its Gaussian background, is registered to slice 0's by
    cross-correlation with 1/50-pixel upsampling (`skimage.registration.phase_cross_correlation`);
    the views are then moved by their residuals and averaged into a less noisy template, and
    every view is registered again to the template. On synthetic nmc_fibsem stacks with a 32-row
    marker band (``simulate_fibsem(fiducial_rows=32)``, seeds 0-2, 64 slices) this recovers the
    drift to 0.06-0.08 px RMS at ``highpass_sigma=4`` (0.07-0.11 px at 8), where the specimen
    alone gives 0.9-1.4 px; with a steady 0.3 px/slice downwards or sideways on top (17-18 px
    in all, seed 0) 0.05-0.07 px.
    Where the tracked region would leave the image it is held at the edge; when it falls
    behind by more than a quarter of its size a warning says from which slice on the marks may
    be out of view (a band at the top edge cannot follow the content far upwards).
    """
    if not (isinstance(roi, Sequence) and len(roi) == 2):
        raise InputError(f"fiducial_roi: expected [[y0, y1], [x0, x1]] (None for a full extent), got {roi!r}")
    rows, columns = roi_slices(image.shape[1:], roi, name="fiducial_roi (axes y, x of a slice)", min_size=8)
    (y0, y1, _), (x0, x1, _) = rows.indices(image.shape[1]), columns.indices(image.shape[2])

    def view(k: int, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Slice k's region moved by ``offset`` (whole pixels, held inside the image)."""
        dy = int(np.clip(offset[0], -y0, image.shape[1] - y1))
        dx = int(np.clip(offset[1], -x0, image.shape[2] - x1))
        plane = image[k, y0 + dy : y1 + dy, x0 + dx : x1 + dx]
        plane = plane - ndi.gaussian_filter(plane, highpass_sigma) if highpass_sigma > 0 else plane - plane.mean()
        return plane, np.array([dy, dx], float)

    def residual(reference: np.ndarray, moving: np.ndarray) -> np.ndarray:
        # skimage returns the shift that moves `moving` onto `reference`: minus the drift
        return -phase_cross_correlation(reference, moving, upsample_factor=50, normalization=None)[0]

    reference, _ = view(0, np.zeros(2))
    if not reference.std() > 0:
        raise InputError(f"fiducial_roi: {roi!r} shows no texture to register on (constant region)")
    views, offsets, first = [reference], [np.zeros(2)], [np.zeros(2)]  # slice 0: the reference itself
    estimate, held = np.zeros(2), None
    extent = np.array([y1 - y0, x1 - x0], float)
    for k in range(1, image.shape[0]):
        plane, offset = view(k, np.round(estimate))
        if held is None and np.any(np.abs(offset - np.round(estimate)) > 0.25 * extent):
            held = k
        estimate = offset + residual(reference, plane)
        views.append(plane)
        offsets.append(offset)
        first.append(estimate - offset)
    if held is not None:
        logger.warning("fiducial_roi %s: from slice %d on the tracked region reached the image edge; "
                       "the marks may be out of view there", roi, held)
    template = np.mean([ndi.shift(plane, -shift, order=3, mode="nearest")
                        for plane, shift in zip(views, first)], axis=0)
    shifts = np.array([offset + residual(template, plane) for plane, offset in zip(views, offsets)])
    return shifts - shifts[0]


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
    max_size: int = 256,
    highpass_sigma: float = 8.0,
    downsample: int = 1,
    tile_size: int = 16,
    fiducial_roi: Sequence[Sequence[int | None] | None] | None = None,
    tile_contrast: Sequence[float | None] = (0.25, None),
    order: int = 1,
    channel: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Correct slice-to-slice drift of a (Z, Y, X) or (C, Z, Y, X) stack.

    Multi-channel stacks are registered on channel ``channel`` (index along the first axis,
    default the first) and every channel is moved by the same shifts. Detectors differ in how
    well the specimen alone shows the drift: on the synthetic kintsugi_2ch stacks (seeds 0-5)
    the in-lens TLD image gives 1.05 px RMS against 1.47 px from CBS (1.41 px without
    registration). See `estimate_shifts` for the other parameters.

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
    if image.ndim == 4 and not (isinstance(channel, (int, np.integer)) and 0 <= channel < image.shape[0]):
        raise InputError(f"register_slices: expected channel in 0..{image.shape[0] - 1} (index of the "
                         f"detector to register on), got {channel!r}")
    if image.ndim == 3 and channel != 0:
        raise InputError(f"register_slices: channel {channel!r} given for a single-channel stack; expected 0")
    reference = image[channel] if image.ndim == 4 else image
    shifts = estimate_shifts(
        reference, max_size=max_size, highpass_sigma=highpass_sigma, downsample=downsample, tile_size=tile_size,
        fiducial_roi=fiducial_roi, tile_contrast=tile_contrast,
    )
    logger.info(
        "register_slices: %d slices, largest drift |dy| = %.2f px, |dx| = %.2f px",
        len(shifts), np.abs(shifts[:, 0]).max(), np.abs(shifts[:, 1]).max(),
    )
    return apply_shifts(image, shifts, order=order), shifts

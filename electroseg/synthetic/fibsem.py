"""FIB-SEM image simulator: phase contrast plus the artefacts that defeat plain thresholding.

Artefacts (each switched off by setting its amount to 0 or ``shifts=None``): texture,
shine-through of pore back walls along the milling direction +Z (dim in narrow pores and
slits, whose small aperture lets little signal out), curtaining stripes, edge
contrast (in-lens / TLD-like), Gaussian PSF blur, per-slice drift, shading, per-slice
brightness flicker and Poisson-Gaussian noise. Optionally the protective Pt cap above the
specimen with tracking marks milled into it, the reference real acquisitions register on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import edt
import numpy as np
from scipy import ndimage

from electroseg.errors import InputError
from electroseg.synthetic._fields import check_labels_levels, child_rngs, smooth_field

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimulatedImage:
    """A simulated image stack and the drift applied to it.

    Attributes
    ----------
    image : ndarray of uint8, shape (Z, Y, X)
    shifts : ndarray of float64, shape (Z, 2)
        (dy, dx) in pixels: ``image[k]`` is the true-frame slice shifted by ``shifts[k]``
        (``scipy.ndimage.shift`` convention: content moves by +shift). Zeros without drift.
    """

    image: np.ndarray
    shifts: np.ndarray

    def to_dict(self) -> dict:
        """JSON-ready summary: shape, dtype and the shifts as a list of [dy, dx]."""
        return {"shape": list(self.image.shape), "dtype": str(self.image.dtype),
                "shifts_px": self.shifts.round(6).tolist()}


def random_drift_shifts(num_slices: int, *, step_px: float = 0.15, seed: int = 0) -> np.ndarray:
    """Cumulative random-walk drift (dy, dx) in pixels, one row per slice, slice 0 unshifted.

    >>> random_drift_shifts(3, step_px=0.5, seed=1)[0].tolist()
    [0.0, 0.0]
    """
    if num_slices < 1 or step_px < 0:
        raise InputError(f"drift: expected num_slices >= 1 and step_px >= 0, "
                         f"got {num_slices!r} and {step_px!r}")
    steps = np.random.default_rng(seed).normal(0.0, step_px, (num_slices, 2))
    steps[0] = 0.0
    return np.cumsum(steps, axis=0)


def simulate_fibsem(
    labels: np.ndarray,
    *,
    voxel_size: Sequence[float],
    levels: Sequence[float] = (0.12, 0.45, 0.8),
    texture: float = 0.08,
    texture_length_um: float = 0.05,
    grain_contrast: float = 0.0,
    grain_size_um: float = 0.5,
    grain_label: int = 2,
    shine_through: float = 0.9,
    shine_through_um: float = 0.25,
    shine_through_opening_um: float = 0.2,
    curtaining: float = 0.05,
    edge_contrast: float = 0.0,
    blur_sigma_um: float = 0.03,
    shading: float = 0.1,
    flicker: float = 0.02,
    photons: float = 300.0,
    read_noise: float = 0.03,
    shifts: np.ndarray | None = None,
    seed: int = 0,
    noise_seed: int | None = None,
    unfilled: np.ndarray | None = None,
    unfilled_level: float | None = None,
    fiducial_rows: int = 0,
) -> SimulatedImage:
    """Simulate a FIB-SEM serial-section stack of a labelled electrode.

    Parameters
    ----------
    labels : ndarray of uint8, shape (Z, Y, X)
        Phase indices; Z is the milling direction (slice k+1 lies behind slice k).
    voxel_size : sequence of 3 float
        µm per voxel (z, y, x).
    levels : sequence of float
        Grey level of each phase (index = label), fraction of full scale.
    texture, texture_length_um : float
        Relative amplitude and correlation length of the intra-phase texture.
    grain_contrast, grain_size_um, grain_label : float, float, int
        Primary grains inside secondary particles (channelling contrast): voxels of label
        ``grain_label`` get a gain ``1 + grain_contrast * g`` constant per Voronoi cell of mean
        size ``grain_size_um``, ``g`` standard normal per grain.
    shine_through, shine_through_um, shine_through_opening_um : float
        A pore voxel shows ``pore + s exp(-d / L) (1 - exp(-(w / a)**2)) (wall - pore)`` where
        ``wall`` is the grey level of the first solid voxel behind it (larger z) at distance
        ``d`` (µm), and ``w`` the narrowest in-plane opening (µm) of the pore channel between the
        voxel and that wall (see Notes); ``a = shine_through_opening_um`` (0 = no aperture
        effect: every pore shines through as if wide open).
    curtaining : float
        Relative amplitude of vertical stripes (constant along Y, random profile along X,
        slowly changing along Z); multiplicative, so strongest on the brightest phase.
    edge_contrast : float
        Adds this times the in-plane gradient magnitude of the phase levels (SE edge effect).
    blur_sigma_um : float
        In-plane Gaussian PSF sigma (µm).
    shading, flicker : float
        Amplitude of a smooth top-to-bottom/vignetting gain and per-slice gain std.
    photons, read_noise : float
        Poisson noise with ``photons`` counts at full scale (0 = off) plus Gaussian noise.
    shifts : ndarray, shape (Z, 2), optional
        Per-slice drift (dy, dx) in pixels, e.g. from `random_drift_shifts`; None = no drift.
    seed : int
        Specimen randomness (texture, grains, curtains): detectors imaging the same specimen
        together share it. Same seeds, same bytes.
    noise_seed : int, optional
        Detector randomness (flicker, noise); default derived from ``seed``.
    unfilled, unfilled_level : bool ndarray (Z, Y, X) and float, optional
        Pore voxels left empty by a Pt infiltration (kintsugi; e.g. :func:`narrow_pores`) and
        their grey level: they show ``unfilled_level`` instead of the (Pt-filled) pore level.
        Both or neither.
    fiducial_rows : int
        Height (pixels) of a band added above the specimen: vacuum, then the protective Pt cap
        with V-shaped tracking marks milled into it parallel to Z (so every slice cuts them at
        the same place), as in Tang et al. (sec. 2.2) where "reference markers" correct the
        drift. The band drifts, blurs, shades and gets noise like the specimen; its texture
        changes from slice to slice. 0 (default) = no band. Register on it with
        ``estimate_shifts(fiducial_roi=[[0, fiducial_rows], None])`` and crop it away.

    Returns
    -------
    SimulatedImage
        uint8 image (Z, Y + fiducial_rows, X) and the shifts applied.

    Notes
    -----
    Shine-through is signal from the back wall escaping through the open pore towards the
    detector, so it needs both a near wall and a wide enough aperture: narrow slits (open
    cracks, CBD detachment gaps of 2-3 pixels) stay dark, as they do in real unfilled
    FIB-SEM images. The opening ``w`` of a pore pixel is its local thickness in the slice
    (diameter of the largest disc inside the pore covering it, ``2 r - 1`` pixels with ``r``
    the disc's whole-pixel distance to the nearest solid pixel centre); pores wider than
    ``2.5 a`` count as fully open.

    Examples
    --------
    >>> labels = np.zeros((4, 8, 16), np.uint8)
    >>> labels[2:] = 2                       # AM wall behind two pore slices,
    >>> labels[:2, :, [0, 4]] = 2            # seen through a 3-pixel slit and a wide pore
    >>> out = simulate_fibsem(labels, voxel_size=(0.1, 0.05, 0.05), levels=(0.0, 0.5, 1.0),
    ...                       texture=0, curtaining=0, blur_sigma_um=0, shading=0, flicker=0,
    ...                       photons=0, read_noise=0).image
    >>> out[1, 4, 1:4].tolist(), out[1, 4, 5:8].tolist()
    ([66, 66, 66], [154, 154, 154])
    """
    labels, vs, levels_arr = check_labels_levels(labels, voxel_size, levels)
    shifts = _check_shifts(shifts, labels.shape[0])
    if not shine_through_opening_um >= 0:
        raise InputError(f"shine_through_opening_um: expected a width >= 0 µm (0 = no aperture "
                         f"effect), got {shine_through_opening_um!r}")
    fiducial_rows = int(fiducial_rows)
    if fiducial_rows < 0 or (0 < fiducial_rows < 8):
        raise InputError(f"fiducial_rows: expected 0 (no marker band) or a band of at least 8 "
                         f"pixels, got {fiducial_rows!r}")
    rng_texture, rng_curtain, rng_grains, rng_band = child_rngs(seed, 4)
    rng_gain, rng_noise = child_rngs(seed if noise_seed is None else [noise_seed, 1], 2)
    signal = levels_arr[labels]
    if (unfilled is None) != (unfilled_level is None):
        raise InputError("unfilled and unfilled_level: give both (Pt-free pore voxels and their "
                         "grey level) or neither")
    if unfilled is not None:
        unfilled = np.asarray(unfilled, bool)
        if unfilled.shape != labels.shape:
            raise InputError(f"unfilled: expected a mask of the labels' shape {labels.shape}, "
                             f"got {unfilled.shape}")
        signal[unfilled & (labels == 0)] = np.float32(unfilled_level)
    level_image = signal.copy() if edge_contrast > 0 else None
    if texture > 0:
        sigma = [texture_length_um / v for v in vs]
        signal *= 1.0 + np.float32(texture) * smooth_field(labels.shape, sigma_px=sigma,
                                                            rng=rng_texture)
    if grain_contrast > 0:
        grains = labels == grain_label
        signal[grains] *= 1.0 + np.float32(grain_contrast) * _grains(
            labels.shape, vs, grain_size_um, rng_grains)[grains]
    if edge_contrast > 0:
        signal += np.float32(edge_contrast) * _edges(level_image)
    if shine_through > 0:
        _shine_through(signal, labels, float(levels_arr[0]), vs, strength=shine_through,
                       length_um=shine_through_um, opening_um=shine_through_opening_um)
    if fiducial_rows:
        band = _fiducial_band(labels.shape[0], fiducial_rows, labels.shape[2], texture=texture,
                              rng=rng_band)
        signal = np.concatenate([band, signal], axis=1)
    if curtaining > 0:
        signal *= 1.0 + np.float32(curtaining) * _curtains(signal.shape, rng_curtain)
    if blur_sigma_um > 0:
        sigma = [0.0, blur_sigma_um / vs[1], blur_sigma_um / vs[2]]  # each slice imaged alone
        signal = ndimage.gaussian_filter(signal, sigma)
    if np.any(shifts != 0):
        signal = _apply_drift(signal, shifts)
    signal *= _gain(signal.shape, shading=shading, flicker=flicker, rng=rng_gain)
    signal = _add_noise(signal, photons=photons, read_noise=read_noise, rng=rng_noise)
    image = np.round(np.clip(signal, 0.0, 1.0) * 255.0).astype(np.uint8)
    logger.debug("simulated FIB-SEM stack %s", image.shape)
    return SimulatedImage(image, shifts)


def _check_shifts(shifts, num_slices: int) -> np.ndarray:
    if shifts is None:
        return np.zeros((num_slices, 2))
    arr = np.asarray(shifts, dtype=float)
    if arr.shape != (num_slices, 2) or not np.all(np.isfinite(arr)):
        raise InputError(f"shifts: expected finite (dy, dx) per slice, shape ({num_slices}, 2), "
                         f"got shape {arr.shape}")
    return arr


def _grains(shape, voxel_size, grain_size_um: float, rng) -> np.ndarray:
    """Voronoi cells of random seeds (mean cell volume ``grain_size_um**3``), N(0, 1) per cell.

    Computed on a grid ~4 points per grain wide, then repeated to full size (cells stay sharp).
    """
    step = np.maximum(1, np.floor(grain_size_um / (4.0 * np.asarray(voxel_size)))).astype(int)
    coarse = tuple(int(np.ceil(n / s)) for n, s in zip(shape, step))
    coarse_voxel = tuple(float(v * s) for v, s in zip(voxel_size, step))
    count = max(1, int(np.prod(np.asarray(coarse) * coarse_voxel) / grain_size_um**3))
    index = tuple(rng.integers(0, n, count) for n in coarse)
    values = np.zeros(coarse, np.float32)
    values[index] = rng.standard_normal(count).astype(np.float32)
    is_seed = np.zeros(coarse, bool)
    is_seed[index] = True
    nearest = ndimage.distance_transform_edt(~is_seed, sampling=coarse_voxel,
                                             return_distances=False, return_indices=True)
    cells = values[tuple(nearest)]
    for axis, s in enumerate(step):
        cells = np.repeat(cells, s, axis=axis)
    return cells[tuple(slice(0, n) for n in shape)]


def _edges(level_image: np.ndarray) -> np.ndarray:
    """In-plane gradient magnitude of the phase levels (sigma 1 px), per slice."""
    dy = ndimage.gaussian_filter(level_image, [0, 1, 1], order=[0, 1, 0])
    dx = ndimage.gaussian_filter(level_image, [0, 1, 1], order=[0, 0, 1])
    return np.hypot(dy, dx)


def _shine_through(signal, labels, pore_level, voxel_size, *, strength, length_um,
                   opening_um) -> None:
    """Pore voxels take a fading copy of the first solid voxel behind them (+Z), in place.

    The copy is weighted by the aperture of the pore channel: its narrowest in-plane opening
    between the voxel and the wall (see simulate_fibsem Notes).
    """
    num_slices = labels.shape[0]
    wall = np.full(labels.shape[1:], pore_level, np.float32)
    wall_z = np.full(labels.shape[1:], np.inf)
    aperture = np.ones(labels.shape[1:], np.float32)
    for z in range(num_slices - 1, -1, -1):
        pore = labels[z] == 0
        escape = _escape_fraction(pore, voxel_size[1:], opening_um)
        if z + 1 < num_slices:
            solid_behind = labels[z + 1] != 0
            wall = np.where(solid_behind, signal[z + 1], wall)
            wall_z = np.where(solid_behind, z + 1, wall_z)
            aperture = np.where(solid_behind, escape, np.minimum(aperture, escape))
        else:
            aperture = escape
        weight = strength * aperture * np.exp(-(wall_z - z) * voxel_size[0] / length_um)
        signal[z][pore] += (weight.astype(np.float32) * (wall - pore_level))[pore]


def _escape_fraction(pore: np.ndarray, pixel_size, opening_um: float) -> np.ndarray:
    """``1 - exp(-(w / opening_um)**2)`` per pixel of a slice, ``w`` the local pore opening (µm).

    ``w`` from :func:`_opening_width`, searched up to ``2.5 opening_um`` (escape 0.998); pores
    open beyond that (and every pixel when ``opening_um`` is 0) get 1.
    """
    escape = np.ones(pore.shape, np.float32)
    if opening_um <= 0 or pore.all() or not pore.any():
        return escape
    pixel = float(np.mean(pixel_size))
    width = _opening_width(pore, pixel_size, 2.5 * opening_um)
    escape[pore] = -np.expm1(-(width[pore] * np.float32(pixel / opening_um)) ** 2)
    return escape


def _opening_width(pore: np.ndarray, pixel_size, max_um: float) -> np.ndarray:
    """In-plane opening ``w`` (pixels) of every pore pixel of a slice; 0 off the pore.

    ``w = 2 r - 1`` pixels for the largest whole-pixel disc radius ``r`` (to solid pixel
    centres) whose binary opening of the pore still covers the pixel: exact for slits an odd
    number of pixels wide, one pixel short for even ones. Searched up to ``w = max_um``; pixels
    of pores open beyond that get ``inf``.
    """
    pixel = float(np.mean(pixel_size))
    width = np.where(pore, np.float32(1.0), np.float32(0.0))  # radius 1 covers every pore pixel
    if pore.all():
        return np.full(pore.shape, np.inf, np.float32)
    inside = edt.edt(pore, anisotropy=pixel_size, black_border=False) / np.float32(pixel)
    covered = pore
    for radius in range(2, int(np.ceil((max_um / pixel + 1.0) / 2.0)) + 1):
        centres = inside >= radius - 1e-4  # discs of this radius fitting in the pore
        if not centres.any():
            break
        covered = pore & (edt.edt(~centres, anisotropy=pixel_size, black_border=False)
                          <= (radius + 1e-4) * pixel)
        width[covered] = 2 * radius - 1
    else:
        width[covered] = np.inf  # wider than every disc tried: fully open
    return width


def narrow_pores(labels: np.ndarray, voxel_size: Sequence[float], opening_um: float,
                 *, pore_label: int = 0) -> np.ndarray:
    """Pore voxels whose in-plane opening (:func:`simulate_fibsem` Notes) is at most ``opening_um``.

    Kintsugi imaging infiltrates the pores with Pt, but narrow cracks and slits are left
    unfilled and image as empty pores (Hein et al.): pass this mask as ``unfilled`` to
    :func:`simulate_fibsem`. ``opening_um`` 0 gives an empty mask.
    """
    labels = np.asarray(labels)
    out = np.zeros(labels.shape, bool)
    if opening_um <= 0:
        return out
    pixel_size = tuple(float(v) for v in voxel_size[1:])
    pixel = float(np.mean(pixel_size))
    for z in range(labels.shape[0]):
        pore = labels[z] == pore_label
        if pore.any():
            width = _opening_width(pore, pixel_size, opening_um + pixel)
            out[z] = pore & (width * pixel <= opening_um + 1e-6)
    return out


def _fiducial_band(num_slices: int, rows: int, width: int, *, texture: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Signal (Z, rows, X) above the specimen: vacuum (top quarter), then the Pt cap (bright)
    with V-shaped tracking marks (carbon-filled, mid grey) milled from its top surface 60 % of
    the way down, one per ~64 pixels at uneven spacings (a periodic comb would register equally
    well one period off), 3-6 pixels wide at the top. The marks run along Z, so they sit at the
    same place in every slice; the cap's grain texture does not."""
    top = rows // 4
    depth = 0.6 * (rows - top)
    plane = np.full((rows, width), 0.02, np.float32)
    plane[top:] = 0.9
    y = np.arange(rows, dtype=np.float32)[:, None] - top
    x = np.arange(width, dtype=np.float32)[None, :]
    count = max(2, width // 64)
    spacing = 1.0 + 0.6 * np.sin(2.4 * np.arange(count + 1))  # uneven, deterministic
    centres = np.cumsum(spacing)[:-1] / spacing.sum() * width
    for index, centre in enumerate(centres):
        half_width = (1.5 + 1.5 * (index % 3) / 2) * (1.0 - y / depth)
        plane[(y >= 0) & (np.abs(x - centre) <= half_width)] = 0.35
    grain = smooth_field((num_slices, rows, width), sigma_px=(0.5, 1.0, 1.0), rng=rng)
    return plane[None] * (1.0 + np.float32(max(texture, 0.02)) * grain)


def _curtains(shape, rng) -> np.ndarray:
    """Stripe profile (Z, 1, X), unit std: sharp along X, correlated over ~4 slices along Z."""
    profile = smooth_field((shape[0], shape[2]), sigma_px=(4.0, 0.8), rng=rng)
    envelope = 0.5 + smooth_field((1, shape[2]), sigma_px=(1.0, 12.0), rng=rng) ** 2
    return (profile * envelope)[:, None, :]


def _apply_drift(signal: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    out = np.empty_like(signal)
    for k, shift in enumerate(shifts):
        out[k] = ndimage.shift(signal[k], shift, order=3, mode="nearest")
    return out


def _gain(shape, *, shading, flicker, rng) -> np.ndarray:
    """Multiplicative gain (Z, Y, X): top-to-bottom ramp and vignette, plus per-slice flicker."""
    y = np.linspace(-0.5, 0.5, shape[1], dtype=np.float32)[:, None]
    x = np.linspace(-0.5, 0.5, shape[2], dtype=np.float32)[None, :]
    plane = 1.0 - np.float32(shading) * (y + (x**2 + y**2))
    per_slice = 1.0 + np.float32(flicker) * rng.standard_normal(shape[0]).astype(np.float32)
    return per_slice[:, None, None] * plane[None]


def _add_noise(signal, *, photons, read_noise, rng) -> np.ndarray:
    signal = np.clip(signal, 0.0, None)
    if photons > 0:
        signal = rng.poisson(signal * photons).astype(np.float32) / np.float32(photons)
    if read_noise > 0:
        signal += np.float32(read_noise) * rng.standard_normal(signal.shape, dtype=np.float32)
    return signal

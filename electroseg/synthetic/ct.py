"""X-ray CT image simulator: absorption contrast, 3-D PSF blur, cupping, rings, Gaussian noise.

CT of electrodes resolves pores and active material but not the carbon-binder domain (its
absorption is close to the pore's), so CT samples use two phases, [pore, am].
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from electroseg.synthetic._fields import check_labels_levels, child_rngs
from electroseg.synthetic.fibsem import SimulatedImage

logger = logging.getLogger(__name__)


def simulate_ct(
    labels: np.ndarray,
    *,
    voxel_size: Sequence[float],
    levels: Sequence[float] = (0.3, 0.7),
    blur_sigma_um: float = 0.12,
    cupping: float = 0.1,
    rings: float = 0.02,
    noise_sigma: float = 0.07,
    seed: int = 0,
) -> SimulatedImage:
    """Simulate a reconstructed X-ray CT volume of a labelled electrode.

    Parameters
    ----------
    labels : ndarray of uint8, shape (Z, Y, X)
        Phase indices (e.g. 0 pore, 1 am).
    voxel_size : sequence of 3 float
        µm per voxel (z, y, x).
    levels : sequence of float
        Attenuation grey level per label, fraction of full scale.
    blur_sigma_um : float
        Isotropic 3-D Gaussian PSF sigma (µm).
    cupping : float
        Beam-hardening cupping: the centre of each reconstructed slice is darker by this
        fraction than its edge. The rotation axis is the depth axis (Y), so slices are (Z, X).
    rings : float
        Amplitude of ring artefacts (random radial profile around the rotation axis).
    noise_sigma : float
        Gaussian noise std (fraction of full scale).
    seed : int
        Same seed, same bytes.

    Returns
    -------
    SimulatedImage
        uint8 image (Z, Y, X); shifts are all zero (no drift in CT).
    """
    labels, vs, levels_arr = check_labels_levels(labels, voxel_size, levels)
    rng_rings, rng_noise = child_rngs(seed, 2)
    signal = levels_arr[labels]
    if blur_sigma_um > 0:
        signal = ndimage.gaussian_filter(signal, [blur_sigma_um / v for v in vs])
    radius = _axis_distance(labels.shape)
    signal *= 1.0 - np.float32(cupping) * (1.0 - radius**2)
    if rings > 0:
        bins = np.linspace(0.0, 1.5, 400)
        profile = rng_rings.standard_normal(bins.size).astype(np.float32)
        signal += np.float32(rings) * np.interp(radius, bins, profile).astype(np.float32)
    if noise_sigma > 0:
        signal += np.float32(noise_sigma) * rng_noise.standard_normal(signal.shape, np.float32)
    image = np.round(np.clip(signal, 0.0, 1.0) * 255.0).astype(np.uint8)
    logger.debug("simulated CT volume %s", image.shape)
    return SimulatedImage(image, np.zeros((labels.shape[0], 2)))


def _axis_distance(shape) -> np.ndarray:
    """Normalised distance (Z, 1, X) from the rotation axis through the centre, along Y."""
    z = np.linspace(-1.0, 1.0, shape[0], dtype=np.float32)[:, None, None]
    x = np.linspace(-1.0, 1.0, shape[2], dtype=np.float32)[None, None, :]
    return np.sqrt(z**2 + x**2) / np.float32(np.sqrt(2.0))

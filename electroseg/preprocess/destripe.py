"""Curtaining removal: the combined wavelet-Fourier vertical-stripe filter.

Ion-beam milling leaves vertical grooves ("curtains") below hard or porous features of the
block face; in the image they are stripes running along Y. Reference: B. Münch, P. Trtik,
F. Marone, M. Stampanoni, "Stripe and ring artifact removal with combined wavelet-Fourier
filtering", Optics Express 17 (2009) 8567.
"""

from __future__ import annotations

import logging

import numpy as np
import pywt
from scipy import fft

from electroseg.errors import InputError
from electroseg.preprocess._common import as_float_image, check_positive, map_slices

logger = logging.getLogger(__name__)


def _damp_vertical(coefficients: np.ndarray, sigma: float) -> np.ndarray:
    """Suppress the Y-constant part of vertical-detail coefficients (Münch et al., eq. 2)."""
    # scipy.fft keeps float32 (complex64), numpy.fft would double the work in float64
    spectrum = fft.rfft(coefficients.astype(np.float32, copy=False), axis=0)
    frequency = np.arange(spectrum.shape[0], dtype=np.float32)
    damping = 1.0 - np.exp(-(frequency**2) / (2.0 * sigma**2))
    spectrum *= damping[:, np.newaxis]
    return fft.irfft(spectrum, n=coefficients.shape[0], axis=0)


def _destripe_slice(plane: np.ndarray, *, wavelet: str, level: int, sigma: float) -> np.ndarray:
    coefficients = pywt.wavedec2(plane, wavelet, level=level, mode="symmetric")
    filtered = [coefficients[0]]
    for horizontal, vertical, diagonal in coefficients[1:]:
        filtered.append((horizontal, _damp_vertical(vertical, sigma), diagonal))
    restored = pywt.waverec2(filtered, wavelet, mode="symmetric")
    return restored[: plane.shape[0], : plane.shape[1]]


def remove_curtaining(
    image: np.ndarray,
    *,
    wavelet: str = "db3",
    level: int = 3,
    sigma: float = 1.0,
) -> np.ndarray:
    """Remove vertical stripes (running along Y) from every slice.

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X)
        Greyscale image or stack.
    wavelet : str
        PyWavelets wavelet name (Münch et al. used long Daubechies wavelets; ``db3`` is faster).
    level : int
        Number of decomposition levels (capped by the slice size). Deeper levels remove wider
        stripes (a stripe ``w`` px wide needs ``2**level`` well above ``w``) but also remove
        more of the image's own Y-constant content, noticeably on small slices (< 512 px).
    sigma : float
        Width (in Fourier samples along Y) of the Gaussian notch around frequency zero.

    Returns
    -------
    ndarray, float32, same shape as ``image``

    Notes
    -----
    Each slice is decomposed with a 2-D discrete wavelet transform; the vertical-detail bands
    hold the stripes, which are constant along Y, so their Fourier transform along Y is damped
    by ``1 - exp(-k^2 / (2 sigma^2))`` before the inverse transforms.

    Examples
    --------
    >>> stripes = np.tile(np.where(np.arange(64) % 8 == 0, 10.0, 0.0), (64, 1))
    >>> cleaned = remove_curtaining(100.0 + stripes)
    >>> bool(np.ptp(cleaned.mean(axis=0)) < 0.2 * np.ptp(stripes.mean(axis=0)))
    True
    """
    image = as_float_image(image)
    if wavelet not in pywt.wavelist(kind="discrete"):
        raise InputError(f"wavelet: expected a discrete PyWavelets wavelet such as 'db3', got {wavelet!r}")
    if int(level) < 1:
        raise InputError(f"level: expected an integer >= 1, got {level!r}")
    check_positive(sigma, name="sigma")
    level = min(int(level), pywt.dwt_max_level(min(image.shape[-2:]), wavelet))
    result = map_slices(
        lambda plane: _destripe_slice(plane, wavelet=wavelet, level=max(level, 1), sigma=sigma), image
    )
    logger.info("remove_curtaining: wavelet %s, %d levels, sigma %.2f", wavelet, level, sigma)
    return result

"""Predicting at another scale: an image whose features are far larger than the training images'.

A network sees features in a window of fixed size in pixels. The shipped pretrained models were
trained on images whose feature size lies in a known range. An image whose features are larger
(SEM of large particles at high magnification) shows them uniform regions instead, and is
better predicted after being shrunk in-plane.

:func:`feature_length` measures an image's feature size: the first lag (pixels, along y or x)
at which its autocorrelation falls below 1/e. :func:`auto_factor` brings an image whose feature
size exceeds a model's recorded training size down to it, and leaves any other image alone.
Measured (``benchmarks/pretrained.py --only scale``, zero-shot shipped models): SegmentPy
0.326 -> 0.369 mean IoU, SAMBA 0.120 -> 0.424, 21 independent-physics stacks whose features lie
in the training range unchanged (0.719).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from electroseg.errors import InputError

__all__ = ["feature_length", "auto_factor", "check_scale", "scale_factor"]

logger = logging.getLogger(__name__)


def feature_length(image: Any, *, max_planes: int = 5) -> float:
    """Feature size in pixels: the first lag along y or x where the autocorrelation of the
    (0.5-99.5 percentile normalised, mean-free) image falls below 1/e; the median over up to
    ``max_planes`` evenly spaced Z planes of a volume (first channel of a multi-channel one).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> coarse = np.kron(rng.random((32, 32)), np.ones((8, 8)))   # blocks of 8 x 8 pixels
    >>> fine = np.kron(rng.random((64, 64)), np.ones((4, 4)))     # blocks of 4 x 4 pixels
    >>> feature_length(coarse) > feature_length(fine)
    True
    """
    if len(image.shape) == 2:
        planes = [image]
    else:  # only the planes measured are read (a lazy volume stays lazy)
        planes = [image[z] for z in np.linspace(0, image.shape[0] - 1, min(max_planes, image.shape[0])).astype(int)]
    return float(np.median([_plane_length(p) for p in planes]))


def _plane_length(plane: np.ndarray) -> int:
    a = np.asarray(plane, np.float64)
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return 1
    lo, hi = np.percentile(finite, [0.5, 99.5])
    a = np.clip((np.nan_to_num(a, nan=lo) - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    a -= a.mean()
    spectrum = np.fft.rfft2(a, s=(2 * a.shape[0], 2 * a.shape[1]))
    auto = np.fft.irfft2(np.abs(spectrum) ** 2)[: a.shape[0], : a.shape[1]]
    if auto[0, 0] <= 0:
        return 1
    auto /= auto[0, 0]
    for lag in range(1, max(2, min(a.shape) // 2)):
        if min(auto[lag, 0], auto[0, lag]) < np.exp(-1):
            return lag
    return max(1, min(a.shape) // 2)


def auto_factor(length: float, reference: float | None) -> float:
    """In-plane resampling factor: ``reference / length`` when the image's feature size
    ``length`` exceeds the model's ``reference`` (the largest usual feature size of its training
    images), else 1; 1 when the model records none.

    >>> auto_factor(41.0, 16.5), auto_factor(12.0, 16.5), auto_factor(41.0, None)
    (0.4024390243902439, 1.0, 1.0)
    """
    if reference is None or length <= reference:
        return 1.0
    return float(reference) / float(length)


def check_scale(scale: Any) -> float | str:
    """``"auto"`` or a factor in (0, 1]; one clear error otherwise."""
    if isinstance(scale, str) and scale.strip().lower() == "auto":
        return "auto"
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise InputError(f"scale: expected auto or a factor in (0, 1], got {scale!r}") from None
    if not 0.0 < value <= 1.0:
        raise InputError(f"scale: expected auto or a factor in (0, 1], got {scale!r}")
    return value


def scale_factor(model: Any, image: Any, scale: Any) -> float:
    """The in-plane factor ``predict_volume(model, image, scale=scale)`` predicts at: the number
    itself, or for ``"auto"`` :func:`auto_factor` of the image's feature size (first channel)
    against ``model.feature_length`` (1 when the model records none)."""
    from electroseg.io import Volume

    scale = check_scale(scale)
    if scale != "auto":
        return float(scale)
    reference = getattr(model, "feature_length", None)
    if reference is None:
        return 1.0
    if isinstance(image, Volume):
        data, multi = image.data, image.is_multichannel
    else:
        data, multi = image, len(model.spec.channels) > 1
    length = feature_length(data[0] if multi else data)
    factor = auto_factor(length, reference)
    if factor != 1.0:
        logger.info("scale=auto: features of %.0f px against the model's %.1f: predicting at %.3f of the size",
                    length, reference, factor)
    return factor

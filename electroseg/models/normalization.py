"""Intensity normalisation and 2.5D slice stacking shared by training and inference."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from electroseg.errors import InputError

__all__ = ["normalize_intensity", "stack_context", "NORMALIZATION_METHODS", "choose_bounds", "same_units",
           "reference_bounds", "check_normalization", "storage", "CONSISTENT_SPREAD"]

#: ``auto`` (the default of new models): the training data's bounds when an input is in the
#: training units (:func:`same_units`), else the input's own percentiles. ``dataset``: always
#: the training data's bounds. ``percentile`` / ``minmax``: the input's own bounds (models of
#: electroseg < 0.2). ``none``: cast only.
NORMALIZATION_METHODS = ("auto", "dataset", "percentile", "minmax", "none")
_REFERENCE_METHODS = ("auto", "dataset")
_MAX_SAMPLES = 4_000_000


def _sample(array: np.ndarray) -> np.ndarray:
    flat = np.asarray(array).reshape(-1)
    step = max(1, flat.size // _MAX_SAMPLES)
    sample = flat[::step].astype(np.float64)
    return sample[np.isfinite(sample)]


def check_normalization(normalization: Mapping[str, Any], *, where: str = "normalization") -> tuple[str, float, float]:
    """``(method, lower, upper)`` of a normalisation dict; InputError naming ``where`` if invalid."""
    method = normalization.get("method", "percentile")
    unknown = set(normalization) - {"method", "lower", "upper", "bounds", "storage"}
    if method not in NORMALIZATION_METHODS or unknown:
        raise InputError(
            f"{where}: expected method in {NORMALIZATION_METHODS} with optional lower/upper/bounds, "
            f"got {dict(normalization)}"
        )
    lower, upper = float(normalization.get("lower", 0.5)), float(normalization.get("upper", 99.5))
    if method != "minmax" and not 0 <= lower < upper <= 100:
        raise InputError(f"{where}: expected 0 <= lower < upper <= 100, got {lower}, {upper}")
    bounds = normalization.get("bounds")
    if bounds is not None and (not isinstance(bounds, (list, tuple))
                               or any(len(b) != 2 or not float(b[0]) <= float(b[1]) for b in bounds)):
        raise InputError(f"{where}: bounds must be one [lo, hi] pair per channel, got {bounds}")
    return method, lower, upper


def _own_bounds(sample: np.ndarray, method: str, lower: float, upper: float) -> tuple[float, float]:
    if sample.size == 0:
        return 0.0, 0.0
    if method == "minmax":
        return float(sample.min()), float(sample.max())
    lo, hi = np.percentile(sample, [lower, upper])
    return float(lo), float(hi)


def storage(dtype: Any) -> str:
    """How a channel's values are stored, for :func:`same_units`: ``"float"`` or ``"int<bits>"``.

    >>> storage(np.uint16), storage(np.float64)
    ('int16', 'float')
    """
    dtype = np.dtype(dtype)
    return "float" if dtype.kind in "fc" else f"int{8 * dtype.itemsize}"


def same_units(own: tuple[float, float], reference: tuple[float, float], *, own_storage: str | None = None,
               reference_storage: str | None = None) -> bool:
    """Whether an input whose percentile window is ``own`` is in the units of ``reference``.

    True when both are stored alike (floats, or integers of the same width; not checked when
    either is None), ``own`` lies inside ``reference`` widened by a quarter of its width on
    each side, and ``own`` is at most 1.5 times as wide. A crop, or another scan from the same
    instrument and settings, passes (its phases sit where the training data's did, in whatever
    proportion, so its window is narrower or shifted inside); the same image stored in other
    units (8-bit against 16-bit counts, floats normalised to [0, 1] against raw counts, an
    affine change of units that more than halves or doubles the contrast) does not.

    Examples
    --------
    >>> same_units((77.0, 255.0), (38.0, 255.0))        # a crop of an 8-bit SEM image
    True
    >>> same_units((1200.0, 52000.0), (-0.35, 2.85))     # the same slice as 16-bit counts
    False
    >>> same_units((0.1, 0.9), (0.0, 1.0), own_storage="int16", reference_storage="float")
    False
    """
    if own_storage is not None and reference_storage is not None and own_storage != reference_storage:
        return False
    lo, hi = own
    ref_lo, ref_hi = reference
    width = ref_hi - ref_lo
    if width <= 0:
        return lo == ref_lo and hi == ref_hi
    return ref_lo - width / 4 <= lo and hi <= ref_hi + width / 4 and hi - lo <= 1.5 * width


def choose_bounds(sample: np.ndarray, normalization: Mapping[str, Any], channel: int = 0,
                  dtype: Any = None) -> tuple[float | None, float | None, str]:
    """``(lo, hi, route)`` for one channel whose (finite, float64) samples are ``sample``.

    ``route`` says which rule gave the bounds: ``"none"``, ``"own"`` (the input's percentiles
    or min/max) or ``"dataset"`` (the training data's bounds stored in ``bounds``).
    ``auto`` takes the training bounds only where :func:`same_units` holds (``dtype``, the
    input's stored type, is compared with the training data's ``storage``); ``auto`` and
    ``dataset`` without stored bounds (before training has measured them) use the input's own.
    """
    method, lower, upper = check_normalization(normalization)
    if method == "none":
        return None, None, "none"
    own = _own_bounds(sample, "minmax" if method == "minmax" else "percentile", lower, upper)
    stored = normalization.get("bounds")
    if method in _REFERENCE_METHODS and stored is not None:
        if channel >= len(stored):
            raise InputError(f"normalization: bounds for {len(stored)} channel(s), asked for channel {channel}")
        reference = (float(stored[channel][0]), float(stored[channel][1]))
        kinds = normalization.get("storage")
        alike = same_units(own, reference, own_storage=None if dtype is None else storage(dtype),
                           reference_storage=None if not kinds else kinds[min(channel, len(kinds) - 1)])
        if method == "dataset" or sample.size == 0 or alike:
            return reference[0], reference[1], "dataset"
    return own[0], own[1], "own"


#: Largest disagreement (share of the pooled window) between the training volumes' own windows
#: for which ``auto`` treats them as being in fixed units (see :func:`reference_bounds`).
CONSISTENT_SPREAD = 0.05


def reference_bounds(channels: Sequence[Sequence[np.ndarray]], normalization: Mapping[str, Any]
                     ) -> tuple[list[list[float]], float]:
    """Training bounds per channel, and how far the volumes' own windows stray from them.

    ``channels[c]`` holds channel c of every training volume; each volume contributes at most
    4 M evenly strided samples, weighted equally per voxel up to that cap. The bounds are the
    percentiles of the pooled samples. The spread is the largest distance of a volume's own
    window ends from the pooled bounds, as a share of the pooled width, over all volumes and
    channels (0 for a single volume): small when the training images share their units (one
    scan, or scans from one instrument with the same settings), large when each was brought to
    its own contrast.
    """
    _, lower, upper = check_normalization(normalization)
    bounds, spread = [], 0.0
    for arrays in channels:
        samples = [_sample(a) for a in arrays]
        pooled = np.concatenate(samples) if samples else np.zeros(0)
        lo, hi = _own_bounds(pooled, "percentile", lower, upper)
        bounds.append([lo, hi])
        if len(samples) < 2 or hi <= lo:
            continue
        for sample in samples:
            own_lo, own_hi = _own_bounds(sample, "percentile", lower, upper)
            spread = max(spread, abs(own_lo - lo) / (hi - lo), abs(own_hi - hi) / (hi - lo))
    return bounds, spread


def normalize_intensity(array: np.ndarray, normalization: Mapping[str, Any], channel: int = 0) -> np.ndarray:
    """Map one channel of an image or volume to [0, 1] as float32.

    Parameters
    ----------
    array : ndarray, any shape
        One detector channel (apply per channel for multi-channel data).
    normalization : mapping
        ``{"method": "auto", "lower": 0.5, "upper": 99.5, "bounds": [[lo, hi], ...]}``
        (the training data's percentile window per channel, used where the input is in the
        training units, see :func:`choose_bounds`), ``{"method": "dataset", ...}`` (always
        the stored window), ``{"method": "percentile", "lower": 0.5, "upper": 99.5}``
        (percentiles of the whole array), ``{"method": "minmax"}`` or ``{"method": "none"}``
        (cast only).
    channel : int
        Which entry of ``bounds`` applies.

    Returns
    -------
    ndarray, float32, same shape

    Notes
    -----
    ``(x - lo) / (hi - lo)`` clipped to [0, 1]. Percentiles are taken on at most 4 M evenly
    strided samples. A constant array maps to 0.

    Examples
    --------
    >>> normalize_intensity(np.array([0, 5, 10]), {"method": "minmax"}).tolist()
    [0.0, 0.5, 1.0]
    >>> normalize_intensity(np.array([0, 5, 10]), {"method": "dataset", "bounds": [[0, 20]]}).tolist()
    [0.0, 0.25, 0.5]
    """
    dtype = np.asarray(array).dtype
    data = np.asarray(array, dtype=np.float32)
    lo, hi, _ = choose_bounds(_sample(data), normalization, channel, dtype)  # validates normalization
    if lo is None or hi is None:
        return data.copy()
    if hi <= lo:
        return np.zeros_like(data)
    out = (data - np.float32(lo)) / np.float32(hi - lo)
    return np.clip(out, 0.0, 1.0, out=out)


def stack_context(volume: np.ndarray, *, context_slices: int) -> np.ndarray:
    """Per-slice 2.5D input: each Z slice with its ±k neighbours as extra channels.

    Parameters
    ----------
    volume : ndarray, shape (C, Z, Y, X)
        Normalised detector channels.
    context_slices : int
        k >= 0.

    Returns
    -------
    ndarray, shape (Z, C * (2k + 1), Y, X)
        Channel ``c * (2k + 1) + (j + k)`` of output slice z is detector c at slice
        ``clip(z + j, 0, Z - 1)`` for j in -k..k (ends repeat the edge slice).

    Examples
    --------
    >>> v = np.arange(3, dtype=np.float32).reshape(1, 3, 1, 1)
    >>> stack_context(v, context_slices=1)[:, :, 0, 0].tolist()
    [[0.0, 0.0, 1.0], [0.0, 1.0, 2.0], [1.0, 2.0, 2.0]]
    """
    if volume.ndim != 4:
        raise InputError(f"stack_context: expected a (C, Z, Y, X) array, got shape {volume.shape}")
    if context_slices < 0:
        raise InputError(f"stack_context: context_slices must be >= 0, got {context_slices}")
    n_z = volume.shape[1]
    offsets = np.arange(-context_slices, context_slices + 1)
    index = np.clip(np.arange(n_z)[:, None] + offsets[None, :], 0, n_z - 1)  # (Z, 2k+1)
    stacked = volume[:, index]  # (C, Z, 2k+1, Y, X)
    stacked = np.moveaxis(stacked, 1, 0)  # (Z, C, 2k+1, Y, X)
    return np.ascontiguousarray(stacked.reshape(n_z, -1, *volume.shape[2:]))

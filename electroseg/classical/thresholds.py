"""Multi-level grey-value thresholds: multi-Otsu (global or per slice), volume-fraction
quantiles, or manual values, and the mapping of intensity classes onto phases."""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_multiotsu

from electroseg.errors import InputError

logger = logging.getLogger(__name__)

METHODS = ("multiotsu", "fractions", "manual")


def class_to_label(phases: Sequence[str], phase_order: Sequence[str]) -> np.ndarray:
    """Look-up table from intensity class (darkest = 0) to label (index into ``phases``).

    A phase may appear more than once in ``phase_order`` (e.g. Pt-infiltrated electrodes where
    unfilled voids are darkest and Pt-filled pores brightest: ``[pore, cbd, am, pore]``), but
    every phase must appear and nothing else may.

    Examples
    --------
    >>> class_to_label(("pore", "cbd", "am"), ["cbd", "am", "pore"]).tolist()
    [1, 2, 0]
    """
    phases, phase_order = list(phases), list(phase_order)
    unknown = [name for name in phase_order if name not in phases]
    missing = [name for name in phases if name not in phase_order]
    if unknown or missing or len(phase_order) < 2:
        raise InputError(
            f"phase_order: expected every phase of {phases} listed darkest to brightest, got "
            f"{phase_order}" + (f" (unknown: {unknown})" if unknown else "")
            + (f" (missing: {missing})" if missing else "")
        )
    return np.array([phases.index(name) for name in phase_order], dtype=np.uint8)


def sample_values(image: np.ndarray, *, max_values: int = 4_000_000) -> np.ndarray:
    """Strided sample (flattened, float32) of at most about ``max_values`` voxels."""
    flat = np.asarray(image).reshape(-1)
    return flat[:: max(1, flat.size // max_values)].astype(np.float32, copy=False)


def check_grey_levels(image: np.ndarray, classes: int, *, name: str = "image") -> None:
    """Raise `InputError` when ``image`` has fewer distinct grey values than ``classes``."""
    distinct = np.unique(sample_values(image, max_values=1_000_000)).size
    if distinct < classes:
        distinct = np.unique(np.asarray(image)).size
    if distinct < classes:
        raise InputError(
            f"{name}: expected at least {classes} distinct grey values to separate {classes} "
            f"intensity classes, got {distinct}"
        )


def multiotsu_thresholds(image: np.ndarray, *, classes: int, nbins: int = 256) -> np.ndarray:
    """Multi-Otsu thresholds (Liao et al. 2001) of a (sample of an) image, shape (classes - 1,).

    The histogram has ``nbins`` bins, or one bin per distinct value when there are fewer; each
    threshold is placed halfway between the last bin of the lower class and the next bin, so
    that exact step images are split exactly.
    """
    values = sample_values(image)
    distinct, counts = np.unique(values[:: max(1, values.size // 200_000)], return_counts=True)
    if distinct.size <= nbins:
        distinct, counts = np.unique(values, return_counts=True)
    if distinct.size <= nbins:
        centres = distinct.astype(np.float64)
    else:
        counts, edges = np.histogram(values, bins=nbins)
        centres = 0.5 * (edges[:-1] + edges[1:])
    cuts = threshold_multiotsu(hist=(counts, centres), classes=classes)
    position = np.searchsorted(centres, cuts)
    upper = centres[np.minimum(position + 1, centres.size - 1)]
    return 0.5 * (cuts + upper)


def fraction_thresholds(
    image: np.ndarray, *, fractions: Sequence[float] | Mapping[str, float], phase_order: Sequence[str]
) -> np.ndarray:
    """Thresholds such that the intensity classes take the expected volume fractions.

    ``fractions`` lists one fraction per intensity class (darkest first, like ``phase_order``),
    or maps phase names to fractions when no phase repeats; they are normalised to sum to 1.
    Threshold ``i`` is the quantile at the cumulative fraction of classes ``0..i``.
    """
    if isinstance(fractions, Mapping):
        if set(fractions) != set(phase_order) or len(set(phase_order)) != len(phase_order):
            raise InputError(
                f"fractions: expected one value per phase of phase_order {list(phase_order)}, "
                f"got keys {sorted(fractions)}"
            )
        fractions = [fractions[name] for name in phase_order]
    values = np.asarray(fractions, dtype=float)
    if values.shape != (len(phase_order),) or np.any(values < 0) or values.sum() <= 0:
        raise InputError(
            f"fractions: expected {len(phase_order)} non-negative values (one per class of "
            f"phase_order {list(phase_order)}), got {list(np.ravel(values))}"
        )
    cumulative = np.cumsum(values / values.sum())[:-1]
    return np.quantile(sample_values(image), cumulative).astype(np.float64)


def check_manual_thresholds(thresholds: Sequence[float] | None, *, classes: int) -> np.ndarray:
    """Validate manual thresholds: ``classes - 1`` finite, strictly increasing values."""
    values = np.asarray([] if thresholds is None else thresholds, dtype=float)
    if values.shape != (classes - 1,) or not np.all(np.isfinite(values)):
        raise InputError(
            f"thresholds: expected {classes - 1} finite values for {classes} intensity classes, "
            f"got {None if thresholds is None else list(np.ravel(values))}"
        )
    if np.any(np.diff(values) <= 0):
        raise InputError(f"thresholds: expected strictly increasing values, got {values.tolist()}")
    return values


def per_slice_thresholds(image: np.ndarray, *, classes: int, z_window: int = 9) -> np.ndarray:
    """Multi-Otsu thresholds per slice, smoothed along Z by a running median.

    Returns
    -------
    ndarray, shape (Z, classes - 1)
    """
    raw = np.array([multiotsu_thresholds(plane, classes=classes) for plane in image])
    smooth = ndi.median_filter(raw, size=(max(1, int(z_window)), 1), mode="nearest")
    return np.sort(smooth, axis=1)


def apply_thresholds(image: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Intensity class of every voxel: number of thresholds below or equal to its value.

    ``thresholds`` is (K - 1,) for the whole image or (Z, K - 1) per slice of a stack.

    Examples
    --------
    >>> apply_thresholds(np.array([0.0, 1.0, 2.5, 9.0]), np.array([1.0, 3.0])).tolist()
    [0, 1, 1, 2]
    """
    image = np.asarray(image)
    thresholds = np.asarray(thresholds, dtype=np.float32)
    if thresholds.ndim == 1:
        out = np.empty(image.shape, np.uint8)
        stack = image.reshape((-1,) + image.shape[-2:]) if image.ndim >= 2 else image[None]
        flat_out = out.reshape(stack.shape)
        for k, plane in enumerate(stack):
            flat_out[k] = np.searchsorted(thresholds, plane, side="right")
        return out
    if thresholds.shape[0] != image.shape[0]:
        raise InputError(
            f"thresholds: expected one row per slice ({image.shape[0]}), got shape {thresholds.shape}"
        )
    return np.stack([apply_thresholds(plane, row) for plane, row in zip(image, thresholds)])

"""`segment_volume`: thresholds, gradient analysis and cleanup chained into labels + confidence."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from electroseg import DEFAULT_PHASES
from electroseg.classical.cleanup import CleanupOptions, clean_labels
from electroseg.classical.confidence import class_statistics, threshold_confidence
from electroseg.classical.gradient import (
    GradientOptions,
    ShineThroughEvidence,
    reassign_shine_through,
    reassign_transition_bands,
    shine_through_evidence,
)
from electroseg.classical.noise import smooth_in_plane, smoothing_sigma
from electroseg.classical.thresholds import (
    METHODS,
    apply_thresholds,
    check_grey_levels,
    check_manual_thresholds,
    class_to_label,
    fraction_thresholds,
    multiotsu_thresholds,
    per_slice_thresholds,
)
from electroseg.errors import InputError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Segmentation:
    """Result of `segment_volume`.

    Attributes
    ----------
    labels : ndarray of uint8, image shape
        Index into ``phases`` per voxel.
    confidence : ndarray of float32, image shape
        Per-voxel confidence in [0, 1] (see `threshold_confidence`), multiplied by
        ``band_confidence`` where gradient analysis or cleanup changed the label.
    thresholds : ndarray, shape (K - 1,) or (Z, K - 1)
        Grey-value thresholds between the K intensity classes (per slice when ``per_slice``).
    phases, phase_order : tuple of str
    method : str
    class_means : ndarray, shape (K,)
        Mean intensity of each intensity class (darkest first).
    reassigned_voxels, cleaned_voxels : int
        Voxels changed by gradient analysis and by cleanup.
    smoothing_sigma : float
        In-plane Gaussian width (pixels) applied before thresholding (0: none).
    separation : float or None
        Smallest contrast between adjacent class means in units of the noise, as measured for
        ``smooth="auto"`` (None otherwise).
    shine_through : ShineThroughEvidence or None
        What the stack showed of shine-through (None when the rule was not considered).
    seconds, cpu_seconds : dict of str to float
        Wall and CPU time of each stage (thresholds, classify, confidence, gradient, cleanup).
    """

    labels: np.ndarray
    confidence: np.ndarray
    thresholds: np.ndarray
    phases: tuple[str, ...]
    phase_order: tuple[str, ...]
    method: str
    class_means: np.ndarray
    reassigned_voxels: int = 0
    cleaned_voxels: int = 0
    smoothing_sigma: float = 0.0
    separation: float | None = None
    shine_through: ShineThroughEvidence | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record of everything but the arrays of image shape."""
        counts = np.bincount(self.labels.reshape(-1), minlength=len(self.phases))
        return {
            "method": self.method,
            "phases": list(self.phases),
            "phase_order": list(self.phase_order),
            "thresholds": np.asarray(self.thresholds).tolist(),
            "class_means": [None if np.isnan(m) else float(m) for m in self.class_means],
            "volume_fraction": {p: float(counts[i] / self.labels.size) for i, p in enumerate(self.phases)},
            "reassigned_voxels": int(self.reassigned_voxels),
            "cleaned_voxels": int(self.cleaned_voxels),
            "smoothing_sigma": round(float(self.smoothing_sigma), 4),
            "separation": None if self.separation is None or not np.isfinite(self.separation)
            else round(float(self.separation), 3),
            "shine_through": None if self.shine_through is None else self.shine_through.to_dict(),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }

    def as_table(self) -> pd.DataFrame:
        """One row per intensity class: phase, label, bounding thresholds, mean intensity."""
        thresholds = np.asarray(self.thresholds, dtype=float)
        if thresholds.ndim == 2:
            thresholds = thresholds.mean(axis=0)
        edges = np.concatenate([[-np.inf], thresholds, [np.inf]])
        return pd.DataFrame({
            "intensity_class": np.arange(len(self.phase_order)),
            "phase": list(self.phase_order),
            "label": [self.phases.index(p) for p in self.phase_order],
            "lower_threshold": edges[:-1],
            "upper_threshold": edges[1:],
            "mean_intensity": self.class_means,
        })


def _as_options(value: Any, kind: type, name: str) -> Any:
    if value is None or value is False:
        return None
    if isinstance(value, kind):
        return value
    if isinstance(value, Mapping):
        try:
            return kind(**dict(value))
        except TypeError as error:
            raise InputError(f"{name}: unexpected options {dict(value)!r}: {error}") from error
    raise InputError(f"{name}: expected a {kind.__name__}, a mapping of its options or None, got {value!r}")


def _check_image(image: Any) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim not in (2, 3) or not np.issubdtype(image.dtype, np.number):
        raise InputError(
            f"image: expected a numeric 2-D image (Y, X) or 3-D volume (Z, Y, X), "
            f"got shape {image.shape} and dtype {image.dtype}"
        )
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image.reshape(-1)[:: max(1, image.size // 1_000_000)]).all():
        raise InputError("image: expected finite grey values, found NaN or infinity")
    return image.astype(np.float32, copy=False)


def compute_thresholds(
    image: np.ndarray,
    *,
    phase_order: Sequence[str],
    method: str = "multiotsu",
    thresholds: Sequence[float] | None = None,
    fractions: Sequence[float] | Mapping[str, float] | None = None,
    per_slice: bool = False,
    z_window: int = 9,
) -> np.ndarray:
    """Thresholds between the ``len(phase_order)`` intensity classes by the chosen method.

    ``multiotsu``: multi-Otsu on the whole image, or per slice smoothed along Z (``per_slice``);
    ``fractions``: quantiles matching expected volume fractions; ``manual``: ``thresholds``.
    """
    classes = len(phase_order)
    if method not in METHODS:
        raise InputError(f"method: expected one of {METHODS}, got {method!r}")
    if method == "manual":
        return check_manual_thresholds(thresholds, classes=classes)
    if method == "fractions":
        if fractions is None:
            raise InputError("fractions: method 'fractions' needs expected volume fractions, got None")
        return fraction_thresholds(image, fractions=fractions, phase_order=phase_order)
    if per_slice and image.ndim == 3:
        return per_slice_thresholds(image, classes=classes, z_window=z_window)
    return multiotsu_thresholds(image, classes=classes)


def segment_volume(
    image: np.ndarray,
    *,
    phases: Sequence[str] = DEFAULT_PHASES,
    phase_order: Sequence[str] | None = None,
    method: str = "multiotsu",
    thresholds: Sequence[float] | None = None,
    fractions: Sequence[float] | Mapping[str, float] | None = None,
    per_slice: bool = False,
    z_window: int = 9,
    smooth: float | str | None = "auto",
    gradient: GradientOptions | Mapping[str, Any] | None = GradientOptions(),
    cleanup: CleanupOptions | Mapping[str, Any] | None = CleanupOptions(),
    band_confidence: float = 0.25,
) -> Segmentation:
    """Segment a greyscale image or volume into phases by thresholds and gradient analysis.

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X)
        Greyscale (preprocessed) image; cast once to float32.
    phases : sequence of str
        Phase names; label ``i`` is ``phases[i]``.
    phase_order : sequence of str, optional
        Phases from darkest to brightest (default ``phases``). Pt-infiltrated ("kintsugi")
        electrodes have the brightest pores: ``[cbd, am, pore]``. A phase may repeat.
    method : {"multiotsu", "fractions", "manual"}
    thresholds : sequence of float, optional
        Manual thresholds (``len(phase_order) - 1`` increasing values).
    fractions : sequence or mapping, optional
        Expected volume fractions for ``method="fractions"``.
    per_slice, z_window : bool, int
        Multi-Otsu per slice, thresholds smoothed by a running median of ``z_window`` slices.
    smooth : "auto", float or None
        In-plane Gaussian smoothing before thresholding. ``"auto"`` sizes it from the image's
        noise (`electroseg.classical.noise.smoothing_sigma`: none on clean images); a number is
        the width in pixels; None or 0 disables it.
    gradient : GradientOptions, mapping or None
        Shine-through removal along Z when the darkest class is the phase named "pore" and the
        stack shows it, and (opt-in, ``bands=True``) partial-volume band reassignment; None
        disables both.
    cleanup : CleanupOptions, mapping or None
        Small-island removal and hole filling; None disables it.
    band_confidence : float
        Factor applied to the confidence of voxels changed by gradient analysis or cleanup.

    Returns
    -------
    Segmentation

    Examples
    --------
    >>> steps = np.repeat([10.0, 50.0, 90.0], 4)[None, :].repeat(3, axis=0)
    >>> segment_volume(steps, gradient=None, cleanup=None).labels[0].tolist()
    [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    """
    image = _check_image(image)
    phases = tuple(phases)
    phase_order = tuple(phases if phase_order is None else phase_order)
    lookup = class_to_label(phases, phase_order)
    gradient = _as_options(gradient, GradientOptions, "gradient")
    cleanup = _as_options(cleanup, CleanupOptions, "cleanup")
    clock = _Clock()
    check_grey_levels(image, len(phase_order))
    options = dict(phase_order=phase_order, method=method, thresholds=thresholds,
                   fractions=fractions, per_slice=per_slice, z_window=z_window)
    cuts = compute_thresholds(image, **options)
    sigma, separation = _smoothing(image, cuts, smooth)
    if sigma > 0:
        image = smooth_in_plane(image, sigma)
        if method != "manual":
            cuts = compute_thresholds(image, **options)
        logger.info("segment_volume: in-plane Gaussian smoothing sigma %.2f px (separation %s)", sigma,
                    "n/a" if separation is None else f"{separation:.2f}")
    clock.lap("thresholds")
    classes = apply_thresholds(image, cuts)
    clock.lap("classify")
    means, spread = class_statistics(image, classes, len(phase_order))
    confidence = threshold_confidence(image, classes, cuts, spread)
    clock.lap("confidence")
    reassigned = cleaned = 0
    evidence = None
    if gradient is not None:
        if gradient.shine_through is not None and phases[lookup[0]] == "pore" and image.ndim == 3:
            evidence = (ShineThroughEvidence(0.0, 0.0, 0.0, direction=1) if gradient.shine_through_evidence is None
                        else shine_through_evidence(image, classes, class_means=means, min_step=gradient.shine_through,
                                                    min_excess=gradient.shine_through_evidence))
        classes, reassigned = _gradient_analysis(classes, image, confidence, means=means, options=gradient,
                                                 direction=0 if evidence is None else evidence.direction,
                                                 factor=band_confidence)
        clock.lap("gradient")
    labels = lookup[classes]
    del classes
    if cleanup is not None:
        labels, changed = clean_labels(labels, phases=phases, options=cleanup)
        confidence[changed] *= band_confidence
        cleaned = int(changed.sum())
        clock.lap("cleanup")
    logger.info("segment_volume: %s thresholds %s, phase order %s", method, np.round(cuts, 3).tolist(), list(phase_order))
    return Segmentation(
        labels=labels, confidence=confidence, thresholds=cuts, phases=phases, phase_order=phase_order,
        method=method, class_means=means, reassigned_voxels=reassigned, cleaned_voxels=cleaned,
        smoothing_sigma=sigma, separation=separation, shine_through=evidence,
        seconds=clock.seconds, cpu_seconds=clock.cpu_seconds,
    )


def _smoothing(image: np.ndarray, cuts: np.ndarray, smooth: float | str | None) -> tuple[float, float | None]:
    """(sigma, separation) for the ``smooth`` option of `segment_volume`."""
    if smooth is None or smooth is False:
        return 0.0, None
    if isinstance(smooth, str):
        if smooth != "auto":
            raise InputError(f"smooth: expected 'auto', a width in pixels >= 0 or None, got {smooth!r}")
        return smoothing_sigma(image, cuts)
    if isinstance(smooth, bool) or not isinstance(smooth, (int, float)) or not np.isfinite(smooth) or smooth < 0:
        raise InputError(f"smooth: expected 'auto', a width in pixels >= 0 or None, got {smooth!r}")
    return float(smooth), None


def _gradient_analysis(
    classes: np.ndarray, image: np.ndarray, confidence: np.ndarray, *, means: np.ndarray,
    options: GradientOptions, direction: int, factor: float,
) -> tuple[np.ndarray, int]:
    """Band reassignment (opt-in) and shine-through along ``direction`` (0: none); lowers
    ``confidence`` in place where labels moved."""
    band = np.zeros(classes.shape, bool)
    if options.bands:
        classes, band = reassign_transition_bands(classes, image, class_means=means, options=options)
    if direction:
        classes, ramp = reassign_shine_through(classes, image, class_means=means, min_step=options.shine_through,
                                               direction=direction)
        band |= ramp
    confidence[band] *= factor
    return classes, int(band.sum())


class _Clock:
    """Wall and CPU time of successive stages."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}
        self._last = (time.perf_counter(), time.process_time())

    def lap(self, name: str) -> None:
        now = (time.perf_counter(), time.process_time())
        self.seconds[name] = now[0] - self._last[0]
        self.cpu_seconds[name] = now[1] - self._last[1]
        self._last = now

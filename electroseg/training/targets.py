"""Training targets from several label sources: dense labels, sparse hand labels, pseudo-labels."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from scipy import ndimage

from electroseg.errors import InputError
from electroseg.io import atomic_output

__all__ = ["TrainingTarget", "PseudoLabels", "combine_label_sources", "boundary_band", "cached_pseudo_labels"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingTarget:
    """Per-voxel training target.

    Attributes
    ----------
    labels : ndarray, uint8, shape (Z, Y, X)
        Phase index per voxel; ``ignore_value`` where no source labels the voxel.
    weight : ndarray, float32, same shape
        Loss weight per voxel (0 where ignored).
    human : ndarray of bool, same shape, or None
        Where the label comes from a person (dense or hand labels) rather than the classical
        segmenter; None when unknown. Held-out validation is drawn from these voxels.
    """

    labels: np.ndarray
    weight: np.ndarray
    human: np.ndarray | None = None

    @property
    def labelled_fraction(self) -> float:
        """Share of voxels with a non-zero weight."""
        return float(np.count_nonzero(self.weight)) / max(self.weight.size, 1)


@dataclass(frozen=True)
class PseudoLabels:
    """Classical-segmenter labels (uint8) and per-voxel confidence (float32, [0, 1])."""

    labels: np.ndarray
    confidence: np.ndarray


def boundary_band(labels: np.ndarray, *, width: int) -> np.ndarray:
    """Voxels within ``width`` voxels (chessboard distance) of a different phase.

    Examples
    --------
    >>> boundary_band(np.array([[0, 0, 1, 1]]), width=1).tolist()
    [[False, True, True, False]]
    """
    if width <= 0:
        return np.zeros(labels.shape, bool)
    size = 2 * width + 1
    return ndimage.maximum_filter(labels, size=size) != ndimage.minimum_filter(labels, size=size)


def combine_label_sources(
    shape: Sequence[int],
    *,
    dense: np.ndarray | None = None,
    hand: np.ndarray | None = None,
    pseudo: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    weights: Mapping[str, float],
    min_confidence: float = 0.5,
    boundary_ignore: int = 1,
    ignore_value: int = 255,
) -> TrainingTarget:
    """Merge label sources; where several label a voxel the more trusted wins.

    Parameters
    ----------
    shape : tuple of int
        Spatial shape of the volume.
    dense, hand, pseudo : ndarray of uint8, optional
        Phase indices, ``ignore_value`` where unlabelled. Trust order: dense > hand > pseudo.
    confidence : ndarray of float, optional
        Pseudo-label confidence in [0, 1]; voxels below ``min_confidence`` are dropped.
    weights : mapping
        Loss weight per source: keys ``dense``, ``hand``, ``pseudo``.
    boundary_ignore : int
        Pseudo-labels within this many voxels of a phase boundary are dropped (partial-volume
        voxels, where the classical segmenter is least reliable).

    Returns
    -------
    TrainingTarget
    """
    labels = np.full(tuple(shape), ignore_value, np.uint8)
    weight = np.zeros(tuple(shape), np.float32)
    if pseudo is not None:
        keep = pseudo != ignore_value
        if confidence is not None:
            keep &= confidence >= min_confidence
        keep &= ~boundary_band(pseudo, width=boundary_ignore)
        labels[keep], weight[keep] = pseudo[keep], float(weights.get("pseudo", 1.0))
    human = np.zeros(tuple(shape), bool)
    for source, array in (("hand", hand), ("dense", dense)):
        if array is None:
            continue
        if array.shape != tuple(shape):
            raise InputError(f"{source} labels: expected shape {tuple(shape)} like the image, got {array.shape}")
        keep = array != ignore_value
        labels[keep], weight[keep] = array[keep], float(weights.get(source, 1.0))
        human |= keep
    return TrainingTarget(labels=labels, weight=weight, human=human)


def _cache_key(image: np.ndarray, options: Mapping[str, Any]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([list(image.shape), str(image.dtype), dict(options)], sort_keys=True,
                             default=str).encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()[:32]


def cached_pseudo_labels(
    image: np.ndarray, *, options: Mapping[str, Any], cache_dir: str | Path | None
) -> PseudoLabels:
    """Classical-segmenter labels and confidence for ``image``, computed once and cached.

    The cache file is ``cache_dir/pseudo_labels/<hash>.npz``, keyed by the image bytes and the
    segmenter ``options`` (keyword arguments of ``electroseg.classical.segment_volume``).
    """
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / "pseudo_labels" / f"{_cache_key(image, options)}.npz"
        if path.is_file():
            with np.load(path) as stored:
                logger.info("pseudo-labels from cache %s", path)
                return PseudoLabels(stored["labels"], stored["confidence"])
    try:
        from electroseg.classical import segment_volume
    except ImportError as err:
        raise InputError(f"pseudo_labels: true needs electroseg.classical.segment_volume ({err})") from None
    logger.info("computing pseudo-labels with the classical segmenter %s", dict(options))
    result = segment_volume(image, **dict(options))
    labels = np.asarray(result.labels, np.uint8)
    confidence = np.asarray(result.confidence, np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, labels=labels, confidence=confidence)
    return PseudoLabels(labels, confidence)

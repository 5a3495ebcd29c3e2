"""Load the volumes of a dataset split into normalised images and training targets."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from electroseg.errors import InputError
from electroseg.io import read_channels, read_labels
from electroseg.models import normalize_intensity
from electroseg.preprocess import preprocess_channels
from electroseg.training.dataset_config import DatasetConfig, VolumeEntry
from electroseg.training.targets import cached_pseudo_labels, combine_label_sources
from electroseg.training.sampling import TrainingVolume

__all__ = ["LabelOptions", "load_split", "load_image"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelOptions:
    """How label sources are combined (see :func:`combine_label_sources`)."""

    weights: Mapping[str, float]
    min_confidence: float = 0.5
    boundary_ignore: int = 1


def load_image(entry: VolumeEntry, dataset: DatasetConfig) -> tuple[np.ndarray, tuple[float, ...] | None]:
    """Raw image as (C, Z, Y, X) (a 2-D image becomes Z = 1) and its voxel size (z, y, x) or None."""
    volume = read_channels(dict(entry.images), voxel_size=dataset.voxel_size)
    data = np.asarray(volume.numpy())
    if len(entry.images) == 1:
        data = data[None]
    voxel_size = volume.voxel_size
    if data.ndim == 3:
        data = data[:, None]
        voxel_size = None if voxel_size is None else (float(min(voxel_size)), *voxel_size)
    return data, voxel_size


def _labels(path: Path | None, dataset: DatasetConfig, shape: tuple[int, ...]) -> np.ndarray | None:
    if path is None:
        return None
    labels = read_labels(path, phases=dataset.phases, label_values=dataset.label_values,
                         ignore_value=dataset.ignore_value).numpy()
    labels = labels.reshape(shape) if labels.size == int(np.prod(shape)) and labels.ndim == 2 else labels
    if labels.shape != shape:
        raise InputError(f"{path}: label shape {labels.shape} does not match the image shape {shape}")
    return labels


def _pseudo(raw: np.ndarray, dataset: DatasetConfig, cache_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    options: dict[str, Any] = dict(dataset.classical)
    channel = options.pop("channel", dataset.channels[0])
    if channel not in dataset.channels:
        raise InputError(f"{dataset.name}: classical.channel {channel!r} is not one of {list(dataset.channels)}")
    options.setdefault("phases", list(dataset.phases))
    image = raw[dataset.channels.index(channel)]
    image = image[0] if image.shape[0] == 1 else image
    pseudo = cached_pseudo_labels(image, options=options, cache_dir=cache_dir)
    return pseudo.labels.reshape(raw.shape[1:]), pseudo.confidence.reshape(raw.shape[1:])


def load_split(
    dataset: DatasetConfig, split: str, *, normalization: Mapping[str, Any], label_options: LabelOptions,
    use_pseudo: bool, cache_dir: Path | None = None,
) -> tuple[list[TrainingVolume], tuple[float, ...] | None, dict[str, Any]]:
    """Normalised volumes of one split with their targets, the voxel size of the first, and the
    normalisation used.

    Pseudo-labels are added only when ``use_pseudo`` (training split with ``pseudo_labels``).
    With method ``auto`` or ``dataset`` and no ``bounds`` key, the bounds are measured on this
    split's preprocessed images (the training split's, pooled per channel:
    :func:`electroseg.models.normalization.reference_bounds`) and returned in the
    normalisation dict, which the checkpoint stores and every later split and prediction uses.
    With ``auto``, when the volumes' own windows disagree (the spread of ``reference_bounds`` above
    ``CONSISTENT_SPREAD``: images each brought to their own contrast, as in SegmentPy's slices),
    ``bounds`` is None and every image is normalised by its own percentiles.
    """
    from electroseg.models.normalization import CONSISTENT_SPREAD, reference_bounds, storage

    raws, voxel_size = [], None
    for entry in dataset.split(split):
        raw, vs = load_image(entry, dataset)
        raws.append((entry, preprocess_channels(raw, dataset.preprocess, dataset.channels)))
        voxel_size = voxel_size or vs
    normalization = dict(normalization)
    if normalization.get("method") in ("auto", "dataset") and "bounds" not in normalization and raws:
        channels = [[raw[c] for _, raw in raws] for c in range(len(dataset.channels))]
        bounds, spread = reference_bounds(channels, normalization)
        if normalization["method"] == "auto" and spread > CONSISTENT_SPREAD:
            logger.info("%s split: the volumes' own intensity windows differ by up to %.1f %% of the pooled "
                        "window (more than %.0f %%): they are not in fixed units, so every image (in training "
                        "and prediction) is normalised by its own percentiles", split, 100 * spread,
                        100 * CONSISTENT_SPREAD)
            normalization["bounds"] = None
        else:
            normalization["bounds"] = bounds
            normalization["storage"] = [storage(raws[0][1][c].dtype) for c in range(len(dataset.channels))]
            logger.info("%s split: intensity window per channel (stored in the checkpoint) %s", split,
                        {c: [round(v, 4) for v in b] for c, b in zip(dataset.channels, bounds)})
    volumes = []
    for entry, raw in raws:
        image = np.stack([normalize_intensity(c, normalization, i) for i, c in enumerate(raw)])
        pseudo = _pseudo(raw, dataset, cache_dir) if use_pseudo else (None, None)
        target = combine_label_sources(
            raw.shape[1:], dense=_labels(entry.labels, dataset, raw.shape[1:]),
            hand=_labels(entry.hand_labels, dataset, raw.shape[1:]), pseudo=pseudo[0],
            confidence=pseudo[1], weights=label_options.weights,
            min_confidence=label_options.min_confidence, boundary_ignore=label_options.boundary_ignore,
        )
        logger.info("%s split: %s %s, %.1f %% of voxels labelled", split, entry.name, raw.shape,
                    100 * target.labelled_fraction)
        volumes.append(TrainingVolume(image, target, entry.name))
    return volumes, voxel_size, normalization

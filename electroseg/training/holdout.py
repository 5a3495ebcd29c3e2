"""Held-out validation labels when a dataset has no validation split.

Validation that scores training patches says nothing: sparse interior scribbles are learnt
within an epoch, so it reports a mean IoU of 1.0 while the model is wrong elsewhere. When a
dataset config has no ``split: val`` volume, :func:`hold_out_labels` sets part of the
person-made labels (dense or hand labels, not pseudo-labels) aside before training:

- **labelled slices** (a volume with labels on several Z slices, or several 2-D images):
  about ``fraction`` of them, at least one and at most all but one, evenly spread through
  the list (with three labelled slices, the middle one); when one volume is labelled on
  every slice of a run (dense labels), the last ``fraction`` of the run as one block. A
  held-out slice is dropped from the training target entirely (pseudo-labels included), so
  no loss term sees it.
- **one labelled slice or one 2-D image**: per phase, the labelled pixels beyond the
  ``1 - fraction`` quantile of their coordinate along the axis (Y or X) in which that
  phase's labels extend furthest: a strip at the far end of each phase's labelled regions,
  so every phase is both trained on and validated on. Phases with fewer than
  ``min_pixels`` labelled pixels stay in training only.

The training volumes keep their image (shared, not copied); the validation volumes carry only
the held-out labels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from electroseg.io.labels import UNLABELLED as IGNORE
from electroseg.training.targets import TrainingTarget
from electroseg.training.sampling import TrainingVolume

__all__ = ["HeldOut", "hold_out_labels", "labelled_units"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeldOut:
    """Training volumes without the held-out labels, validation volumes with only them."""

    train: list[TrainingVolume]
    val: list[TrainingVolume]
    held_out: list[dict] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)  # held-out voxels, one per input volume

    def describe(self) -> str:
        """One line naming what was held out, for the log."""
        parts = []
        for item in self.held_out:
            if "slice" in item:
                parts.append(f"{item['volume']} slice {item['slice']}")
            else:
                parts.append(f"{item['volume']} slice {item['region_of_slice']}: the far "
                             f"{item['fraction']:.0%} of each phase's labels along {item['axes']}")
        return "; ".join(parts) if parts else "nothing"


def _human(volume: TrainingVolume) -> np.ndarray:
    target = volume.target
    human = target.human if target.human is not None else np.zeros(target.labels.shape, bool)
    return human & (target.weight > 0)


def labelled_units(volumes: Sequence[TrainingVolume], *, use_pseudo: bool = False) -> list[tuple[int, int]]:
    """``(volume index, z)`` of every Z slice holding person-made labels (any label if ``use_pseudo``)."""
    units = []
    for i, volume in enumerate(volumes):
        mask = (volume.target.weight > 0) if use_pseudo else _human(volume)
        units += [(i, int(z)) for z in np.flatnonzero(mask.reshape(mask.shape[0], -1).any(1))]
    return units


def _spread(n: int, k: int) -> list[int]:
    """k of range(n), evenly spread (the middle one for k = 1)."""
    return sorted({min(n - 1, int(np.floor((j + 0.5) * n / k))) for j in range(k)})


def _choose(units: list[tuple[int, int]], k: int) -> list[int]:
    """Which k units to hold out: spread through the list, except that when every labelled
    slice is one run of consecutive slices of one volume (dense labels), the last k of them as
    one block, so that no held-out slice has a trained-on neighbour on both sides."""
    volumes = {i for i, _ in units}
    slices = [z for _, z in units]
    if len(volumes) == 1 and len(units) > 2 and slices == list(range(slices[0], slices[0] + len(slices))):
        return list(range(len(units) - k, len(units)))
    return _spread(len(units), k)


def _without(volume: TrainingVolume, drop: np.ndarray) -> TrainingVolume:
    labels, weight = volume.target.labels.copy(), volume.target.weight.copy()
    labels[drop], weight[drop] = IGNORE, 0
    human = None if volume.target.human is None else volume.target.human & ~drop
    return TrainingVolume(volume.image, TrainingTarget(labels, weight, human), volume.name)


def _only(volume: TrainingVolume, keep: np.ndarray) -> TrainingVolume:
    labels = np.where(keep, volume.target.labels, IGNORE).astype(np.uint8)
    return TrainingVolume(volume.image, TrainingTarget(labels, keep.astype(np.float32), keep.copy()),
                          f"{volume.name} (held out)")


def _region_split(volume: TrainingVolume, z: int, mask: np.ndarray, fraction: float,
                  min_pixels: int) -> tuple[np.ndarray, list[str]]:
    """Held-out pixels of slice ``z``: per phase, the far ``fraction`` along its longer axis."""
    held = np.zeros(volume.target.labels.shape, bool)
    labels, axes = volume.target.labels[z], []
    for phase in np.unique(labels[mask[z]]):
        ys, xs = np.nonzero(mask[z] & (labels == phase))
        if ys.size < min_pixels:
            continue
        along, name = (ys, "Y") if np.ptp(ys) >= np.ptp(xs) else (xs, "X")
        cut = np.quantile(along, 1.0 - fraction)
        far = along > cut
        if not far.any() or far.all():
            continue
        held[z, ys[far], xs[far]] = True
        axes.append(name)
    return held, axes


def hold_out_labels(volumes: Sequence[TrainingVolume], *, fraction: float = 0.2,
                    min_pixels: int = 50) -> HeldOut | None:
    """Split the person-made labels of ``volumes`` into training and held-out validation parts.

    Returns None when nothing can be held out (no labelled voxel at all). Without any
    person-made label, labelled slices of the pseudo-labels are held out instead (logged).
    """
    volumes = list(volumes)
    use_pseudo = not labelled_units(volumes)
    units = labelled_units(volumes, use_pseudo=use_pseudo)
    if use_pseudo and units:
        logger.warning("no hand or dense labels: validating on held-out slices of the pseudo-labels, "
                       "which measure agreement with the classical segmenter, not accuracy")
    if not units:
        return None
    masks = [(v.target.weight > 0) if use_pseudo else _human(v) for v in volumes]
    held = [np.zeros(v.target.labels.shape, bool) for v in volumes]
    described: list[dict] = []
    if len(units) >= 2:
        k = min(len(units) - 1, max(1, int(round(fraction * len(units)))))
        for index in _choose(units, k):
            i, z = units[index]
            held[i][z] = masks[i][z]
            described.append({"volume": volumes[i].name, "slice": z})
        drop = []
        for i, v in enumerate(volumes):
            slices = np.zeros(v.target.labels.shape, bool)
            slices[[z for (j, z) in units if j == i and held[i][z].any()]] = True
            drop.append(slices)
    else:
        i, z = units[0]
        held[i], axes = _region_split(volumes[i], z, masks[i], fraction, min_pixels)
        if not held[i].any():
            return None
        described.append({"volume": volumes[i].name, "region_of_slice": z, "fraction": fraction,
                          "axes": "/".join(axes)})
        drop = held
    train = [_without(v, d) if d.any() else v for v, d in zip(volumes, drop)]
    val = [_only(v, h) for v, h in zip(volumes, held) if h.any()]
    return HeldOut(train=train, val=val, held_out=described, masks=held)

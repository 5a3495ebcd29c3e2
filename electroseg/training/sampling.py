"""Class-balanced patch sampling from in-memory training volumes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from electroseg.errors import InputError
from electroseg.training.targets import TrainingTarget

__all__ = ["TrainingVolume", "PatchDataset", "FixedPatches", "extract_patch"]

logger = logging.getLogger(__name__)
_MAX_CANDIDATES = 200_000


@dataclass(frozen=True)
class TrainingVolume:
    """A normalised image (C, Z, Y, X) float32 with its training target (Z, Y, X)."""

    image: np.ndarray
    target: TrainingTarget
    name: str = "volume"

    def __post_init__(self) -> None:
        if self.image.ndim != 4 or self.image.shape[1:] != self.target.labels.shape:
            raise InputError(
                f"{self.name}: image (C, Z, Y, X) {self.image.shape} and labels "
                f"{self.target.labels.shape} do not match"
            )


def _pad_to(volume: TrainingVolume, size: Sequence[int], ignore_value: int) -> TrainingVolume:
    """Pad spatial axes to at least ``size`` (edge values; padded voxels unlabelled)."""
    pads = [(0, max(0, s - n)) for s, n in zip(size, volume.target.labels.shape)]
    if not any(p[1] for p in pads):
        return volume
    image = np.pad(volume.image, [(0, 0), *pads], mode="edge")
    labels = np.pad(volume.target.labels, pads, constant_values=ignore_value)
    weight = np.pad(volume.target.weight, pads, constant_values=0)
    human = None if volume.target.human is None else np.pad(volume.target.human, pads, constant_values=False)
    return TrainingVolume(image, TrainingTarget(labels, weight, human), volume.name)


def extract_patch(
    volume: TrainingVolume, center: Sequence[int], *, patch_size: Sequence[int], context_slices: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop ``(image, labels, weight)`` around ``center`` (z, y, x), shifted to stay inside.

    3-D (``context_slices is None``): image (C, pz, py, px), labels/weight (pz, py, px).
    2.5-D: image (C * (2k + 1), py, px) from slices ``clip(z + j)``, j = -k..k (detector-major,
    as :func:`electroseg.models.stack_context`), labels/weight (py, px) of slice z.
    """
    shape = volume.target.labels.shape
    if context_slices is None:
        starts = [min(max(c - s // 2, 0), n - s) for c, s, n in zip(center, patch_size, shape)]
        box = tuple(slice(a, a + s) for a, s in zip(starts, patch_size))
        return volume.image[(slice(None), *box)], volume.target.labels[box], volume.target.weight[box]
    z = int(center[0])
    starts = [min(max(c - s // 2, 0), n - s) for c, s, n in zip(center[1:], patch_size, shape[1:])]
    ys, xs = (slice(a, a + s) for a, s in zip(starts, patch_size))
    zs = np.clip(np.arange(z - context_slices, z + context_slices + 1), 0, shape[0] - 1)
    image = volume.image[:, zs, ys, xs].reshape(-1, *patch_size)
    return image, volume.target.labels[z, ys, xs], volume.target.weight[z, ys, xs]


class PatchDataset(Dataset):
    """Random patches, a share of them centred on a labelled voxel of a random phase.

    Parameters
    ----------
    volumes : sequence of TrainingVolume
    patch_size : sequence of int
        (pz, py, px) for 3-D models, (py, px) for 2-D models.
    num_classes : int
    length : int
        Patches per epoch.
    context_slices : int or None
        None for 3-D models; k for 2-D / 2.5-D models.
    class_balance : float
        Probability that a patch is centred on a labelled voxel of a uniformly drawn phase
        (rare phases such as CBD are then seen as often as the others); otherwise the centre is
        a uniformly drawn labelled voxel.
    transform : callable, optional
        ``transform(dict(image=, label=, weight=)) -> dict`` (arrays with a leading channel).
    seed : int
    """

    def __init__(self, volumes: Sequence[TrainingVolume], *, patch_size: Sequence[int], num_classes: int,
                 length: int, context_slices: int | None = None, class_balance: float = 0.7,
                 transform: Callable | None = None, seed: int = 0, ignore_value: int = 255) -> None:
        min_size = tuple(patch_size) if context_slices is None else (1, *patch_size)
        self.volumes = [_pad_to(v, min_size, ignore_value) for v in volumes]
        self.patch_size, self.context_slices = tuple(patch_size), context_slices
        self.length, self.class_balance, self.transform = int(length), float(class_balance), transform
        self.rng = np.random.default_rng(seed)
        self.candidates = [self._candidates(v, num_classes) for v in self.volumes]
        counts = np.array([sum(c.size for c in cand) for cand in self.candidates], float)
        if counts.sum() == 0:
            raise InputError("training data: no labelled voxel in any volume (all unlabelled/ignored)")
        self.volume_p = counts / counts.sum()

    def _candidates(self, volume: TrainingVolume, num_classes: int) -> list[np.ndarray]:
        flat_labels = volume.target.labels.reshape(-1)
        labelled = volume.target.weight.reshape(-1) > 0
        out = []
        for phase in range(num_classes):
            index = np.flatnonzero(labelled & (flat_labels == phase))
            if index.size > _MAX_CANDIDATES:
                index = self.rng.choice(index, _MAX_CANDIDATES, replace=False)
            out.append(index)
        return out

    def __len__(self) -> int:
        return self.length

    def sample_center(self) -> tuple[int, tuple[int, ...]]:
        """Draw (volume index, centre voxel)."""
        v = int(self.rng.choice(len(self.volumes), p=self.volume_p))
        cand = [c for c in self.candidates[v] if c.size]
        if self.rng.random() < self.class_balance:
            pool = cand[self.rng.integers(len(cand))]
        else:
            pool = np.concatenate(cand)
        flat = int(pool[self.rng.integers(pool.size)])
        return v, tuple(int(i) for i in np.unravel_index(flat, self.volumes[v].target.labels.shape))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        v, center = self.sample_center()
        image, labels, weight = extract_patch(self.volumes[v], center, patch_size=self.patch_size,
                                              context_slices=self.context_slices)
        item = {"image": np.ascontiguousarray(image), "label": labels[None].copy(), "weight": weight[None].copy()}
        if self.transform is not None:
            item = self.transform(item)
        return _to_tensors(item)


def _to_tensors(item: dict) -> dict[str, torch.Tensor]:
    def plain(value: object) -> np.ndarray:
        value = value.as_tensor() if hasattr(value, "as_tensor") else value
        return np.ascontiguousarray(np.asarray(value))

    return {
        "image": torch.from_numpy(plain(item["image"]).astype(np.float32, copy=False)),
        "label": torch.from_numpy(plain(item["label"])[0].astype(np.int64)),
        "weight": torch.from_numpy(plain(item["weight"])[0].astype(np.float32, copy=False)),
    }


class FixedPatches(Dataset):
    """The same ``length`` patches every epoch (validation), drawn once from ``source``."""

    def __init__(self, source: PatchDataset) -> None:
        self.source = source
        self.centers = [source.sample_center() for _ in range(len(source))]

    def __len__(self) -> int:
        return len(self.centers)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        v, center = self.centers[index]
        image, labels, weight = extract_patch(self.source.volumes[v], center, patch_size=self.source.patch_size,
                                              context_slices=self.source.context_slices)
        return _to_tensors({"image": image, "label": labels[None], "weight": weight[None]})

"""LightningDataModule over in-memory training and validation volumes."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import lightning as L
from torch.utils.data import DataLoader

from electroseg.training.augment import build_augmentation
from electroseg.training.sampling import FixedPatches, PatchDataset, TrainingVolume

__all__ = ["ElectrodeDataModule"]


class ElectrodeDataModule(L.LightningDataModule):
    """Class-balanced random training patches and a fixed set of validation patches.

    Parameters
    ----------
    train_volumes, val_volumes : sequence of TrainingVolume
    patch_size : sequence of int
        (pz, py, px) for 3-D models, (py, px) for 2-D models.
    num_classes : int
    context_slices : int or None
        None for 3-D models, k for 2-D / 2.5-D models.
    batch_size, samples_per_epoch, val_patches, num_workers : int
    class_balance : float
    augment : mapping
        Options of :func:`electroseg.training.augment.build_augmentation`.
    seed : int
    """

    def __init__(self, train_volumes: Sequence[TrainingVolume], val_volumes: Sequence[TrainingVolume], *,
                 patch_size: Sequence[int], num_classes: int, context_slices: int | None = None,
                 batch_size: int = 2, samples_per_epoch: int = 200, val_patches: int = 16,
                 num_workers: int = 0, class_balance: float = 0.7, augment: Mapping[str, Any] | None = None,
                 seed: int = 0) -> None:
        super().__init__()
        self.train_volumes, self.val_volumes = list(train_volumes), list(val_volumes)
        self.patch_size, self.num_classes, self.context_slices = tuple(patch_size), num_classes, context_slices
        self.batch_size, self.samples_per_epoch, self.val_patches = batch_size, samples_per_epoch, val_patches
        self.num_workers, self.class_balance, self.seed = num_workers, class_balance, seed
        self.augment = dict(augment or {})
        self.train_set: PatchDataset | None = None
        self.val_set: FixedPatches | None = None

    def setup(self, stage: str | None = None) -> None:
        spatial_dims = 3 if self.context_slices is None else 2
        transform = build_augmentation(self.augment, spatial_dims=spatial_dims, seed=self.seed)
        common = dict(patch_size=self.patch_size, num_classes=self.num_classes,
                      context_slices=self.context_slices, class_balance=self.class_balance)
        if self.train_set is None:
            self.train_set = PatchDataset(self.train_volumes, length=self.samples_per_epoch,
                                          transform=transform, seed=self.seed, **common)
        if self.val_set is None:
            source = PatchDataset(self.val_volumes or self.train_volumes, length=self.val_patches,
                                  seed=self.seed + 1, **common)
            self.val_set = FixedPatches(source)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=False,
                          num_workers=self.num_workers, drop_last=True,
                          persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size, shuffle=False, num_workers=0)

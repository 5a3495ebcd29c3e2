"""LightningModule: a ready network, masked CE + Dice loss, per-phase IoU on validation."""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable

import lightning as L
import torch
from torch import nn

from electroseg.models import ModelSpec
from electroseg.training.losses import segmentation_loss

__all__ = ["SegmentationModule", "iou_from_confusion", "poly_schedule"]

# val/score = val/mean_iou - LOSS_TIE_BREAK * min(val loss, 1): what "best" and early stopping
# follow. Mean IoU decides; the held-out loss only orders epochs whose IoU differs by less than
# 0.005. Small held-out labels (a strip of a few labelled rectangles) reach IoU 1.0 within a few
# epochs, and without it the first of them was "best" however overconfident later epochs became
# or how much better they fitted the held-out labels.
LOSS_TIE_BREAK = 0.005

logger = logging.getLogger(__name__)


def poly_schedule(optimizer: torch.optim.Optimizer, *, total_iters: int, power: float = 0.9
                  ) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate ``lr0 * (1 - step / total_iters) ** power`` (nnU-Net's poly schedule).

    Closed form in the step, and ``total_iters`` is not stored in the scheduler state, so a run
    resumed with more epochs continues smoothly instead of keeping a finished schedule.
    """
    total = max(int(total_iters), 1)

    def factor(step: int) -> float:
        return max(1.0 - step / total, 0.0) ** power

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def iou_from_confusion(confusion: torch.Tensor) -> torch.Tensor:
    """Per-phase IoU ``TP / (TP + FP + FN)`` from a (K, K) confusion matrix [truth, prediction].

    NaN for a phase that is neither in the truth nor predicted.
    """
    confusion = confusion.double()
    tp = confusion.diagonal()
    union = confusion.sum(0) + confusion.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))


def _memory_format(net: nn.Module) -> torch.memory_format:
    spatial_dims = getattr(net, "spatial_dims", 3)
    return torch.channels_last_3d if spatial_dims == 3 else torch.channels_last


class SegmentationModule(L.LightningModule):
    """Train ``net`` (held as ``self.net``) on batches of ``image``, ``label``, ``weight``.

    Parameters
    ----------
    net : nn.Module
        Network built from ``spec`` (:func:`electroseg.models.build_model`).
    spec : ModelSpec
        Stored in every checkpoint as ``checkpoint["electroseg"]``.
    optimizer : callable
        ``optimizer(parameters) -> torch.optim.Optimizer`` (a Hydra ``_partial_``).
    scheduler : callable, optional
        ``scheduler(optimizer, total_iters=...)``, stepped every optimisation step.
    dice_weight : float
        Weight of the soft Dice term added to cross-entropy.
    channels_last : bool
        Keep the network and its inputs in channels-last memory layout: with bf16 autocast on
        a CPU with bf16 instructions this avoids layout reorders in oneDNN convolutions (about
        2-3x faster steps, measured in benchmarks/training.py). On a CPU without them (where
        ``trainer.precision: auto`` trains in float32) float32 steps were faster channels-last
        too: unet3d 0.446 against 0.536 s, multichannel2d 0.360 against 0.442 s (Ice Lake Xeon,
        2 threads).
    """

    def __init__(self, net: nn.Module, *, spec: ModelSpec,
                 optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
                 scheduler: Callable[..., Any] | None = None, dice_weight: float = 1.0,
                 channels_last: bool = False) -> None:
        super().__init__()
        self.net, self.spec = net, spec
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.dice_weight = float(dice_weight)
        self.memory_format = _memory_format(net) if channels_last else torch.contiguous_format
        num_classes = len(spec.phases)
        self.register_buffer("confusion", torch.zeros(num_classes, num_classes, dtype=torch.int64),
                             persistent=False)
        # summed validation loss x batch size and sample count of the epoch (val/score's tie-break)
        self.register_buffer("val_loss_sum", torch.zeros(2, dtype=torch.float64), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.contiguous(memory_format=self.memory_format))

    def on_fit_start(self) -> None:
        self.net.to(memory_format=self.memory_format)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self(batch["image"])
        loss = segmentation_loss(logits, batch["label"], batch["weight"], dice_weight=self.dice_weight)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["image"].shape[0])
        return loss

    def on_validation_epoch_start(self) -> None:
        self.confusion.zero_()
        self.val_loss_sum.zero_()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(batch["image"])
        loss = segmentation_loss(logits, batch["label"], batch["weight"], dice_weight=self.dice_weight)
        self.log("val/loss", loss, batch_size=batch["image"].shape[0])
        size = batch["image"].shape[0]  # weighted by batch size, as Lightning averages val/loss
        self.val_loss_sum += torch.stack([loss.detach().double() * size, loss.new_full((), size, dtype=torch.float64)])
        labelled = batch["weight"] > 0
        truth, pred = batch["label"][labelled], logits.argmax(1)[labelled]
        k = self.confusion.shape[0]
        self.confusion += torch.bincount(truth * k + pred, minlength=k * k).reshape(k, k)

    def on_validation_epoch_end(self) -> None:
        # under DDP each rank saw part of the validation set: sum the confusion matrices first
        several = self.trainer.world_size > 1
        confusion = self.trainer.strategy.reduce(self.confusion, reduce_op="sum") if several else self.confusion
        losses = self.trainer.strategy.reduce(self.val_loss_sum, reduce_op="sum") if several else self.val_loss_sum
        iou = iou_from_confusion(confusion)
        for phase, value in zip(self.spec.phases, iou.tolist()):
            if value == value:
                self.log(f"val/iou_{phase}", value)
        defined = iou[~torch.isnan(iou)]
        mean_iou = float(defined.mean()) if defined.numel() else 0.0
        self.log("val/mean_iou", mean_iou, prog_bar=True)
        loss = float(losses[0] / losses[1]) if float(losses[1]) > 0 else 0.0
        self.log("val/score", mean_iou - LOSS_TIE_BREAK * min(loss, 1.0))

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.net.parameters())
        if self.scheduler_factory is None:
            return optimizer
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        scheduler = self.scheduler_factory(optimizer, total_iters=total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["electroseg"] = self.spec.to_dict()

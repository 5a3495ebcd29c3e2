"""Segmentation losses that skip unlabelled voxels."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["masked_cross_entropy", "masked_soft_dice", "segmentation_loss"]


def masked_cross_entropy(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted mean cross-entropy over voxels with ``weight > 0``.

    Parameters
    ----------
    logits : tensor (N, K, *spatial)
    target : tensor (N, *spatial), int64
        Phase indices; any value (e.g. the ignore value 255) where ``weight == 0``.
    weight : tensor (N, *spatial), float
        Per-voxel loss weight.

    Notes
    -----
    ``sum(w * CE) / sum(w)``; 0 when no voxel has weight.
    """
    safe = torch.where(weight > 0, target, torch.zeros_like(target))
    ce = F.cross_entropy(logits.float(), safe, reduction="none")
    total = weight.sum()
    return (ce * weight).sum() / total.clamp_min(1e-8)


def masked_soft_dice(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, *, smooth: float = 1e-5
) -> torch.Tensor:
    """1 − mean over phases of the soft Dice, counted only where ``weight > 0``.

    Notes
    -----
    Per phase k, summed over the batch and labelled voxels:
    ``D_k = (2 Σ p_k y_k + s) / (Σ p_k + Σ y_k + s)`` with p the softmax probability and y the
    one-hot target (Milletari et al. 2016, batch Dice as in nnU-Net).
    """
    num_classes = logits.shape[1]
    mask = (weight > 0).unsqueeze(1).float()
    safe = torch.where(weight > 0, target, torch.zeros_like(target))
    onehot = F.one_hot(safe, num_classes).movedim(-1, 1).float() * mask
    probs = torch.softmax(logits.float(), dim=1) * mask
    dims = [0, *range(2, logits.ndim)]
    intersection = (probs * onehot).sum(dims)
    denominator = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * intersection + smooth) / (denominator + smooth)
    return 1 - dice.mean()


def segmentation_loss(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, *, dice_weight: float = 1.0
) -> torch.Tensor:
    """Cross-entropy + ``dice_weight`` × soft Dice, both ignoring unlabelled voxels."""
    loss = masked_cross_entropy(logits, target, weight)
    if dice_weight:
        loss = loss + dice_weight * masked_soft_dice(logits, target, weight)
    return loss

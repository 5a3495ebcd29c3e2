"""Segmentation networks built from MONAI's DynUNet blocks (:mod:`electroseg.models.blocks`): a planned
3D U-Net and a multi-channel 2D U-Net."""

from __future__ import annotations

import logging
from typing import Sequence

import torch
from torch import nn

from electroseg.errors import InputError
from electroseg.models.blocks import BasicBlock, OutBlock, UpBlock

__all__ = ["UNet3D", "MultiChannel2D", "count_parameters", "NORMS"]

logger = logging.getLogger(__name__)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


#: Normalisation layers by name. "batch" (the default of new models) is a fixed per-channel
#: affine map at inference, so a voxel's logits do not depend on which window it was predicted
#: in; "instance" (the models of electroseg < 0.2, kept to load their checkpoints) rescales
#: every window by its own statistics, so a window that is all one phase is stretched into
#: something else and labels change with tiling and cropping.
NORMS = {"batch": ("BATCH", {"affine": True}), "instance": ("INSTANCE", {"affine": True})}


class _UNetCore(nn.Module):
    """Encoder-decoder of the DynUNet blocks (:class:`~electroseg.models.blocks.BasicBlock`,
    :class:`~electroseg.models.blocks.UpBlock`: MONAI's ``UnetBasicBlock`` / ``UnetUpBlock``).

    Unlike DynUNet it allows two levels, which keeps test models tiny.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        channels: Sequence[int],
        strides: Sequence[Sequence[int]],
        kernel_sizes: Sequence[Sequence[int]],
        norm: str = "instance",
    ) -> None:
        super().__init__()
        _check_levels(spatial_dims, channels, strides, kernel_sizes)
        if norm not in NORMS:
            raise InputError(f"U-Net: norm must be one of {sorted(NORMS)}, got {norm!r}")
        norm_name = NORMS[norm]
        ins = [in_channels, *channels[:-1]]
        self.encoders = nn.ModuleList(
            BasicBlock(spatial_dims, c_in, c_out, kernel_size=k, stride=s, norm_name=norm_name)
            for c_in, c_out, k, s in zip(ins, channels, kernel_sizes, strides)
        )
        self.decoders = nn.ModuleList(
            UpBlock(
                spatial_dims, channels[i], channels[i - 1], kernel_size=kernel_sizes[i - 1],
                stride=strides[i], upsample_kernel_size=strides[i], norm_name=norm_name,
            )
            for i in range(len(channels) - 1, 0, -1)
        )
        self.head = OutBlock(spatial_dims, channels[0], out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
        x = skips.pop()
        for decoder in self.decoders:
            x = decoder(x, skips.pop())
        return self.head(x)


def _check_levels(spatial_dims, channels, strides, kernel_sizes) -> None:
    if not (len(channels) == len(strides) == len(kernel_sizes)) or len(channels) < 2:
        raise InputError(
            f"U-Net: channels, strides and kernel_sizes need one entry per level (>= 2 levels), "
            f"got {len(channels)}, {len(strides)} and {len(kernel_sizes)} entries"
        )
    for name, seq in (("strides", strides), ("kernel_sizes", kernel_sizes)):
        if any(len(s) != spatial_dims for s in seq):
            raise InputError(f"U-Net: every entry of {name} needs {spatial_dims} values, got {seq}")


class _PlannedUNet(nn.Module):
    spatial_dims = 3

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        channels: Sequence[int],
        strides: Sequence[Sequence[int]],
        kernel_sizes: Sequence[Sequence[int]],
        norm: str = "instance",
    ) -> None:
        super().__init__()
        self.norm = str(norm)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.strides = tuple(tuple(int(v) for v in s) for s in strides)
        self.net = _UNetCore(
            self.spatial_dims, self.in_channels, self.out_channels, channels, strides, kernel_sizes, self.norm
        )
        logger.info("%s: %d trainable parameters", type(self).__name__, count_parameters(self))

    @property
    def divisor(self) -> tuple[int, ...]:
        """Spatial input sizes must be multiples of this, per axis."""
        out = [1] * self.spatial_dims
        for s in self.strides:
            out = [o * v for o, v in zip(out, s)]
        return tuple(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, out_channels, *spatial) for input (N, in_channels, *spatial)."""
        return self.net(x)


class UNet3D(_PlannedUNet):
    """3D U-Net (MONAI DynUNet blocks) with per-level anisotropic kernels and strides.

    Parameters
    ----------
    in_channels : int
        Detector channels of the input volume.
    out_channels : int
        Number of phases.
    channels : sequence of int
        Feature channels per level, e.g. (32, 64, 128, 256).
    strides, kernel_sizes : sequence of (sz, sy, sx)
        From :func:`electroseg.models.plan_unet`; ``strides[0]`` is (1, 1, 1).
    norm : {"batch", "instance"}
        Normalisation layers (:data:`NORMS`). Checkpoints that do not name one are "instance".

    Notes
    -----
    Input (N, C, Z, Y, X) with Z, Y, X multiples of :attr:`divisor`; output logits
    (N, out_channels, Z, Y, X).
    """

    spatial_dims = 3


class MultiChannel2D(_PlannedUNet):
    """2D / 2.5D U-Net whose input channels are detector images (and neighbouring slices).

    Parameters
    ----------
    in_channels : int
        ``n_detectors * (2 * context_slices + 1)``; see :func:`electroseg.models.stack_context`
        for the channel order.
    out_channels, channels, strides, kernel_sizes
        As :class:`UNet3D`, with 2-entry strides and kernels (y, x).

    Notes
    -----
    Input (N, in_channels, Y, X); output logits (N, out_channels, Y, X). Multi-detector
    segmentation after Hein et al. (kintsugi FIB-SEM, CBS + TLD): the wall seen through a
    pore lies in the next slices along the milling direction, hence the context slices.
    """

    spatial_dims = 2

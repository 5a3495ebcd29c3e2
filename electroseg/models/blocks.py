"""The three U-Net blocks of MONAI's DynUNet, in plain PyTorch, so that inference starts without
importing MONAI.

``import monai`` imports every MONAI submodule (3.5-5 s on 2 CPU cores), and the networks
used nothing from it but ``UnetBasicBlock``, ``UnetUpBlock`` and ``UnetOutBlock`` (together
about forty lines). These classes are the same layers under the same names: a checkpoint's
state dict loads into either, a network built under one seed starts from the same weights
(modules are created in MONAI's order), and outputs are equal
(``tests/models/test_blocks.py`` compares them with MONAI's blocks). Training still uses
MONAI for its transforms.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

__all__ = ["BasicBlock", "UpBlock", "OutBlock"]

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_TRANSPOSED = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_NORM = {("BATCH", 2): nn.BatchNorm2d, ("BATCH", 3): nn.BatchNorm3d,
         ("INSTANCE", 2): nn.InstanceNorm2d, ("INSTANCE", 3): nn.InstanceNorm3d}


def _per_axis(value: Sequence[int] | int, dims: int) -> tuple[int, ...]:
    return tuple(int(v) for v in value) if isinstance(value, Sequence) else (int(value),) * dims


def _padding(kernel: tuple[int, ...], stride: tuple[int, ...]) -> tuple[int, ...]:
    """MONAI's ``get_padding``: ``(k - s + 1) / 2`` rounded down, per axis."""
    padding = [(k - s + 1) / 2 for k, s in zip(kernel, stride)]
    if min(padding) < 0:
        raise ValueError(f"kernel {kernel} smaller than stride {stride} minus one")
    return tuple(int(p) for p in padding)


def _conv(dims: int, c_in: int, c_out: int, kernel, stride, *, bias: bool,
          transposed: bool = False) -> nn.Sequential:
    """One convolution wrapped as MONAI's ``Convolution`` wraps it (child ``conv``)."""
    kernel, stride = _per_axis(kernel, dims), _per_axis(stride, dims)
    padding = _padding(kernel, stride)
    if transposed:
        out_padding = tuple(2 * p + s - k for p, s, k in zip(padding, stride, kernel))
        layer = _TRANSPOSED[dims](c_in, c_out, kernel, stride, padding, out_padding, bias=bias)
    else:
        layer = _CONV[dims](c_in, c_out, kernel, stride, padding, bias=bias)
    return nn.Sequential(OrderedDict(conv=layer))


def _norm(norm_name: tuple[str, dict], dims: int, channels: int) -> nn.Module:
    name, options = norm_name
    return _NORM[(name.upper(), dims)](channels, **options)


class BasicBlock(nn.Module):
    """conv - norm - leaky ReLU - conv - norm - leaky ReLU (MONAI ``UnetBasicBlock``; the first
    convolution carries the stride, neither has a bias)."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, *,
                 kernel_size: Sequence[int] | int, stride: Sequence[int] | int,
                 norm_name: tuple[str, dict]) -> None:
        super().__init__()
        self.conv1 = _conv(spatial_dims, in_channels, out_channels, kernel_size, stride, bias=False)
        self.conv2 = _conv(spatial_dims, out_channels, out_channels, kernel_size, 1, bias=False)
        self.lrelu = nn.LeakyReLU(negative_slope=0.01, inplace=True)
        self.norm1 = _norm(norm_name, spatial_dims, out_channels)
        self.norm2 = _norm(norm_name, spatial_dims, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lrelu(self.norm1(self.conv1(x)))
        return self.lrelu(self.norm2(self.conv2(x)))


class UpBlock(nn.Module):
    """Transposed convolution (kernel = stride, no bias), concatenation with the skip, then a
    :class:`BasicBlock` (MONAI ``UnetUpBlock``)."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, *,
                 kernel_size: Sequence[int] | int, stride: Sequence[int] | int,
                 upsample_kernel_size: Sequence[int] | int, norm_name: tuple[str, dict]) -> None:
        super().__init__()
        del stride  # as in MONAI: the upsampling stride is its kernel size
        self.transp_conv = _conv(spatial_dims, in_channels, out_channels, upsample_kernel_size,
                                 upsample_kernel_size, bias=False, transposed=True)
        self.conv_block = BasicBlock(spatial_dims, 2 * out_channels, out_channels,
                                     kernel_size=kernel_size, stride=1, norm_name=norm_name)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv_block(torch.cat((self.transp_conv(x), skip), dim=1))


class OutBlock(nn.Module):
    """1x1 convolution with a bias (MONAI ``UnetOutBlock``)."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = _conv(spatial_dims, in_channels, out_channels, 1, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)

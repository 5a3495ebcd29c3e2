"""Channels-last copy of a network for CPU inference, with an instance norm that stays channels-last.

oneDNN runs the narrow full-resolution convolutions of the default unet3d (8-16 channels,
(1, 3, 3) kernels, and the 1x1x1 head) about twice as fast on channels-last tensors
(benchmarks/inference.py). PyTorch's instance norm, however, reshapes its input to channels-first
(a copy in and a copy out per norm), and its channels-last batch-norm kernel is slow for so few
channels, which together cancelled the gain. :class:`ChannelsLastInstanceNorm` computes the same
normalisation on the channels-last memory directly: per (sample, channel) mean and variance
accumulated in float32, then the scale and shift as one batched matrix product with a diagonal
matrix (a broadcast multiply-add over 8 channels is 5x slower on CPU).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["ChannelsLastInstanceNorm", "channels_last_network", "memory_format_for", "network_ndim"]


def memory_format_for(ndim: int) -> torch.memory_format | None:
    """The channels-last memory format of an ``ndim``-dimensional (N, C, *spatial) tensor."""
    return {4: torch.channels_last, 5: torch.channels_last_3d}.get(ndim)


class ChannelsLastInstanceNorm(nn.Module):
    """Instance norm (biased variance, affine) computed on channels-last memory without copies.

    Equal to the :class:`torch.nn.InstanceNorm2d` / ``3d`` it replaces (``affine=True``,
    ``track_running_stats=False``) to float32 rounding: the variance is one pass,
    E[x^2] - E[x]^2 in float32, with a relative error of about (mean / std)^2 * 1e-7 (a shifted
    second pass cost 10 % of the forward pass), far below the bf16 rounding of the activations.
    The output keeps the input's dtype and channels-last layout. Inputs in any other layout go
    to :func:`torch.nn.functional.instance_norm`.
    """

    def __init__(self, norm: nn.modules.instancenorm._InstanceNorm) -> None:
        super().__init__()
        if not norm.affine or norm.track_running_stats:
            raise ValueError("ChannelsLastInstanceNorm replaces affine instance norms without "
                             "running statistics")
        self.weight, self.bias, self.eps = norm.weight, norm.bias, float(norm.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmt = memory_format_for(x.dim())
        if fmt is None or x.is_contiguous() or not x.is_contiguous(memory_format=fmt):
            return nn.functional.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)
        n, c = x.shape[:2]
        order = (0, *range(2, x.dim()), 1)  # (N, *spatial, C): the memory order, so a view
        rows = x.permute(order).reshape(n, -1, c)
        wide = rows.float()
        count = rows.shape[1]
        mean = wide.sum(1) / count
        var = ((wide * wide).sum(1) / count - mean * mean).clamp_min_(0)
        scale = self.weight.float() * torch.rsqrt(var + self.eps)
        shift = self.bias.float() - mean * scale
        out = torch.baddbmm(shift.unsqueeze(1).to(x.dtype), rows, torch.diag_embed(scale).to(x.dtype))
        back = (0, x.dim() - 1, *range(1, x.dim() - 1))
        return out.view(n, *x.shape[2:], c).permute(back)


def channels_last_network(network: nn.Module, *, copy_free_norm: bool = True) -> nn.Module:
    """``network`` run channels-last: a copy with its instance norms replaced (unless
    ``copy_free_norm`` is False), behind a wrapper that converts inputs to channels-last and
    outputs back to contiguous (channels-first) tensors.

    The original module is left as it is. Networks without 2-D or 3-D convolutions are returned
    unchanged. On CUDA, PyTorch's own instance norm is the faster one (H100, fp16 autocast).
    """
    fmt = memory_format_for(network_ndim(network))
    if fmt is None:
        return network
    network = copy.deepcopy(network)
    for module in list(network.modules()) if copy_free_norm else ():
        for name, child in list(module.named_children()):
            if (isinstance(child, (nn.InstanceNorm2d, nn.InstanceNorm3d)) and child.affine
                    and not child.track_running_stats):
                setattr(module, name, ChannelsLastInstanceNorm(child))
    return _ChannelsLast(network.to(memory_format=fmt), fmt).train(network.training)


class _ChannelsLast(nn.Module):
    def __init__(self, network: nn.Module, fmt: torch.memory_format) -> None:
        super().__init__()
        self.network, self.fmt = network, fmt

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x.contiguous(memory_format=self.fmt)).contiguous()


def network_ndim(network: nn.Module) -> int:
    """Tensor rank (N, C, *spatial) the network's first convolution takes: 4 or 5 (0 if none)."""
    for module in network.modules():
        if isinstance(module, nn.Conv3d):
            return 5
        if isinstance(module, nn.Conv2d):
            return 4
    return 0

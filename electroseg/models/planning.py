"""Plan U-Net kernel sizes and strides from voxel size and patch size (nnU-Net rules)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

from electroseg.errors import InputError

__all__ = ["UNetPlan", "plan_unet"]


@dataclass(frozen=True)
class UNetPlan:
    """Per-level convolution kernel sizes and strides of a U-Net.

    Attributes
    ----------
    kernel_sizes : tuple of tuple of int
        One kernel size per resolution level, per spatial axis. The last entry is the
        bottleneck.
    strides : tuple of tuple of int
        Stride entering each level; ``strides[0]`` is all ones (full resolution).
    """

    kernel_sizes: tuple[tuple[int, ...], ...]
    strides: tuple[tuple[int, ...], ...]

    @property
    def num_levels(self) -> int:
        """Number of resolution levels, including full resolution."""
        return len(self.strides)

    @property
    def divisor(self) -> tuple[int, ...]:
        """Input sizes must be multiples of this, per axis."""
        return tuple(math.prod(s[a] for s in self.strides) for a in range(len(self.strides[0])))

    def to_dict(self) -> dict:
        """Plain lists, JSON-able."""
        return {k: [list(v) for v in vals] for k, vals in asdict(self).items()}


def _validate(voxel_size: Sequence[float], patch_size: Sequence[int], max_levels: int) -> None:
    if len(voxel_size) != len(patch_size) or len(voxel_size) not in (2, 3):
        raise InputError(
            f"plan_unet: voxel_size and patch_size must both have 2 or 3 entries, got "
            f"voxel_size={tuple(voxel_size)} and patch_size={tuple(patch_size)}"
        )
    if any(float(v) <= 0 for v in voxel_size) or any(int(p) < 1 for p in patch_size):
        raise InputError(
            f"plan_unet: voxel_size and patch_size must be positive, got "
            f"voxel_size={tuple(voxel_size)} and patch_size={tuple(patch_size)}"
        )
    if max_levels < 1:
        raise InputError(f"plan_unet: max_levels must be >= 1, got {max_levels}")


def plan_unet(
    voxel_size: Sequence[float],
    patch_size: Sequence[int],
    *,
    max_levels: int = 5,
    min_size: int = 4,
) -> UNetPlan:
    """Plan kernel sizes and strides the way nnU-Net does.

    Parameters
    ----------
    voxel_size : sequence of float
        Spacing per spatial axis (any unit, only ratios matter), e.g. (z, y, x) in µm.
    patch_size : sequence of int
        Training patch size per spatial axis, in voxels.
    max_levels : int
        Most resolution levels (full resolution included), i.e. at most
        ``max_levels - 1`` downsamplings.
    min_size : int
        Smallest feature-map size per axis at the bottleneck.

    Returns
    -------
    UNetPlan

    Notes
    -----
    Isensee et al., nnU-Net (Nat. Methods 2021), ``get_pool_and_conv_props``: at each level an
    axis is downsampled (stride 2) only if its spacing is less than twice the smallest
    spacing and its size stays >= ``min_size``; a kernel is 3 along an axis once that axis'
    spacing is within a factor 2 of the smallest, else 1. With 50 nm slices on a 25 nm grid,
    level 0 uses kernel (1, 3, 3) and the first downsampling is in-plane only, (1, 2, 2).

    Examples
    --------
    >>> plan = plan_unet((0.05, 0.025, 0.025), (32, 128, 128), max_levels=3)
    >>> plan.kernel_sizes[0], plan.strides[1]
    ((1, 3, 3), (1, 2, 2))
    """
    _validate(voxel_size, patch_size, max_levels)
    dim = len(voxel_size)
    spacing = [float(v) for v in voxel_size]
    size = [int(p) for p in patch_size]
    kernel = [1] * dim
    kernels: list[tuple[int, ...]] = []
    strides: list[tuple[int, ...]] = [(1,) * dim]
    while len(strides) < max_levels:
        axes = [a for a in range(dim) if size[a] >= 2 * min_size]
        if not axes:
            break
        smallest = min(spacing[a] for a in axes)
        axes = [a for a in axes if spacing[a] / smallest < 2]
        if len(axes) == 1 and size[axes[0]] < 3 * min_size:
            break
        kernel = [3 if k == 3 or spacing[a] / min(spacing) < 2 else 1 for a, k in enumerate(kernel)]
        kernels.append(tuple(kernel))
        for a in axes:
            spacing[a] *= 2
            size[a] = math.ceil(size[a] / 2)
        strides.append(tuple(2 if a in axes else 1 for a in range(dim)))
    kernels.append((3,) * dim)
    return UNetPlan(kernel_sizes=tuple(kernels), strides=tuple(strides))

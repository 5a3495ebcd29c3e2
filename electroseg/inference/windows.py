"""Window grids, blending weights, device and precision selection for sliding-window inference."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "bf16", "fp16", "fp32")


def window_starts(size: int, patch: int, overlap: float) -> list[int]:
    """Start indices of windows of length ``patch`` covering ``range(size)``.

    Parameters
    ----------
    size : int
        Length of the axis (already padded so that ``size >= patch``).
    patch : int
        Window length along the axis.
    overlap : float
        Fraction of a window shared with its neighbour, ``0 <= overlap < 1``.

    Returns
    -------
    list of int
        Increasing starts; the last window ends exactly at ``size``.

    Notes
    -----
    Stride is ``max(1, int(patch * (1 - overlap)))`` as in MONAI's ``sliding_window_inference``.

    Examples
    --------
    >>> window_starts(10, 4, 0.5)
    [0, 2, 4, 6]
    >>> window_starts(4, 4, 0.25)
    [0]
    """
    if size < patch:
        raise ValueError(f"axis of length {size} is shorter than the patch {patch}; pad first")
    stride = max(1, int(patch * (1.0 - overlap)))
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def importance_map(patch_size: Sequence[int], *, device: torch.device) -> torch.Tensor:
    """Gaussian blending weights of one window, shape ``patch_size``, float32.

    MONAI's ``compute_importance_map`` in Gaussian mode, computed as it computes it (equal to
    it, tests/inference/test_windows.py; importing MONAI would cost inference 3.5-5 s of
    start-up): a product of 1-D Gaussians with sigma = 0.125 x the window, peak 1, clamped
    below at its smallest value (at least 1e-3) so that every voxel of a window gets a
    positive weight.
    """
    weights = None
    for i, size in enumerate(int(p) for p in patch_size):
        x = torch.arange(start=-(size - 1) / 2.0, end=(size - 1) / 2.0 + 1, dtype=torch.float, device=device)
        x = torch.exp(x ** 2 / (-2 * (size * 0.125) ** 2))
        weights = x if weights is None else weights.unsqueeze(-1) * x[(None,) * i]
    floor = max(torch.min(weights).item(), 1e-3)
    return torch.clamp_(weights, min=floor)  # float32 throughout, as built


def choose_device(device: str | torch.device | None = None) -> torch.device:
    """CUDA when present, else CPU; an explicit ``device`` wins.

    Raises ``ValueError`` naming the request when it names CUDA on a machine without it.
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    chosen = torch.device(device)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {str(device)!r} requested but CUDA is not available; "
                         "use device=cpu or device=auto")
    return chosen


def cpu_has_bf16() -> bool:
    """Whether this CPU has bfloat16 instructions (AVX512-BF16 or AMX) that torch's kernels use.

    Without them torch emulates bf16 arithmetic, and autocast costs more than it saves.
    """
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def check_precision(precision: str) -> None:
    """ValueError unless ``precision`` is one of :data:`PRECISIONS` (whatever the device)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``precision`` on ``device``; ``None`` means plain float32.

    ``auto`` is bf16 on a CPU with bfloat16 instructions (:func:`cpu_has_bf16`): there the
    default unet3d runs about 2.5-3x faster than in float32 (benchmarks/inference.py), and bf16
    keeps float32's range. On a CPU without them (e.g. an Ice Lake Xeon, AVX-512 but no
    AVX512-BF16) it is float32: 128x512x512, network alone, 2 threads, 29.6 s float32 against
    58.3 s bf16. On CUDA it is float32 (cuDNN's default TF32 convolutions): the default
    unet3d's narrow layers gain nothing from bf16 autocast there, whose casts cost more than
    they save. On an H100, 4116 16x96x96 windows, network alone: 1.1 s float32 against
    1.6-1.7 s bf16; a whole 256x1024x1024 volume, 32 windows per batch: 155 against 114 Mvoxel/s.
    """
    check_precision(precision)
    if precision == "fp32" or (precision == "auto" and (device.type == "cuda" or not cpu_has_bf16())):
        return None
    if precision == "fp16":
        if device.type != "cuda":
            raise ValueError("precision: fp16 needs a CUDA device; use bf16 or fp32 on CPU")
        return torch.float16
    return torch.bfloat16

"""Per-channel intensity normalisation of possibly lazy volumes, read one Z slab at a time.

Training maps each detector channel of the whole volume to [0, 1] with
:func:`electroseg.models.normalize_intensity`. Inference must use the same bounds without
loading a volume that may not fit in memory: :func:`intensity_bounds` draws exactly the samples
that ``normalize_intensity`` draws (every ``step``-th voxel of the flattened channel, ``step =
size // 4_000_000``) slice by slice, so the in-memory and the chunked path get identical bounds
and identical labels.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from electroseg.models.normalization import NORMALIZATION_METHODS, check_normalization, choose_bounds

logger = logging.getLogger(__name__)

#: Must equal the sample cap of ``electroseg.models.normalization`` (a test checks agreement).
MAX_SAMPLES = 4_000_000
METHODS = NORMALIZATION_METHODS


@dataclass(frozen=True)
class ChannelBounds:
    """Intensity window of one channel: ``(x - lo) / (hi - lo)`` clipped to [0, 1].

    ``lo = hi = None`` means cast only (method ``none``); ``hi <= lo`` maps everything to 0.
    """

    lo: float | None
    hi: float | None
    route: str = field(default="own", compare=False)

    def apply(self, array: np.ndarray) -> np.ndarray:
        """Normalised float32 copy of ``array`` (same formula as ``normalize_intensity``)."""
        data = np.asarray(array, dtype=np.float32)
        if self.lo is None or self.hi is None:
            return data.copy()
        if self.hi <= self.lo:
            return np.zeros_like(data)
        out = (data - np.float32(self.lo)) / np.float32(self.hi - self.lo)
        return np.clip(out, 0.0, 1.0, out=out)

    def apply_tensor(self, data):
        """:meth:`apply` on a float32 torch tensor, in place and on the tensor's device (the
        engine normalises raw slabs on a GPU). The same float32 arithmetic: the divisor is a
        tensor on that device, so CUDA divides rather than multiplying by a rounded reciprocal."""
        if self.lo is None or self.hi is None:
            return data
        if self.hi <= self.lo:
            return data.zero_()
        import torch

        scale = torch.tensor(np.float32(self.hi - self.lo), device=data.device)
        return data.sub_(float(np.float32(self.lo))).div_(scale).clamp_(0.0, 1.0)

    def to_dict(self) -> dict:
        return {"lo": self.lo, "hi": self.hi, "route": self.route}


def strided_sample(channel: Any) -> np.ndarray:
    """Every ``step``-th voxel of the flattened (Z, Y, X) ``channel``, read one slice at a time.

    ``step = max(1, size // MAX_SAMPLES)``. Returns the finite samples as float64. Works on
    NumPy arrays and lazy arrays (zarr, h5py, memory maps) that support ``channel[z]``.
    """
    shape = tuple(int(n) for n in channel.shape)
    size = int(np.prod(shape))
    step = max(1, size // MAX_SAMPLES)
    plane = int(np.prod(shape[1:]))
    parts = []
    for z in range(shape[0]):
        first = (-z * plane) % step  # first flat index >= z * plane that is a multiple of step
        if first < plane:
            values = np.asarray(channel[z]).reshape(-1)[first::step]
            parts.append(values.astype(np.float64))
    sample = np.concatenate(parts) if parts else np.zeros(0)
    return sample[np.isfinite(sample)]


def intensity_bounds(channel: Any, normalization: Mapping[str, Any], index: int = 0) -> ChannelBounds:
    """Bounds of one (Z, Y, X) channel for ``normalization`` (a checkpoint's dict).

    Parameters
    ----------
    channel : array-like, shape (Z, Y, X)
        One detector channel; NumPy or lazy.
    normalization : mapping
        The checkpoint's normalisation (see :func:`electroseg.models.normalize_intensity`).
    index : int
        The channel's position among the checkpoint's channels (which stored training
        bounds apply).

    Returns
    -------
    ChannelBounds
        From :func:`electroseg.models.normalization.choose_bounds` on :func:`strided_sample`,
        the same rule and samples as training; ``route`` says which rule gave them.
    """
    check_normalization(normalization, where="checkpoint normalization")
    if normalization.get("method", "percentile") == "none":
        return ChannelBounds(None, None, "none")
    lo, hi, route = choose_bounds(strided_sample(channel), normalization, index, getattr(channel, "dtype", None))
    return ChannelBounds(lo, hi, route)

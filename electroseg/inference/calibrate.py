"""Per-input calibration to known volume fractions at prediction time.

A model trained on one electrode meets others whose porosity is known from their mass loading,
thickness and densities. ``volume_fractions`` moves each input's decision boundary (one logit
offset per phase, :func:`electroseg.models.logit_bias.fit_logit_bias`) so that the input's
predicted fractions match, without changing which voxels are the most confidently of a phase.

The offsets are fitted on the blended logits of evenly spaced Z slabs of the input (all of it
when it holds at most ``max_voxels`` voxels), run through the same engine as the prediction,
with :class:`electroseg.models.logit_bias.LogitSample` (as training calibrates checkpoints),
and then applied to the whole prediction: on a large volume the achieved fractions differ from
the targets by the sampling error of the slabs (the batch's summary.csv reports them).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np
import torch

from electroseg.inference.engine import Sink, Source, WindowPlan, run_2d, run_3d
from electroseg.inference.inputs import Setup
from electroseg.models import LogitBias
from electroseg.models.logit_bias import LogitSample, check_volume_fractions

__all__ = ["calibrated_network", "fit_offsets"]

logger = logging.getLogger(__name__)

MAX_VOXELS = 1 << 24  # voxels whose logits are computed for the fit (16.8 M; at most
                      # models.logit_bias.MAX_FIT_VOXELS of them, a random subset, enter it)


def calibrated_network(network: torch.nn.Module, setup: Setup, source: Source, plan: WindowPlan,
                       fractions: Mapping[str, float], *, max_voxels: int = MAX_VOXELS, seed: int = 0,
                       where: str = "input") -> torch.nn.Module:
    """``network`` plus the logit offsets that give ``source`` the volume ``fractions``.

    ``network`` is the prepared (device, eval) network the engine runs for ``setup``; the
    returned module wraps it in :class:`~electroseg.models.LogitBias`. Deterministic for a
    given input.
    """
    bias = fit_offsets(network, setup, source, plan, fractions, max_voxels=max_voxels, seed=seed, where=where)
    return LogitBias(network, bias).to(plan.device).eval()


def fit_offsets(network: torch.nn.Module, setup: Setup, source: Source, plan: WindowPlan,
                fractions: Mapping[str, float], *, max_voxels: int = MAX_VOXELS, seed: int = 0,
                where: str = "input") -> np.ndarray:
    """The logit offsets (K,) float32 of :func:`calibrated_network`."""
    fractions = check_volume_fractions(dict(fractions), list(setup.phases), "volume_fractions")
    depth = plan.patch_size[0] * 2 if setup.kind == "unet3d" else 8
    plane = source.shape[2] * source.shape[3]
    slabs = _slabs(source.shape[1], depth, plane, max_voxels)
    sink = _SampleSink(LogitSample(sum(z1 - z0 for z0, z1 in slabs) * plane, seed=seed))
    for z0, z1 in slabs:
        sub = _ZRange(source, z0, z1)
        with torch.inference_mode():
            if setup.kind == "unet3d":
                run_3d(network, sub, sink, plan)
            else:
                run_2d(network, sub, sink, plan, context_slices=setup.context_slices)
    bias, before, _ = sink.sample.fit(setup.phases, fractions)
    logger.info("%s: logit offsets %s fitted for volume fractions %s (before: %s)", where,
                np.round(bias, 4).tolist(), fractions, dict(zip(setup.phases, np.round(before, 4).tolist())))
    return bias.astype(np.float32)


def _slabs(n_z: int, depth: int, plane: int, max_voxels: int) -> list[tuple[int, int]]:
    """Evenly spaced [z0, z1) slabs of ``depth`` slices holding about ``max_voxels`` voxels."""
    if n_z * plane <= max_voxels or n_z <= depth:
        return [(0, n_z)]
    count = max(1, min(n_z // depth, math.ceil(max_voxels / (depth * plane))))
    starts = np.linspace(0, n_z - depth, count).round().astype(int)
    return [(int(z), int(z) + depth) for z in starts]


class _ZRange:
    """Slices [z0, z1) of a :class:`Source` (what the engine reads of one); reads beyond them see
    the real neighbouring slices, so a slab's windows blend as they do in the whole volume."""

    def __init__(self, parent: Source, z0: int, z1: int) -> None:
        self.parent, self.z0 = parent, z0
        self.shape = (parent.shape[0], z1 - z0, *parent.shape[2:])

    def read(self, z0: int, z1: int) -> np.ndarray:
        return self.parent.read(self.z0 + z0, self.z0 + z1)

    def read_raw(self, z0: int, z1: int) -> np.ndarray:
        return self.parent.read_raw(self.z0 + z0, self.z0 + z1)

    def normalize_tensor(self, raw: torch.Tensor) -> torch.Tensor:
        return self.parent.normalize_tensor(raw)


class _SampleSink(Sink):
    """Hands the blended logits the engine emits to a :class:`~electroseg.models.logit_bias.LogitSample`."""

    def __init__(self, sample: LogitSample) -> None:
        self.sample = sample

    def emit(self, z0: int, logits: torch.Tensor) -> None:
        self.sample.add(logits.reshape(logits.shape[0], -1).float().cpu().numpy())

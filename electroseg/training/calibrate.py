"""Calibrate a trained model to known volume fractions with per-phase logit offsets.

Battery scientists often know a phase's volume fraction independently of the images: the
porosity from the electrode's mass loading, thickness and densities, or a target set by the
authors of a dataset. Sparse scribbles say which voxels are clearly pore or clearly particle,
but not where the partial-volume boundary between them lies, and that boundary decides the
fraction. Given ``volume_fractions`` in the dataset config, :func:`calibrate_checkpoint` moves
the decision boundary (not the ranking of voxels) so that the predicted fractions of the
training volumes match: it fits one offset per phase that is added to the logits before the
argmax, and stores it in the checkpoint (``ModelSpec.logit_bias``), so that inference applies
it too. This is the learned counterpart of the classical ``method: fractions`` thresholds.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from electroseg.inference.windows import resolve_precision
from electroseg.models import ModelSpec, network_from_checkpoint, read_checkpoint, stack_context
from electroseg.models.logit_bias import LogitSample, fit_logit_bias, fractions_of

__all__ = ["fit_logit_bias", "fractions_of", "predict_logits", "calibrate_checkpoint", "same_weights"]

logger = logging.getLogger(__name__)

def predict_logits(network: torch.nn.Module, spec: ModelSpec, image: np.ndarray, *,
                   overlap: float = 0.25) -> torch.Tensor:
    """Float32 logits (K, Z, Y, X) of a normalised (C, Z, Y, X) image.

    MONAI Gaussian-blended sliding windows of ``spec.patch_size`` in the precision that
    ``electroseg predict`` picks by default (:func:`~electroseg.inference.windows.resolve_precision`:
    bf16 autocast on a CPU with bf16 instructions, else float32; on CUDA when present, the
    logits come back on the CPU); slice by slice with ``spec.context_slices`` neighbours for
    ``multichannel2d``.
    """
    from monai.inferers import sliding_window_inference

    if spec.name == "multichannel2d":
        batch, windows = stack_context(image, context_slices=spec.context_slices), 8  # (Z, C', Y, X)
    else:
        batch, windows = image[None], 2
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    network = network.eval().to(device)
    autocast = resolve_precision("auto", device)  # the precision `electroseg predict` uses by default
    with torch.inference_mode(), torch.autocast(device.type, dtype=autocast or torch.bfloat16,
                                                 enabled=autocast is not None):
        logits = sliding_window_inference(torch.from_numpy(np.ascontiguousarray(batch)), spec.patch_size,
                                          windows, network, overlap=overlap, mode="gaussian",
                                          sw_device=device, device="cpu").float()
    return logits.movedim(1, 0) if spec.name == "multichannel2d" else logits[0]


def calibrate_checkpoint(path: str | os.PathLike, images: Sequence[np.ndarray],
                         volume_fractions: Mapping[str, float], *, seed: int = 0,
                         also: Sequence[str | os.PathLike] = ()) -> dict:
    """Fit ``logit_bias`` on ``images`` (normalised (C, Z, Y, X) training volumes) and store it.

    The checkpoint is rewritten in place (a temporary file, then an atomic rename) with the
    fitted offsets in its model spec; a previous calibration is replaced, not compounded.
    The same offsets are stored in the checkpoints ``also`` (which must hold the same weights:
    see :func:`same_weights`). Returns ``{"fractions_before": {...}, "fractions_after": {...},
    "logit_bias": [...]}``.
    """
    path = Path(path)
    checkpoint = read_checkpoint(path)
    spec = ModelSpec.from_dict(checkpoint["electroseg"], source=str(path))
    network = network_from_checkpoint(checkpoint, spec, source=str(path))
    sample = LogitSample(sum(int(np.prod(im.shape[1:])) for im in images), seed=seed)
    for image in images:
        sample.add(predict_logits(network, spec, image).reshape(len(spec.phases), -1).numpy())
    offsets, before, after = sample.fit(spec.phases, volume_fractions)
    bias = tuple(float(b) for b in offsets)
    _store_bias(path, checkpoint, bias)
    for other in also:
        _store_bias(Path(other), read_checkpoint(other), bias)
    report = {"fractions_before": dict(zip(spec.phases, before.round(4).tolist())),
              "fractions_after": dict(zip(spec.phases, after.round(4).tolist())),
              "logit_bias": [round(b, 4) for b in bias]}
    logger.info("%s: calibrated to volume fractions %s: %s -> %s (logit offsets %s)",
                ", ".join(p.name for p in (path, *map(Path, also))), dict(volume_fractions),
                report["fractions_before"], report["fractions_after"], report["logit_bias"])
    return report


def same_weights(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two checkpoints hold the same network weights (same keys, equal tensors)."""
    first, second = read_checkpoint(a).get("state_dict"), read_checkpoint(b).get("state_dict")
    if not isinstance(first, dict) or not isinstance(second, dict):
        return False
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def _store_bias(path: Path, checkpoint: dict, bias: tuple[float, ...]) -> None:
    spec = ModelSpec.from_dict(checkpoint["electroseg"], source=str(path))
    checkpoint["electroseg"] = replace(spec, logit_bias=bias).to_dict()
    partial = path.with_name(path.name + ".partial")
    torch.save(checkpoint, partial)
    os.replace(partial, path)

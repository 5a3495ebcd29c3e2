"""Public prediction API: one volume in memory, or a larger-than-memory volume to Zarr."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from electroseg.errors import InputError
from electroseg.inference.engine import ArraySink, Sink, WindowPlan, count_windows, prepare_network, run_2d, run_3d
from electroseg.inference.inputs import Setup, make_source, resolve_setup
from electroseg.inference.windows import choose_device, resolve_precision
from electroseg.io import Volume, atomic_output

logger = logging.getLogger(__name__)

PROBABILITY_DTYPES = ("float16", "uint8")
DEFAULT_BATCH = {"unet3d": 2, "multichannel2d": 8}
# On CUDA small batches leave the GPU waiting on kernel launches. One H100, default models,
# random weights: multichannel2d on 64x1024x1024, batch 32 -> 128: 41 -> 85 Mvoxel/s (fp32);
# unet3d on 256x1024x1024 at batch 32: 155 Mvoxel/s, 1.8 GB of GPU memory in all. The forward
# passes of these batches take about 1.2 GB (unet3d) and 0.9 GB (multichannel2d) in float32.
DEFAULT_BATCH_CUDA = {"unet3d": 32, "multichannel2d": 128}


@dataclass(frozen=True)
class Prediction:
    """Labels and optional class probabilities of one image or volume.

    Attributes
    ----------
    labels : ndarray, uint8, shape (Z, Y, X) or (Y, X)
        Phase index per voxel (argmax of the blended logits).
    probabilities : ndarray or None, shape (K, Z, Y, X) or (K, Y, X)
        Softmax of the blended logits as float16, or uint8 ``round(255 p)``; None unless asked.
    phases : tuple of str
        Phase names, index i = label i (empty for a bare network without a spec).
    intensity : tuple of dict
        Per channel, the window the input was normalised with: ``lo``, ``hi`` and ``route``
        (``dataset``: the training data's window; ``own``: the input's percentiles; ``none``).
    """

    labels: np.ndarray
    probabilities: np.ndarray | None
    phases: tuple[str, ...]
    intensity: tuple[dict, ...] = ()

    def to_dict(self) -> dict:
        """Summary (no arrays): shape, phases, probability dtype."""
        dtype = None if self.probabilities is None else str(self.probabilities.dtype)
        return {"shape": list(self.labels.shape), "phases": list(self.phases), "probabilities": dtype,
                "intensity": list(self.intensity)}


@dataclass(frozen=True)
class ChunkedPrediction:
    """Where :func:`predict_chunked` wrote its Zarr arrays, and their shape."""

    labels_path: Path
    probabilities_path: Path | None
    shape: tuple[int, ...]
    phases: tuple[str, ...]
    intensity: tuple[dict, ...] = ()

    def to_dict(self) -> dict:
        return {"labels_path": str(self.labels_path), "shape": list(self.shape), "phases": list(self.phases),
                "probabilities_path": None if self.probabilities_path is None else str(self.probabilities_path),
                "intensity": list(self.intensity)}


def _plan(setup: Setup, *, overlap: float, batch_size: int | None, tta: bool, device: Any,
          precision: str) -> WindowPlan:
    if not 0 <= float(overlap) < 1:
        raise InputError(f"overlap: expected a fraction in [0, 1), got {overlap}")
    try:
        chosen = choose_device(device)
        autocast = resolve_precision(precision, chosen)
    except ValueError as err:
        raise InputError(str(err)) from None
    defaults = DEFAULT_BATCH_CUDA if chosen.type == "cuda" else DEFAULT_BATCH
    batch = defaults[setup.kind] if batch_size is None else int(batch_size)
    if batch < 1:
        raise InputError(f"batch_size: expected a positive integer, got {batch_size}")
    return WindowPlan(setup.patch_size, float(overlap), batch, bool(tta), chosen, autocast)


def _check_probabilities(probabilities: str | None) -> None:
    if probabilities is not None and probabilities not in PROBABILITY_DTYPES:
        raise InputError(f"probabilities: expected one of {PROBABILITY_DTYPES} or None, got {probabilities!r}")


def _run(setup: Setup, plan: WindowPlan, source, sink: Sink, *, progress: bool, what: str,
         volume_fractions: Mapping[str, float] | None = None) -> None:
    """Run the engine matching the model kind, with an optional tqdm bar over windows; first
    fit logit offsets to ``volume_fractions`` on this input when given."""
    import torch

    network = prepare_network(setup.network, plan.device, plan.autocast_dtype)
    if volume_fractions:
        from electroseg.inference.calibrate import calibrated_network

        network = calibrated_network(network, setup, source, plan, volume_fractions, where=what)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=count_windows(source.shape[1:], plan), desc=what, unit="win", leave=False)
    try:
        with torch.inference_mode():
            if setup.kind == "unet3d":
                run_3d(network, source, sink, plan, on_windows=bar.update if bar else None)
            else:
                run_2d(network, source, sink, plan, context_slices=setup.context_slices,
                       on_windows=bar.update if bar else None)
    finally:
        if bar is not None:
            bar.close()


def predict_volume(
    model: Any,
    image: Any,
    *,
    spec: Any = None,
    patch_size: Sequence[int] | None = None,
    overlap: float = 0.25,
    batch_size: int | None = None,
    tta: bool = False,
    device: Any = None,
    precision: str = "auto",
    probabilities: str | None = None,
    progress: bool = False,
    volume_fractions: Mapping[str, float] | None = None,
) -> Prediction:
    """Segment one image or volume held in memory (or lazily) with a trained network.

    Parameters
    ----------
    model : LoadedModel or torch.nn.Module
        From :func:`load_checkpoint`; a bare module needs ``patch_size`` (and ``spec`` for
        normalisation and phases).
    image : Volume or array-like
        (Z, Y, X) or (Y, X) for one channel; (C, Z, Y, X) or (C, Y, X) channels first, in the
        checkpoint's channel order, for several (a Volume's channel names are matched by name).
        Raw intensities: each channel is normalised as in training.
    spec : ModelSpec, optional
        Overrides ``model.spec``.
    patch_size : sequence of int, optional
        Window size; default the training patch size. (Z, Y, X) for unet3d, (Y, X) for 2-D.
    overlap : float
        Fraction of a window shared with its neighbours, in [0, 1).
    batch_size : int, optional
        Windows per forward pass (default 2 for unet3d, 8 for 2-D; on CUDA 32 and 128).
    tta : bool
        Average the logits over the four in-plane (Y, X) flips.
    device : str or torch.device, optional
        Default CUDA when present, else CPU.
    precision : {"auto", "bf16", "fp16", "fp32"}
        ``auto`` = bf16 autocast on the CPU, float32 on CUDA (fp16 only on CUDA).
    probabilities : {None, "float16", "uint8"}
        Also return softmax probabilities in this dtype (uint8 = ``round(255 p)``).
    progress : bool
        Show a tqdm bar over windows (stderr).
    volume_fractions : mapping phase -> fraction, optional
        Known volume fractions of this input (e.g. the porosity from mass loading): logit
        offsets fitted on this input make its predicted fractions match
        (:mod:`electroseg.inference.calibrate`). Some or all phases, each in (0, 1).

    Returns
    -------
    Prediction

    Notes
    -----
    Windows on a regular grid (stride ``int(patch * (1 - overlap))``, last window flush with
    the end) are blended with MONAI's Gaussian importance map (sigma = patch / 8):
    ``logits = sum_w g_w * f(x_w) / sum_w g_w``. Axes shorter than the patch are padded by
    repeating the edge. unet3d runs patch-wise in 3-D; multichannel2d runs slice-wise with the
    ``context_slices`` neighbours of each slice as extra channels (ends repeated).
    """
    _check_probabilities(probabilities)
    setup = resolve_setup(model, spec=spec, patch_size=patch_size)
    plan = _plan(setup, overlap=overlap, batch_size=batch_size, tta=tta, device=device, precision=precision)
    source, two_d = make_source(image, setup)
    sink = ArraySink(source.shape[1:], probabilities_dtype=probabilities)
    _run(setup, plan, source, sink, progress=progress, what="windows", volume_fractions=volume_fractions)
    labels, probs = sink.labels, sink.probabilities
    if two_d:
        labels, probs = labels[0], None if probs is None else probs[:, 0]
    return Prediction(labels=labels, probabilities=probs, phases=setup.phases,
                      intensity=tuple(b.to_dict() for b in source.bounds))

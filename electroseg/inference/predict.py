"""Public prediction API: one volume in memory, or a larger-than-memory volume to Zarr."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from electroseg.inference.engine import ArraySink, check_probabilities, plan_windows, run_model
from electroseg.inference.inputs import make_source, resolve_setup
from electroseg.inference.scale import scale_factor

logger = logging.getLogger(__name__)

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
    scale: float | str = "auto",
    intensity_window: Sequence[float] | Sequence[Sequence[float]] | None = None,
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
        ``auto`` = bf16 autocast on a CPU with bf16 instructions, otherwise float32; float32 on
        CUDA (fp16 only on CUDA). See :func:`electroseg.inference.windows.resolve_precision`.
    probabilities : {None, "float16", "uint8"}
        Also return softmax probabilities in this dtype (uint8 = ``round(255 p)``).
    progress : bool
        Show a tqdm bar over windows (stderr).
    volume_fractions : mapping phase -> fraction, optional
        Known volume fractions of this input (e.g. the porosity from mass loading): logit
        offsets fitted on this input make its predicted fractions match
        (:mod:`electroseg.inference.calibrate`). Some or all phases, each in (0, 1).
    scale : float in (0, 1] or "auto"
        Predict on the image shrunk in-plane (Y, X) by this factor, labels (nearest) and
        probabilities (linear) brought back to its grid. ``"auto"``
        (:mod:`electroseg.inference.scale`): shrink only an image whose feature size exceeds
        the model's training images' (``model.feature_length``, recorded by the shipped
        models), else 1 (the default; a checkpoint of your own records none).
    intensity_window : [lo, hi], list of [lo, hi] per channel, or a prediction.json path, optional
        Map each channel's ``[lo, hi]`` to [0, 1] instead of the checkpoint's rule (a path: the
        window that prediction.json records under ``intensity``). For a part
        of an image already predicted: its parent's window (``Prediction.intensity``,
        ``intensity`` in prediction.json) gives the part the same labels as the whole. An
        image normalised by its own percentiles (a model trained on images each at their own
        contrast) otherwise gets the part's own window, which moves with its content.

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
    check_probabilities(probabilities)
    factor = scale_factor(model, image, scale)
    if factor != 1.0:
        return _rescaled(model, image, factor, spec=spec, patch_size=patch_size, overlap=overlap,
                         batch_size=batch_size, tta=tta, device=device, precision=precision,
                         probabilities=probabilities, progress=progress, volume_fractions=volume_fractions,
                         intensity_window=intensity_window)
    setup = resolve_setup(model, spec=spec, patch_size=patch_size, intensity_window=intensity_window)
    plan = plan_windows(setup, overlap=overlap, batch_size=batch_size, tta=tta, device=device, precision=precision)
    source, two_d = make_source(image, setup)
    sink = ArraySink(source.shape[1:], probabilities_dtype=probabilities)
    run_model(setup, plan, source, sink, progress=progress, what="windows", volume_fractions=volume_fractions)
    labels, probs = sink.labels, sink.probabilities
    if two_d:
        labels, probs = labels[0], None if probs is None else probs[:, 0]
    return Prediction(labels=labels, probabilities=probs, phases=setup.phases,
                      intensity=tuple(b.to_dict() for b in source.bounds))


def _rescaled(model: Any, image: Any, factor: float, **options) -> Prediction:
    """:func:`predict_volume` on the image shrunk in-plane by ``factor``, brought back."""
    from dataclasses import replace as _replace

    from scipy import ndimage

    from electroseg.io import Volume

    volume = image if isinstance(image, Volume) else None
    data = np.asarray(volume.data if volume is not None else image, np.float32)
    zoom = [1.0] * (data.ndim - 2) + [factor, factor]
    small = ndimage.zoom(data, zoom, order=1)
    small_input = _replace(volume, data=small) if volume is not None else small
    part = predict_volume(model, small_input, scale=1.0, **options)
    grid = data.shape[-part.labels.ndim:]
    labels = _back(part.labels, grid, order=0)
    probs = None
    if part.probabilities is not None:
        probs = np.stack([_back(p.astype(np.float32), grid, order=1) for p in part.probabilities])
        probs = probs.astype(part.probabilities.dtype) if part.probabilities.dtype != np.uint8 else \
            np.clip(np.rint(probs), 0, 255).astype(np.uint8)
    return Prediction(labels=labels, probabilities=probs, phases=part.phases, intensity=part.intensity)


def _back(array: np.ndarray, shape: Sequence[int], *, order: int) -> np.ndarray:
    """``array`` resampled onto ``shape`` (in-plane; other axes already match)."""
    from scipy import ndimage

    out = ndimage.zoom(array, [s / a for s, a in zip(shape, array.shape)], order=order)
    if out.shape != tuple(shape):  # zoom rounds: crop or edge-pad to the exact grid
        pad = [(0, max(0, s - o)) for s, o in zip(shape, out.shape)]
        out = np.pad(out, pad, mode="edge")[tuple(slice(0, s) for s in shape)]
    return out

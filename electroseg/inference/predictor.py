"""``Predictor``: one trained model, loaded once, with its inference settings, for notebooks and scripts.

The shape follows nnU-Net's predictor and MONAI's inferers: settings at construction, then

- :meth:`Predictor.predict` for an image or volume in memory (a NumPy array, a ``Volume``, or
  a path read whole), returning a :class:`~electroseg.inference.Prediction`;
- :meth:`Predictor.predict_to` for a volume streamed from a file to a label file (OME-Zarr or
  BigTIFF) slab by slab, memory bounded, labels identical to the in-memory ones;
- :meth:`Predictor.predict_many` for a batch of files into an output folder, resumable, with
  ``summary.csv`` (the ``electroseg predict`` command), locally or on a Dask cluster.

>>> from electroseg.inference import Predictor                      # doctest: +SKIP
>>> predictor = Predictor("runs/nmc/checkpoints/best.ckpt", overlap=0.5, tta=True)  # doctest: +SKIP
>>> labels = predictor.predict(volume).labels                        # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

__all__ = ["Predictor"]


class Predictor:
    """A checkpoint loaded once, with the settings every prediction uses.

    A bad ``overlap``, ``batch_size``, ``device`` or ``precision`` raises ``InputError`` here,
    not at the first prediction.

    Parameters
    ----------
    checkpoint : path or LoadedModel
        From ``electroseg train`` (or ``electroseg export format=checkpoint``).
    overlap : float
        Window overlap (0.25: MONAI's default).
    batch_size : int, optional
        Windows per network call; default per device (CPU: 2 for unet3d, 8 for 2-D models).
    tta : bool
        Average the 8 in-plane flips and turns.
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.
    precision : {"auto", "fp32", "bf16", "fp16"}
    volume_fractions : mapping, optional
        Known fractions of each input (logit offsets fitted per input).
    scale : "auto" or float in (0, 1]
        As :func:`~electroseg.inference.predict_volume` (in-memory predictions).
    intensity_window : [lo, hi], list of [lo, hi] per channel, or a prediction.json path, optional
        A fixed intensity window instead of the checkpoint's rule (as
        :func:`~electroseg.inference.predict_volume`).
    """

    def __init__(self, checkpoint: Any, *, overlap: float = 0.25, batch_size: int | None = None,
                 tta: bool = False, device: Any = None, precision: str = "auto",
                 volume_fractions: Mapping[str, float] | None = None, scale: float | str = "auto",
                 intensity_window: Any = None) -> None:
        from electroseg.inference.checkpoint import load_checkpoint
        from electroseg.inference.engine import check_window_options

        check_window_options(overlap=overlap, batch_size=batch_size, device=device, precision=precision)
        self.checkpoint = checkpoint
        self.model = load_checkpoint(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else checkpoint
        self.options = dict(overlap=overlap, batch_size=batch_size, tta=tta, device=device, precision=precision,
                            volume_fractions=volume_fractions, intensity_window=intensity_window)
        self.scale = scale

    @property
    def phases(self) -> tuple[str, ...]:
        """Phase names: label value i is ``phases[i]``."""
        return tuple(self.model.spec.phases)

    def predict(self, image: Any, *, probabilities: str | None = None, voxel_size: Sequence[float] | None = None,
                progress: bool = False):
        """Labels (and optionally probabilities) of one image or volume held in memory.

        ``image``: NumPy array ((Y, X), (Z, Y, X) or (C, Z, Y, X)), a ``Volume``, or a path
        (read whole with its voxel size). Returns a :class:`~electroseg.inference.Prediction`.
        """
        from electroseg.inference.predict import predict_volume
        from electroseg.io import read_volume

        if isinstance(image, (str, os.PathLike)):
            image = read_volume(image, voxel_size=voxel_size,
                                allow_channels=len(self.model.spec.channels) > 1)
        return predict_volume(self.model, image, probabilities=probabilities, progress=progress, scale=self.scale,
                              **self.options)

    def predict_to(self, source: Any, out_path: str | os.PathLike, *, slab_size: int = 64,
                   probabilities_path: str | os.PathLike | None = None, probabilities: str = "float16",
                   voxel_size: Sequence[float] | None = None, progress: bool = False):
        """Stream a (Z, Y, X) volume (path or lazy array) to ``out_path`` (``.zarr``: OME-Zarr
        labels; ``.tif``: OME BigTIFF), slab by slab. Returns a ``ChunkedPrediction``."""
        from electroseg.inference.chunked import predict_chunked

        return predict_chunked(self.model, source, out_path, slab_size=slab_size,
                               probabilities_path=probabilities_path, probabilities=probabilities,
                               voxel_size=voxel_size, progress=progress, **self.options)

    def predict_many(self, inputs: Any, out_dir: str | os.PathLike, *, executor: str = "local", **options: Any):
        """Every input (paths, a glob, or ``{name: path}``) into ``out_dir/<name>/``, resumable.

        ``executor``: ``"local"`` or ``"dask"`` (slabs as Dask tasks; ``dask={...}`` names the
        cluster). Other options as :func:`~electroseg.inference.predict_batch` (``analyze``,
        ``save_probabilities``, ``overwrite``, ``chunked``, ``uncertainty``, ...). Returns a
        ``BatchResult``.
        """
        from electroseg.inference.batch import predict_batch

        settings = {k: v for k, v in self.options.items() if k != "volume_fractions"}
        fractions = options.pop("volume_fractions", self.options["volume_fractions"])
        checkpoint = self.checkpoint if executor == "dask" and isinstance(self.checkpoint, (str, os.PathLike)) \
            else self.model  # a cluster's workers load the checkpoint from its path
        options.setdefault("scale", self.scale)
        return predict_batch(checkpoint, inputs, out_dir, executor=executor, volume_fractions=fractions,
                             **settings, **options)

    def __repr__(self) -> str:
        spec = self.model.spec
        window = self.options["intensity_window"]
        return (f"Predictor({spec.name}, phases={list(spec.phases)}, channels={list(spec.channels)}, "
                f"overlap={self.options['overlap']}, tta={self.options['tta']}"
                + ("" if window is None else f", intensity_window={window}") + ")")

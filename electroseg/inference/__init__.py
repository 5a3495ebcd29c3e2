"""Sliding-window and chunked prediction with trained checkpoints, and batch predict.

The checkpoint alone defines network, phases, channels and normalisation
(:mod:`electroseg.models.spec`). :func:`predict_volume` segments an image or volume in memory;
:func:`predict_chunked` streams a larger-than-memory volume to Zarr with identical labels;
:func:`predict_batch` runs many inputs with resumable outputs (the ``predict`` command).
:class:`Predictor` holds one loaded checkpoint and its settings and offers the three as
``predict``, ``predict_to`` and ``predict_many``.
"""

from electroseg.inference.batch import BatchResult, InputResult, predict_batch
from electroseg.inference.checkpoint import load_checkpoint
from electroseg.inference.chunked import predict_chunked
from electroseg.inference.predict import ChunkedPrediction, Prediction, predict_volume
from electroseg.inference.predictor import Predictor

__all__ = [
    "BatchResult",
    "ChunkedPrediction",
    "InputResult",
    "Prediction",
    "Predictor",
    "load_checkpoint",
    "predict_batch",
    "predict_chunked",
    "predict_volume",
]

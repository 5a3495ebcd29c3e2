"""Load a trained checkpoint: the checkpoint alone defines network, phases, channels, normalisation."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from electroseg.errors import InputError
from electroseg.models import LoadedModel, model_from_checkpoint

logger = logging.getLogger(__name__)


def load_checkpoint(path: str | os.PathLike) -> LoadedModel:
    """Rebuild the trained network of a checkpoint written by ``electroseg train``.

    Parameters
    ----------
    path : path
        Lightning ``.ckpt`` holding ``checkpoint["electroseg"]`` (a ModelSpec dict) and the
        network weights under ``state_dict`` keys prefixed ``net.``
        (see :mod:`electroseg.models.spec`).

    Returns
    -------
    electroseg.models.LoadedModel
        ``network`` (eval mode, CPU) and ``spec``.

    Raises
    ------
    InputError
        The file is missing, is not a torch checkpoint, is corrupt, holds objects that
        ``weights_only`` loading refuses, or lacks the electroseg entries.

    Notes
    -----
    Loaded with ``torch.load(path, map_location="cpu", weights_only=True)``: a checkpoint can
    never run code, and the network class comes from an allow-list, never from the file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found (expected a .ckpt file from electroseg train)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - corrupt bytes make torch's unpickler raise
        # KeyError, IndexError, struct.error, UnpicklingError, RuntimeError ... : the call reads
        # only this file, so any failure here means the file is not a usable checkpoint.
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"{path}: not a readable torch checkpoint ({first[:200]})") from None
    loaded = model_from_checkpoint(checkpoint, source=str(path))
    logger.info("loaded %s: model %s, phases %s, channels %s", path, loaded.spec.name,
                list(loaded.spec.phases), list(loaded.spec.channels))
    return loaded

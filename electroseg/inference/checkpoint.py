"""Load a trained checkpoint: the checkpoint alone defines network, phases, channels, normalisation."""

from __future__ import annotations

import logging
import os

from electroseg.models import LoadedModel, model_from_checkpoint, read_checkpoint

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
    Read by :func:`electroseg.models.read_checkpoint` (``weights_only=True``): a checkpoint can
    never run code, and the network class comes from an allow-list, never from the file.
    """
    loaded = model_from_checkpoint(read_checkpoint(path), source=str(path))
    if str(path).startswith("pretrained:"):
        from dataclasses import replace

        from electroseg.models.pretrained import PREFIX, available

        card = available().get(str(path)[len(PREFIX):], {})
        if card.get("feature_length_px") is not None:
            loaded = replace(loaded, feature_length=float(card["feature_length_px"]))
        if card.get("low_confidence_warning") is not None:
            loaded = replace(loaded, low_confidence_warning=float(card["low_confidence_warning"]))
    logger.info("loaded %s: model %s, phases %s, channels %s%s", path, loaded.spec.name,
                list(loaded.spec.phases), list(loaded.spec.channels),
                "" if loaded.spec.logit_bias is None else f", volume-fraction logit offsets {list(loaded.spec.logit_bias)}")
    return loaded

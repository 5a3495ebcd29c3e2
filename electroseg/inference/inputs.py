"""Turn a user's image or Volume into the normalised channel source a checkpoint expects."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from electroseg.errors import InputError
from electroseg.inference.engine import Source
from electroseg.inference.normalize import ChannelBounds, intensity_bounds
from electroseg.io import Volume, read_volume

logger = logging.getLogger(__name__)

KINDS = ("unet3d", "multichannel2d")


@dataclass(frozen=True)
class Setup:
    """What the prediction loop needs from a checkpoint (or from explicit arguments)."""

    network: nn.Module
    kind: str
    patch_size: tuple[int, ...]
    context_slices: int
    channels: tuple[str, ...]
    phases: tuple[str, ...]
    normalization: Mapping[str, Any]
    preprocess: tuple[Mapping[str, Any], ...] = ()
    temperature: float = 1.0  # probabilities = softmax(logits / temperature); labels unaffected
    window: tuple[tuple[float, float], ...] | None = None  # fixed intensity window per channel (given by the user)


def check_intensity_window(window: Any, n_channels: int) -> tuple[tuple[float, float], ...] | None:
    """``intensity_window`` as ``((lo, hi), ...)``, one pair per channel, or None.

    Accepts ``[lo, hi]`` for a one-channel model, ``[[lo, hi], ...]`` in the checkpoint's
    channel order, or the path of a ``prediction.json`` (the window its ``intensity`` entry
    records: a crop predicted in its parent's window); one InputError naming what arrived for
    anything else.

    >>> check_intensity_window([0, 255], 1)
    ((0.0, 255.0),)
    >>> check_intensity_window(None, 2) is None
    True
    """
    if window is None:
        return None
    if isinstance(window, (str, os.PathLike)):
        window = _recorded_window(window)
    expected = f"[lo, hi]{' per channel, ' + str(n_channels) + ' channels' if n_channels > 1 else ''} with lo < hi"
    pairs = window
    try:
        if n_channels == 1 and len(window) == 2 and not hasattr(window[0], "__len__"):
            pairs = [window]
        out = tuple((float(lo), float(hi)) for lo, hi in pairs)
    except (TypeError, ValueError):
        raise InputError(f"intensity_window: expected {expected}, got {window!r}") from None
    if len(out) != n_channels or not all(np.isfinite(p).all() and p[1] > p[0] for p in out):
        raise InputError(f"intensity_window: expected {expected}, got {window!r}")
    return out


def _recorded_window(path: str | os.PathLike) -> list:
    """The ``[[lo, hi], ...]`` a prediction.json records under ``intensity``."""
    import json

    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
        window = [[b["lo"], b["hi"]] for b in record["intensity"]]
    except OSError as err:
        raise InputError(f"intensity_window: expected [lo, hi] or a prediction.json, got {str(path)!r}, which "
                         f"cannot be read: {err.strerror or err}") from None
    except (ValueError, KeyError, TypeError):
        raise InputError(f"intensity_window: {path}: expected a prediction.json with an 'intensity' list of "
                         "{lo, hi} per channel") from None
    if not window or any(v is None for pair in window for v in pair):
        raise InputError(f"intensity_window: {path} records no intensity window (its model normalised nothing)")
    return window


def resolve_setup(model: Any, *, spec: Any = None, patch_size: Sequence[int] | None = None,
                  intensity_window: Any = None) -> Setup:
    """Network and spec from a ``LoadedModel`` or an ``nn.Module`` plus ``spec``/``patch_size``.

    A bare module without a spec gets no normalisation (the image must already be in [0, 1]),
    one channel, phases named by index once known, ``unet3d`` for a 3-entry patch size and
    slice-wise 2-D for a 2-entry one.
    """
    network = getattr(model, "network", model)
    spec = spec if spec is not None else getattr(model, "spec", None)
    if not isinstance(network, nn.Module):
        raise InputError(f"model: expected a LoadedModel or a torch nn.Module, got {type(model).__name__}")
    if spec is None:
        if patch_size is None:
            raise InputError("patch_size: required when the model comes without a spec")
        patch = tuple(int(p) for p in patch_size)
        kind = "unet3d" if len(patch) == 3 else "multichannel2d"
        if intensity_window is not None:
            raise InputError("intensity_window: needs a checkpoint (a model with a spec); a bare module "
                             "takes images already in [0, 1]")
        return Setup(network, kind, patch, 0, (), (), {"method": "none"})
    patch = tuple(int(p) for p in (patch_size or spec.patch_size))
    setup = Setup(network, spec.name, patch, int(spec.context_slices), tuple(spec.channels),
                  tuple(spec.phases), dict(spec.normalization),
                  tuple(dict(step) for step in getattr(spec, "preprocess", ()) or ()),
                  float(getattr(spec, "temperature", None) or 1.0),
                  check_intensity_window(intensity_window, max(1, len(spec.channels))))
    if setup.kind not in KINDS:
        raise InputError(f"model: expected a kind in {KINDS}, got {setup.kind!r}")
    if len(patch) != (3 if setup.kind == "unet3d" else 2) or min(patch) < 1:
        raise InputError(f"patch_size: model {setup.kind!r} needs "
                         f"{3 if setup.kind == 'unet3d' else 2} positive sizes, got {patch}")
    return setup


def _channel_index(names: tuple[str, ...], count: int, expected: tuple[str, ...], where: str,
                   shape: tuple[int, ...]) -> list[int]:
    want = max(1, len(expected))
    if count != want:
        got = f"channels {list(names)}" if len(names) > 1 else f"shape {shape}, read as {count} channel(s)"
        raise InputError(f"{where}: the model expects {want} channel(s) {list(expected) or ''} "
                         f"(channels first), got {got}")
    if len(names) > 1 and len(expected) > 1:
        if set(names) != set(expected):
            raise InputError(f"{where}: the model expects channels {list(expected)}, got {list(names)}")
        return [names.index(c) for c in expected]
    return list(range(count))


def _preprocessed(data: Any, index: list[int], has_c: bool, steps, where: str, lazy_only: bool,
                  channels: Sequence[str]) -> np.ndarray:
    """The checkpoint's preprocess steps (as in training) on the whole (C, Z, Y, X) input, whose
    selected channels are the checkpoint's ``channels``."""
    from electroseg.preprocess import preprocess_channels

    if lazy_only:
        raise InputError(f"{where}: the checkpoint's preprocess steps {[s.get('step') for s in steps]} "
                         "need the whole volume in memory; predict it with chunked=false")
    stacked = np.asarray(data)[index] if has_c else np.asarray(data)[None]
    return preprocess_channels(stacked, steps, channels)


def make_source(image: Any, setup: Setup, *, lazy_only: bool = False) -> tuple[Source, bool]:
    """Channels-first normalised :class:`Source` of ``image`` and whether it was a 2-D image.

    ``image`` is a Volume (maybe lazy, channels named) or an array: (Z, Y, X) / (Y, X) for one
    channel, (C, Z, Y, X) / (C, Y, X) channels-first for several. The checkpoint's preprocess
    steps, if any, run on the whole input first (refused when ``lazy_only``).
    """
    volume = image if isinstance(image, Volume) else Volume(data=image)
    where, data, names = volume.name, volume.data, tuple(volume.channels)
    if not hasattr(data, "shape") or not hasattr(data, "__getitem__"):
        raise InputError(f"{where}: expected an array, got {type(data).__name__}")
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    expected = max(1, len(setup.channels))
    has_c = len(names) > 1 or expected > 1 or len(data.shape) == 4
    index = _channel_index(names, int(data.shape[0]) if has_c else 1, setup.channels, where,
                           tuple(int(n) for n in data.shape))
    spatial = tuple(data.shape[1:] if has_c else data.shape)
    if len(spatial) not in (2, 3):
        raise InputError(f"{where}: expected a (Z, Y, X) volume or a (Y, X) image"
                         f"{' with a leading channel axis' if has_c else ''}, got shape {tuple(data.shape)}")
    two_d = len(spatial) == 2
    if two_d and setup.kind == "unet3d":
        raise InputError(f"{where}: the unet3d model needs a (Z, Y, X) volume, got a 2-D image {spatial}")
    if two_d:
        data = np.asarray(data)[:, None] if has_c else np.asarray(data)[None]
    if setup.preprocess:
        data, index, has_c = _preprocessed(data, index, has_c, setup.preprocess, where, lazy_only,
                                                setup.channels), \
            list(range(len(index))), True
    source = Source(data, channel_index=index if has_c else None,
                    bounds=[ChannelBounds(None, None)] * len(index))
    if setup.window is not None:  # the user's window: no rule, no sample of this input
        source.bounds = [ChannelBounds(lo, hi, "given") for lo, hi in setup.window]
        logger.debug("%s: normalisation bounds given %s", where, list(setup.window))
        return source, two_d
    source.bounds = [intensity_bounds(source.channel(c), setup.normalization, c) for c in range(len(index))]
    routes = {b.route for b in source.bounds}
    if "own" in routes and setup.normalization.get("method") == "auto" and setup.normalization.get("bounds"):
        from electroseg.models.normalization import storage

        stored, trained = storage(data.dtype), setup.normalization.get("storage")
        logger.warning("%s: intensities are not in the training data's units (percentile window %s, "
                       "training %s; stored as %s, training data as %s): normalised by the input's own "
                       "percentiles instead", where, [[round(b.lo, 4), round(b.hi, 4)] for b in source.bounds],
                       setup.normalization.get("bounds"), stored, trained[0] if trained else "not recorded")
    logger.debug("%s: normalisation bounds %s", where, [b.to_dict() for b in source.bounds])
    return source, two_d


def lazy_volume(volume: Any, voxel_size: Any) -> Volume:
    """``volume`` as a lazily read Volume: a path is opened lazily, an array wrapped, a Volume
    kept; ``voxel_size`` overrides what the file says."""
    if isinstance(volume, Volume):
        return volume if voxel_size is None else volume.with_voxel_size(voxel_size)
    if isinstance(volume, (str, os.PathLike)):
        return read_volume(volume, voxel_size=voxel_size, lazy=True)
    return Volume(data=volume, voxel_size=None if voxel_size is None else tuple(voxel_size))

"""Chain of preprocessing steps configured as a list of ``{"step": name, **options}``."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from electroseg.errors import InputError
from electroseg.preprocess._common import roi_slices
from electroseg.preprocess.denoise import denoise
from electroseg.preprocess.destripe import remove_curtaining
from electroseg.preprocess.intensity import flatten_shading, normalize_slices
from electroseg.preprocess.registration import register_slices

logger = logging.getLogger(__name__)


def crop(image: np.ndarray, *, roi: Sequence[Sequence[int | None] | None]) -> np.ndarray:
    """Crop the spatial axes of an image, stack or multi-channel stack to a region of interest.

    Parameters
    ----------
    image : ndarray, shape (..., Y, X)
    roi : sequence of ``[start, stop]`` or None, one per spatial axis counted from the last
        (e.g. ``[[z0, z1], [y0, y1], [x0, x1]]`` for a stack); None or a None bound keeps the
        full extent.

    Examples
    --------
    >>> crop(np.arange(20).reshape(4, 5), roi=[[1, 3], [None, 2]]).tolist()
    [[5, 6], [10, 11]]
    """
    image = np.asarray(image)
    slices = roi_slices(image.shape, roi, name="roi")
    return image[(Ellipsis, *slices)]


@dataclass(frozen=True)
class PreprocessResult:
    """Output of `preprocess_volume`.

    Attributes
    ----------
    image : ndarray, float32
        Preprocessed image, (Z, Y, X), (Y, X) or (C, Z, Y, X).
    shifts : ndarray, shape (Z, 2) or None
        Drift ``(dy, dx)`` of each slice relative to slice 0 in pixels (None if not registered).
    log : tuple of dict
        One record per step: ``step``, ``status`` ("done"/"skipped"), ``seconds`` (wall),
        ``cpu_seconds`` (this process) and the step's options.
    """

    image: np.ndarray
    shifts: np.ndarray | None = None
    log: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the image itself is left out)."""
        return {
            "shape": list(self.image.shape),
            "shifts": None if self.shifts is None else self.shifts.tolist(),
            "log": list(self.log),
        }

    def as_table(self) -> pd.DataFrame:
        """Per-slice shifts (columns ``slice``, ``dy``, ``dx``; empty without registration)."""
        if self.shifts is None:
            return pd.DataFrame(columns=["slice", "dy", "dx"])
        return pd.DataFrame(
            {"slice": np.arange(len(self.shifts)), "dy": self.shifts[:, 0], "dx": self.shifts[:, 1]}
        )


_PER_CHANNEL: dict[str, Callable[..., np.ndarray]] = {
    "remove_curtaining": remove_curtaining,
    "flatten_shading": flatten_shading,
    "normalize_slices": normalize_slices,
    "denoise": denoise,
}
STEPS = ("register_slices", "crop", *_PER_CHANNEL)


def _split_step(step: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    if not isinstance(step, Mapping) or "step" not in step:
        raise InputError(f"steps: expected mappings like {{'step': 'denoise', ...}}, got {step!r}")
    options = {key: value for key, value in step.items() if key != "step"}
    if step["step"] not in STEPS:
        raise InputError(f"steps: unknown step {step['step']!r}; expected one of {STEPS}")
    return str(step["step"]), options


def _channel_index(options: dict[str, Any], names: Sequence[str] | None) -> dict[str, Any]:
    """``register_slices`` options with a detector name in ``channel`` replaced by its index."""
    channel = options.get("channel")
    if not isinstance(channel, str):
        return options
    if names is None or channel not in names:
        known = "the image's channels have no names" if names is None else f"expected one of {list(names)}"
        raise InputError(f"register_slices: channel {channel!r} is not a channel of this image ({known})")
    return {**options, "channel": list(names).index(channel)}


def _run_step(
    image: np.ndarray, name: str, options: dict[str, Any], *, multichannel: bool, spatial_ndim: int,
    channel_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Run one step; returns (image, shifts or None, status)."""
    if name == "crop":
        return crop(image, **options), None, "done"
    if name == "register_slices":
        if spatial_ndim < 3 or image.shape[-3] < 2:
            logger.info("register_slices: skipped, needs a stack of at least 2 slices")
            return image, None, "skipped"
    try:
        if name == "register_slices":
            registered, shifts = register_slices(image, **_channel_index(options, channel_names))
            return registered, shifts, "done"
        func = _PER_CHANNEL[name]
        if multichannel:
            return np.stack([func(channel, **options) for channel in image]), None, "done"
        return func(image, **options), None, "done"
    except TypeError as error:
        raise InputError(f"steps: bad options {options!r} for step {name!r}: {error}") from error


def preprocess_volume(
    image: np.ndarray, *, steps: Sequence[Mapping[str, Any]] = (), multichannel: bool = False,
    channel_names: Sequence[str] | None = None,
) -> PreprocessResult:
    """Run preprocessing steps in the order given.

    Parameters
    ----------
    image : ndarray, shape (Z, Y, X), (Y, X), or (C, Z, Y, X) / (C, Y, X) with ``multichannel``
    steps : sequence of mappings
        Each ``{"step": name, **options}`` with name one of `STEPS` (the functions of
        `electroseg.preprocess` of the same name, options passed as keyword arguments).
        Steps that need Z (registration, slice normalisation) are skipped on 2-D images.
    multichannel : bool
        First axis holds channels: registration uses channel 0 (or the ``channel`` option of the
        ``register_slices`` step) and moves every channel by the same shifts; other steps run
        per channel.
    channel_names : sequence of str, optional
        Detector names of the channels, in order: ``register_slices`` may then name its
        ``channel`` (``{"step": "register_slices", "channel": "tld"}``).

    Returns
    -------
    PreprocessResult
    """
    image = np.asarray(image)
    spatial_ndim = image.ndim - int(multichannel)
    if spatial_ndim not in (2, 3):
        raise InputError(
            f"image: expected (Y, X) or (Z, Y, X){' after the channel axis' if multichannel else ''}, "
            f"got shape {image.shape}"
        )
    shifts, log = None, []
    for step in steps:
        name, options = _split_step(step)
        start, cpu_start = time.perf_counter(), time.process_time()
        image, step_shifts, status = _run_step(
            image, name, options, multichannel=multichannel, spatial_ndim=spatial_ndim,
            channel_names=channel_names,
        )
        shifts = step_shifts if step_shifts is not None else shifts
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start
        log.append({"step": name, "status": status, "seconds": round(seconds, 3),
                    "cpu_seconds": round(cpu_seconds, 3), **options})
        logger.info("preprocess: %s %s in %.2f s", name, status, seconds)
    return PreprocessResult(image=image.astype(np.float32, copy=False), shifts=shifts, log=tuple(log))


def preprocess_channels(image: np.ndarray, steps: Sequence[Mapping[str, Any]],
                        channel_names: Sequence[str] | None = None) -> np.ndarray:
    """`preprocess_volume` on a channels-first (C, Z, Y, X) array, the layout training and
    inference hold images in; Z = 1 is a 2-D image (its steps run in 2-D).

    Returns the preprocessed (C, Z', Y', X') float32 array (a ``crop`` step makes it smaller),
    or ``image`` itself when there are no steps. ``channel_names`` lets ``register_slices``
    name the detector it reads the drift from.
    """
    if not steps:
        return image
    flat = image[:, 0] if image.shape[1] == 1 else image
    out = preprocess_volume(flat, steps=[dict(s) for s in steps], multichannel=True,
                            channel_names=list(channel_names) if channel_names else None).image
    return out[:, None] if image.shape[1] == 1 else out

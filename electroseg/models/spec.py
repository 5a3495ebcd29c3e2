"""Model specification and the checkpoint contract shared by training and inference.

Checkpoint contract
-------------------
A checkpoint written by :mod:`electroseg.training` is a Lightning checkpoint (a dict saved
with ``torch.save``) that loads with ``torch.load(path, map_location="cpu", weights_only=True)``
and contains:

- ``checkpoint["electroseg"]``: ``ModelSpec.to_dict()`` -- plain JSON-able types only;
- ``checkpoint["state_dict"]``: the network weights under keys prefixed ``"net."`` (the
  LightningModule holds the network as ``self.net``); other keys may exist and are ignored.

Read the file with :func:`read_checkpoint` (clear errors for missing, corrupt or foreign
files), then rebuild the network with :func:`model_from_checkpoint` (or
:func:`spec_from_checkpoint` then :func:`build_model` and ``load_state_dict``). Networks are constructed only from the
allow-list :data:`MODEL_REGISTRY`, never from class paths stored in a checkpoint.

How a network is applied (both training and inference follow this):

1. Each input channel (detector, in ``spec.channels`` order) of the whole volume is mapped
   to [0, 1] with :func:`electroseg.models.normalize_intensity` and ``spec.normalization``,
   after the ``spec.preprocess`` steps (plain dicts; [] means none).
2. ``unet3d``: input (N, C, Z, Y, X), C = ``len(spec.channels)``.
   ``multichannel2d``: one Z slice at a time, input (N, C * (2k + 1), Y, X) built by
   :func:`electroseg.models.stack_context` with k = ``spec.context_slices`` (edge slices
   repeated at the volume ends). 2-D images are treated as a volume of one slice.
3. Output logits (N, len(spec.phases), ...); ``argmax`` over channels gives phase index i =
   ``spec.phases[i]``. Patch sizes must be multiples of ``model.divisor`` per axis.
4. When ``spec.logit_bias`` is set (a model calibrated to known volume fractions, see
   :mod:`electroseg.models.logit_bias`), it is added to the logits of phase i before the
   argmax; :func:`model_from_checkpoint` returns a network that already does this.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import torch
from torch import nn

from electroseg.errors import InputError
from electroseg.models.networks import MultiChannel2D, UNet3D

__all__ = [
    "FORMAT_VERSION",
    "MODEL_REGISTRY",
    "ModelSpec",
    "build_model",
    "spec_from_checkpoint",
    "model_from_checkpoint",
    "LoadedModel",
    "LogitBias",
    "network_from_checkpoint",
    "with_logit_bias",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MODEL_REGISTRY: dict[str, type[nn.Module]] = {"unet3d": UNet3D, "multichannel2d": MultiChannel2D}
_KWARG_NAMES = {"in_channels", "out_channels", "channels", "strides", "kernel_sizes", "norm"}


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild and apply a trained network (plain data only).

    Attributes
    ----------
    name : str
        Key of :data:`MODEL_REGISTRY`: ``"unet3d"`` or ``"multichannel2d"``.
    kwargs : dict
        Resolved constructor arguments (JSON-able): in_channels, out_channels, channels,
        strides, kernel_sizes and norm ("batch" or "instance"; absent in checkpoints of
        electroseg < 0.2, which means "instance").
    phases : tuple of str
        Output classes in order.
    channels : tuple of str
        Detector names in input order.
    voxel_size : tuple of float or None
        Voxel size (µm) of the training data, (z, y, x) or (y, x).
    patch_size : tuple of int
        Training patch size (spatial axes of the network input).
    context_slices : int
        k for 2.5D models (in_channels = len(channels) * (2k + 1)); 0 otherwise.
    normalization : dict
        Argument of :func:`normalize_intensity`, e.g.
        ``{"method": "percentile", "lower": 0.5, "upper": 99.5}``.
    preprocess : tuple of dict
        Preprocessing steps applied before normalisation, or ().
    logit_bias : tuple of float or None
        Per-phase offsets added to the logits (volume-fraction calibration), or None.
    temperature : float or None
        Probabilities are ``softmax(logits / temperature)`` (fitted on held-out labels so that
        the probabilities are honest; the labels do not depend on it), or None (1).
    format_version : int
    """

    name: str
    kwargs: Mapping[str, Any]
    phases: tuple[str, ...]
    channels: tuple[str, ...]
    voxel_size: tuple[float, ...] | None
    patch_size: tuple[int, ...]
    context_slices: int = 0
    normalization: Mapping[str, Any] = field(
        default_factory=lambda: {"method": "percentile", "lower": 0.5, "upper": 99.5}
    )
    preprocess: tuple[Mapping[str, Any], ...] = ()
    logit_bias: tuple[float, ...] | None = None
    temperature: float | None = None
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        # Canonical plain types so that a spec equals its to_dict/from_dict round trip.
        object.__setattr__(self, "kwargs", _plain(dict(self.kwargs)))
        object.__setattr__(self, "normalization", _plain(dict(self.normalization)))
        object.__setattr__(self, "preprocess", tuple(_plain(dict(p)) for p in self.preprocess))
        object.__setattr__(self, "phases", tuple(self.phases))
        object.__setattr__(self, "channels", tuple(self.channels))
        object.__setattr__(self, "patch_size", tuple(int(p) for p in self.patch_size))
        if self.voxel_size is not None:
            object.__setattr__(self, "voxel_size", tuple(float(v) for v in self.voxel_size))
        if self.logit_bias is not None:
            object.__setattr__(self, "logit_bias", tuple(float(v) for v in self.logit_bias))
        if self.temperature is not None:
            object.__setattr__(self, "temperature", float(self.temperature))
        _validate_spec(self)

    def to_dict(self) -> dict:
        """Plain dict of lists, numbers and strings (safe for ``weights_only`` loading)."""
        out = asdict(self)
        out["kwargs"] = _plain(dict(self.kwargs))
        out["normalization"] = _plain(dict(self.normalization))
        out["preprocess"] = [_plain(dict(p)) for p in self.preprocess]
        for key in ("phases", "channels", "patch_size"):
            out[key] = list(out[key])
        out["voxel_size"] = None if self.voxel_size is None else [float(v) for v in self.voxel_size]
        out["logit_bias"] = None if self.logit_bias is None else list(self.logit_bias)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "model spec") -> "ModelSpec":
        """Rebuild from :meth:`to_dict` output; raises InputError naming ``source`` if invalid."""
        if not isinstance(data, Mapping):
            raise InputError(f"{source}: expected a model spec mapping, got {type(data).__name__}")
        required = {"name", "kwargs", "phases", "channels", "voxel_size", "patch_size"}
        missing = sorted(required - set(data))
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if missing or unknown:
            raise InputError(f"{source}: model spec missing keys {missing}, unknown keys {unknown}")
        version = int(data.get("format_version", FORMAT_VERSION))
        if version > FORMAT_VERSION:
            raise InputError(
                f"{source}: checkpoint format_version {version} is newer than this electroseg "
                f"understands ({FORMAT_VERSION}); upgrade electroseg"
            )
        vs = data["voxel_size"]
        try:
            return cls(
                name=str(data["name"]),
                kwargs=dict(data["kwargs"]),
                phases=tuple(str(p) for p in data["phases"]),
                channels=tuple(str(c) for c in data["channels"]),
                voxel_size=None if vs is None else tuple(float(v) for v in vs),
                patch_size=tuple(int(p) for p in data["patch_size"]),
                context_slices=int(data.get("context_slices", 0)),
                normalization=dict(data.get("normalization") or {"method": "none"}),
                preprocess=tuple(dict(p) for p in data.get("preprocess") or ()),
                logit_bias=None if data.get("logit_bias") is None else tuple(float(v) for v in data["logit_bias"]),
                temperature=None if data.get("temperature") is None else float(data["temperature"]),
                format_version=version,
            )
        except InputError as err:
            raise InputError(f"{source}: {err}") from None
        except (TypeError, ValueError) as err:
            raise InputError(f"{source}: malformed model spec ({err})") from None


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item()
    return obj


def _validate_spec(spec: ModelSpec) -> None:
    if spec.name not in MODEL_REGISTRY:
        raise InputError(f"unknown model name {spec.name!r}; expected one of {sorted(MODEL_REGISTRY)}")
    unknown = sorted(set(spec.kwargs) - _KWARG_NAMES)
    if unknown:
        raise InputError(f"model {spec.name!r}: unknown constructor arguments {unknown}")
    if spec.context_slices < 0 or (spec.name == "unet3d" and spec.context_slices != 0):
        raise InputError(
            f"model {spec.name!r}: context_slices must be >= 0 (0 for unet3d), got {spec.context_slices}"
        )
    expected_in = len(spec.channels) * (2 * spec.context_slices + 1)
    if int(spec.kwargs.get("in_channels", -1)) != expected_in:
        raise InputError(
            f"model {spec.name!r}: in_channels={spec.kwargs.get('in_channels')} does not match "
            f"{len(spec.channels)} detector channel(s) x {2 * spec.context_slices + 1} slice(s) = {expected_in}"
        )
    if int(spec.kwargs.get("out_channels", -1)) != len(spec.phases):
        raise InputError(
            f"model {spec.name!r}: out_channels={spec.kwargs.get('out_channels')} does not match "
            f"{len(spec.phases)} phases {list(spec.phases)}"
        )
    if spec.temperature is not None and not 0 < spec.temperature < 100:
        raise InputError(f"model {spec.name!r}: temperature must be in (0, 100), got {spec.temperature}")
    if spec.logit_bias is not None and len(spec.logit_bias) != len(spec.phases):
        raise InputError(
            f"model {spec.name!r}: logit_bias {list(spec.logit_bias)} needs one value per phase {list(spec.phases)}"
        )


def build_model(spec: ModelSpec) -> nn.Module:
    """Construct the (untrained) network described by ``spec`` from the allow-list registry."""
    cls = MODEL_REGISTRY[spec.name]
    return cls(**dict(spec.kwargs))


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load an electroseg checkpoint file as a dict, with one clear error for any bad file.

    ``torch.load(path, map_location="cpu", weights_only=True)``: a checkpoint can never run
    code. Raises :class:`~electroseg.errors.InputError` when the file is missing, is not a
    torch checkpoint, is corrupt or truncated, holds objects ``weights_only`` refuses, or has
    no valid ``electroseg`` entry.
    """
    from electroseg.models.pretrained import resolve_checkpoint

    path = resolve_checkpoint(path)  # pretrained:NAME -> the shipped file
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found (expected a .ckpt file from electroseg train)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - corrupt bytes make torch's unpickler raise
        # KeyError, IndexError, struct.error, UnpicklingError, RuntimeError ... : the call reads
        # only this file, so any failure here means the file is not a usable checkpoint.
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"{path}: not a readable checkpoint (corrupt or truncated? {first[:200]})") from None
    spec_from_checkpoint(checkpoint, source=str(path))
    return checkpoint


def spec_from_checkpoint(checkpoint: Mapping[str, Any], *, source: str = "checkpoint") -> ModelSpec:
    """Read and validate the ModelSpec stored under ``checkpoint["electroseg"]``."""
    if not isinstance(checkpoint, Mapping) or "electroseg" not in checkpoint:
        raise InputError(
            f"{source}: not an electroseg checkpoint (expected a dict with an 'electroseg' entry "
            f"written by `electroseg train`)"
        )
    return ModelSpec.from_dict(checkpoint["electroseg"], source=source)


class LogitBias(nn.Module):
    """``network(x) + bias`` per output channel: a volume-fraction-calibrated network.

    The bias is a float32 buffer, so under bf16 autocast the sum (and the argmax) is float32.
    """

    def __init__(self, network: nn.Module, bias) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("bias", torch.as_tensor(bias, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.network(x)
        return logits + self.bias.view(1, -1, *([1] * (logits.ndim - 2)))


@dataclass(frozen=True)
class LoadedModel:
    """A network rebuilt from a checkpoint, with its spec and, when training had held-out
    slices, the metric errors measured on them (``SliceErrors.to_dict()`` form, else None)."""

    network: nn.Module
    spec: ModelSpec
    slice_errors: dict | None = None
    feature_length: float | None = None
    """Largest usual feature size of the training images (pixels; the shipped models record it
    in models.json): ``predict_volume(scale="auto")`` shrinks an image whose features are larger."""
    low_confidence_warning: float | None = None
    """Share of low-confidence voxels from which ``electroseg predict`` warns that the
    prediction is likely poor (measured per shipped model on images with truth,
    ``benchmarks/confidence_flag.py``; recorded in models.json). None: no warning."""


def model_from_checkpoint(checkpoint: Mapping[str, Any], *, source: str = "checkpoint") -> LoadedModel:
    """Rebuild the trained network of a loaded checkpoint dict (weights under ``net.``).

    ``checkpoint`` is what ``torch.load(path, weights_only=True)`` returned; ``source`` (the
    file name) is quoted in errors. The model comes back in eval mode.
    """
    spec = spec_from_checkpoint(checkpoint, source=source)
    errors = checkpoint.get("electroseg_slice_errors")
    if errors is not None and "voxel_joint" not in errors:
        logger.warning("%s: its held-out slice errors were stored by an earlier electroseg (the hand labels' and "
                       "the segmentation's counts apart, not voxel by voxel): they are not used; retrain to "
                       "measure them again, or give hand_labels=", source)
        errors = None
    return LoadedModel(network=with_logit_bias(network_from_checkpoint(checkpoint, spec, source=source), spec),
                       spec=spec, slice_errors=errors)


def with_logit_bias(network: nn.Module, spec: ModelSpec) -> nn.Module:
    """``network`` itself, or wrapped in :class:`LogitBias` when ``spec.logit_bias`` is set."""
    return network if spec.logit_bias is None else LogitBias(network, spec.logit_bias).eval()


def network_weights(checkpoint: Mapping[str, Any], *, source: str = "checkpoint") -> dict[str, Any]:
    """The network's state dict: the ``net.`` weights of ``checkpoint`` with the prefix removed."""
    state = checkpoint.get("state_dict")
    if not isinstance(state, Mapping):
        raise InputError(f"{source}: checkpoint has no 'state_dict' with network weights")
    return {k[len("net."):]: v for k, v in state.items() if k.startswith("net.")}


def network_from_checkpoint(checkpoint: Mapping[str, Any], spec: ModelSpec, *,
                            source: str = "checkpoint") -> nn.Module:
    """The trained network (eval mode, no logit bias) from the ``net.`` weights of ``checkpoint``."""
    weights = network_weights(checkpoint, source=source)
    model = build_model(spec)
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise InputError(f"{source}: weights do not fit model {spec.name!r} ({first})") from None
    return model.eval()

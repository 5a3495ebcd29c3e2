"""What a checkpoint is, and handing it on: ``inspect``, a slim inference checkpoint, a bioimage.io package.

- :func:`inspect_checkpoint` gathers what a checkpoint holds: network, phases, channels, voxel
  size, normalisation, the training record (package versions, dataset, budget, held-out scores;
  ``checkpoint["electroseg_record"]``, written by ``electroseg train``) and whether it carries
  optimizer state. :func:`format_inspection` prints it for ``electroseg inspect``.
- :func:`slim_checkpoint` keeps what inference needs (spec, network weights, record): a few
  hundred kB instead of several MB with the optimizer's moments, loadable by every command.
- :func:`export_bioimageio` writes a bioimage.io model package (format 0.5): TorchScript weights
  that output per-phase probabilities (softmax, volume-fraction offsets included), the
  checkpoint's intensity window as pre-processing, axes with micrometre scales, a test input with
  the output electroseg gives for it, and a README. ``bioimageio.spec`` validates it and
  ``bioimageio.core`` runs it (ilastik, deepImageJ and the bioimage.io tools read the format).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from electroseg.errors import InputError
from electroseg.models.networks import count_parameters
from electroseg.models.normalization import normalize_intensity
from electroseg.models.spec import model_from_checkpoint, read_checkpoint

__all__ = ["inspect_checkpoint", "format_inspection", "slim_checkpoint", "export_bioimageio", "size_divisor"]

logger = logging.getLogger(__name__)

_SLIM_KEYS = ("electroseg", "electroseg_record", "epoch", "global_step")


def inspect_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON-able description of the checkpoint at ``path`` (see the module docstring).

    ``train_metrics`` is added from ``<run>/train_metrics.json`` when the checkpoint sits in
    ``<run>/checkpoints/`` of a training run (older checkpoints carry no record of their own).
    """
    import json

    from electroseg.models.pretrained import resolve_checkpoint

    path = resolve_checkpoint(path)  # pretrained:NAME -> the shipped file
    checkpoint = read_checkpoint(path)
    loaded = model_from_checkpoint(checkpoint, source=str(path))
    spec = loaded.spec
    normalization = dict(spec.normalization)
    info: dict[str, Any] = {
        "file": str(path), "bytes": path.stat().st_size,
        "network": {"name": spec.name, "parameters": count_parameters(loaded.network),
                    "features": list(spec.kwargs.get("channels", [])), "in_channels": spec.kwargs.get("in_channels"),
                    "norm": spec.kwargs.get("norm", "instance"), "patch_size": list(spec.patch_size),
                    "context_slices": spec.context_slices},
        "phases": list(spec.phases), "channels": list(spec.channels),
        "voxel_size_um": None if spec.voxel_size is None else list(spec.voxel_size),
        "normalization": normalization,
        "volume_fraction_offsets": None if spec.logit_bias is None else list(spec.logit_bias),
        "temperature": spec.temperature,
        "preprocess": [dict(step) for step in spec.preprocess],
        "epoch": checkpoint.get("epoch"), "global_step": checkpoint.get("global_step"),
        "optimizer_state": bool(checkpoint.get("optimizer_states")),
        "record": checkpoint.get("electroseg_record"),
    }
    metrics = path.parent.parent / "train_metrics.json"
    if path.parent.name == "checkpoints" and metrics.is_file():
        try:
            stored = json.loads(metrics.read_text())
            info["train_metrics"] = {k: stored.get(k) for k in ("validation", "held_out", "best_score",
                                                                 "global_step", "stopped_by") if k in stored}
        except (OSError, ValueError):
            pass
    return info


def format_inspection(info: Mapping[str, Any]) -> str:
    """The lines ``electroseg inspect`` prints."""
    net = info["network"]
    norm = info["normalization"]
    window = norm.get("bounds")
    lines = [
        f"checkpoint      {info['file']} ({info['bytes'] / 1e6:.2f} MB"
        f"{', with optimizer state' if info['optimizer_state'] else ', inference only'})",
        f"network         {net['name']}, {net['parameters']:,} parameters, features {net['features']}, "
        f"{net['norm']} norm, patch {net['patch_size']}"
        + (f", +-{net['context_slices']} context slices" if net["context_slices"] else ""),
        f"phases          {', '.join(f'{i} = {p}' for i, p in enumerate(info['phases']))}",
        f"channels        {', '.join(info['channels'])}",
        f"voxel size      {info['voxel_size_um']} um" if info["voxel_size_um"] else "voxel size      not recorded",
        f"normalisation   {norm.get('method')} (percentiles {norm.get('lower', 0.5)}-{norm.get('upper', 99.5)})"
        + (f", training window {window}" if window else ", each input by its own window"),
    ]
    if info["volume_fraction_offsets"]:
        lines.append(f"fraction offsets {info['volume_fraction_offsets']}")
    if info.get("temperature"):
        lines.append(f"temperature     {info['temperature']} (probabilities = softmax(logits / T), fitted on held-out labels)")
    if info["preprocess"]:
        lines.append(f"preprocess      {[step.get('name', step) for step in info['preprocess']]}")
    lines.append(f"trained         epoch {info['epoch']}, step {info['global_step']}")
    record = info.get("record") or {}
    if record:
        data = record.get("data", {})
        splits: dict[str, int] = {}
        for volume in data.get("volumes", []):
            splits[volume.get("split", "train")] = splits.get(volume.get("split", "train"), 0) + 1
        lines += [
            f"data            {data.get('name')}: " + ", ".join(f"{n} {s}" for s, n in splits.items()),
            f"budget          {record.get('global_step')} steps, stopped by {record.get('stopped_by')}, seed {record.get('seed')}",
            f"validation      {record.get('validation')}",
        ]
        held = record.get("held_out") or {}
        if held.get("mean_iou") is not None:
            lines.append(f"held-out IoU    mean {held['mean_iou']:.3f}; "
                         + ", ".join(f"{p} {v:.3f}" for p, v in held.get("iou", {}).items()))
        lines.append("versions        " + ", ".join(f"{k} {v}" for k, v in record.get("versions", {}).items()))
        machine = record.get("machine")
        if machine:  # recorded since electroseg trains record it; older checkpoints have none
            bf16 = {True: ", bf16 instructions", False: ", no bf16 instructions"}.get(machine.get("bf16_instructions"), "")
            lines.append(f"machine         {machine.get('processor')}, {machine.get('cpu_capability')}{bf16}, "
                         f"{machine.get('threads')} threads"
                         + (f", {machine['gpu']}" if machine.get("gpu") else f", {machine.get('device')}")
                         + (f"; trained in {record['precision']}" if record.get("precision") else ""))
    elif info.get("train_metrics"):
        held = info["train_metrics"].get("held_out") or {}
        lines.append(f"validation      {info['train_metrics'].get('validation')}")
        if held.get("mean_iou") is not None:
            lines.append(f"held-out IoU    mean {held['mean_iou']:.3f} (from train_metrics.json)")
    else:
        lines.append("record          none (a checkpoint from before electroseg recorded its training)")
    return "\n".join(lines)


def slim_checkpoint(source: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the inference part of ``source`` (spec, ``net.`` weights, record) to ``out``."""
    from electroseg.io import atomic_output

    checkpoint = read_checkpoint(source)
    model_from_checkpoint(checkpoint, source=str(source))  # the weights fit the spec
    slim = {k: checkpoint[k] for k in _SLIM_KEYS if k in checkpoint}
    slim["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}
    out = Path(out)
    with atomic_output(out) as tmp:
        torch.save(slim, tmp)
    return out


class _Probabilities(nn.Module):
    """The network (with its fraction offsets) followed by a softmax over phases at the
    checkpoint's temperature."""

    def __init__(self, network: nn.Module, temperature: float = 1.0) -> None:
        super().__init__()
        self.network = network
        self.temperature = float(temperature)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.network(x) / self.temperature, dim=1)


def size_divisor(kwargs: Mapping[str, Any], dims: int) -> list[int]:
    """Per spatial axis, the size every input must be a multiple of (product of the strides)."""
    strides = kwargs.get("strides") or [[2] * dims] * max(len(kwargs.get("channels", [1])) - 1, 0)
    out = [1] * dims
    for stride in strides:
        stride = [stride] * dims if isinstance(stride, int) else list(stride)
        out = [a * int(b) for a, b in zip(out, stride)]
    return out


def _test_input(spec, dims: int, seed: int) -> np.ndarray:
    """A smooth three-level random image in the training units, (C, [Z,] Y, X), float32; for a
    2.5-D model C = detectors x (2k + 1) context slices."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in spec.patch_size)
    bounds = spec.normalization.get("bounds")
    images = []
    per_detector = 2 * spec.context_slices + 1
    for index in range(len(spec.channels) * per_detector):
        channel = index // per_detector
        field = ndimage.gaussian_filter(rng.random(shape), 2.0)
        levels = np.digitize(field, np.quantile(field, [0.35, 0.7])) / 2.0 + rng.normal(0, 0.05, shape)
        lo, hi = (bounds[channel] if bounds else (0.0, 1.0))
        images.append((lo + levels * (hi - lo)).astype(np.float32))
    return np.stack(images)


def export_bioimageio(checkpoint: str | os.PathLike, out: str | os.PathLike, *, name: str | None = None,
                      authors: list[str] | None = None, license: str = "CC-BY-4.0",
                      test_input: np.ndarray | None = None, seed: int = 0) -> Path:
    """Write a bioimage.io model package folder (``rdf.yaml`` and its files) to ``out``.

    Parameters
    ----------
    checkpoint : path
        From ``electroseg train``.
    out : path
        A new folder (refused if it exists and is not empty).
    name, authors, license
        Package metadata; ``name`` defaults to ``electroseg <model> <phases>``.
    test_input : ndarray, optional
        (C, [Z,] Y, X) in the training units (e.g. a crop of a training image) whose spatial
        sizes are multiples of the network's down-sampling; default a generated image of one
        patch. The package's test output is what electroseg's network gives for it.

    Notes
    -----
    The input tensor is ``(batch, channel, [z,] y, x)``. For a 2.5-D model (``context_slices``
    k > 0) the channel axis holds each detector at slices ``z-k .. z+k`` (detector-major, named
    ``<detector>_m1``, ``<detector>_0``, ``<detector>_p1`` for k = 1), as electroseg stacks them. Pre-processing reproduces the checkpoint's intensity window: the
    stored training window (``scale_linear`` then ``clip`` to [0, 1]) when there is one, else
    each input's own percentiles (``scale_range`` then ``clip``). The output is the softmax over
    phases; its argmax is electroseg's label map for one window (electroseg's own ``predict``
    blends overlapping windows).
    """
    from bioimageio.spec import save_bioimageio_package_as_folder
    from bioimageio.spec.model import v0_5 as bio

    from electroseg import __version__

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"out: {out} exists and is not an empty folder; give a new folder for the package")
    raw = read_checkpoint(checkpoint)
    loaded = model_from_checkpoint(raw, source=str(checkpoint))
    spec = loaded.spec
    if spec.preprocess:
        raise InputError(f"{checkpoint}: the model preprocesses its input ({[dict(s) for s in spec.preprocess]}), "
                         "which a bioimage.io package cannot describe; export a model trained without preprocess steps")
    dims = len(spec.patch_size)
    method = spec.normalization.get("method", "percentile")
    bounds = spec.normalization.get("bounds")
    n_in = len(spec.channels) * (2 * spec.context_slices + 1)
    image = _test_input(spec, dims, seed) if test_input is None else np.asarray(test_input, np.float32)
    if image.ndim == dims:
        image = image[None]
    divisor = size_divisor(spec.kwargs, dims)
    if image.shape[0] != n_in or any(s % d for s, d in zip(image.shape[1:], divisor)) or image.ndim != dims + 1:
        raise InputError(f"test_input: expected shape ({n_in}, ...) with {dims} spatial sizes divisible by {divisor}, "
                         f"got {image.shape}")
    # the checkpoint's intensity window: applied here to make the test output, and described as
    # the package's pre-processing (a 2.5-D model's channels are detector-major)
    spatial = "zyx"[-dims:]
    per_detector = 2 * spec.context_slices + 1
    if method in ("auto", "dataset") and bounds:
        windows = np.array([bounds[c // per_detector] for c in range(n_in)], float)
        normalized = np.stack([normalize_intensity(image[c], {"method": "dataset", "bounds": [list(w)]})
                               for c, w in enumerate(windows)])
        gain, offset = (1.0 / (windows[:, 1] - windows[:, 0])), (-windows[:, 0] / (windows[:, 1] - windows[:, 0]))
        preprocessing = [bio.ScaleLinearDescr(kwargs=bio.ScaleLinearAlongAxisKwargs(
            axis=bio.AxisId("channel"), gain=gain.tolist(), offset=offset.tolist())) if n_in > 1 else
            bio.ScaleLinearDescr(kwargs=bio.ScaleLinearKwargs(gain=float(gain[0]), offset=float(offset[0])))]
    elif method == "none":
        normalized, preprocessing = image.copy(), []
    else:
        lower, upper = (0.0, 100.0) if method == "minmax" else (float(spec.normalization.get("lower", 0.5)),
                                                                 float(spec.normalization.get("upper", 99.5)))
        normalized = np.stack([normalize_intensity(image[c], {"method": "percentile", "lower": lower, "upper": upper})
                               for c in range(n_in)])
        preprocessing = [bio.ScaleRangeDescr(kwargs=bio.ScaleRangeKwargs(
            axes=[bio.AxisId(a) for a in spatial], min_percentile=lower, max_percentile=upper, eps=1e-6))]
    wrapper = _Probabilities(loaded.network, spec.temperature or 1.0).eval()
    with torch.no_grad():
        example = torch.from_numpy(normalized[None])
        traced = torch.jit.trace(wrapper, example, check_trace=False)
        expected = traced(example).numpy()
    from electroseg.io import atomic_output

    voxel = list(spec.voxel_size) if spec.voxel_size is not None else [1.0] * dims
    unit = "micrometer" if spec.voxel_size is not None else None
    channel_names = [(f"{c}_{'m' if dz < 0 else 'p'}{abs(dz)}" if dz else f"{c}_0") if spec.context_slices else c
                     for c in spec.channels for dz in range(-spec.context_slices, spec.context_slices + 1)]
    if preprocessing:
        preprocessing.append(bio.ClipDescr(kwargs=bio.ClipKwargs(min=0.0, max=1.0)))
    record = raw.get("electroseg_record") or {}
    with tempfile.TemporaryDirectory() as staging, atomic_output(out) as package:
        folder = Path(staging)
        np.save(folder / "test_input.npy", image[None])
        np.save(folder / "test_output.npy", expected)
        torch.jit.save(traced, str(folder / "weights_torchscript.pt"))
        (folder / "README.md").write_text(_package_readme(spec, record, channel_names, method, bounds, __version__))
        input_axes = [bio.BatchAxis(), bio.ChannelAxis(channel_names=[bio.Identifier(c) for c in channel_names])]
        output_axes = [bio.BatchAxis(), bio.ChannelAxis(channel_names=[bio.Identifier(p) for p in spec.phases])]
        for axis, scale, step in zip(spatial, voxel, divisor):
            input_axes.append(bio.SpaceInputAxis(id=bio.AxisId(axis), size=bio.ParameterizedSize(min=step, step=step),
                                                 scale=float(scale), unit=unit))
            output_axes.append(bio.SpaceOutputAxis(id=bio.AxisId(axis), scale=float(scale), unit=unit,
                                                   size=bio.SizeReference(tensor_id=bio.TensorId("raw"),
                                                                          axis_id=bio.AxisId(axis))))
        descr = bio.ModelDescr(
            name=name or f"electroseg {spec.name} {' '.join(spec.phases)}",
            description=(f"Segments {', '.join(spec.channels)} images of battery electrodes into "
                         f"{', '.join(spec.phases)} (electroseg {spec.name})."),
            authors=[bio.Author(name=a) for a in (authors or [])],
            license=license,
            documentation=bio.FileDescr(source=folder / "README.md"),
            tags=["electroseg", "battery-electrode", "semantic-segmentation", f"{dims}d", *spec.phases],
            inputs=[bio.InputTensorDescr(id=bio.TensorId("raw"), axes=input_axes,
                                         test_tensor=bio.FileDescr(source=folder / "test_input.npy"),
                                         preprocessing=preprocessing)],
            outputs=[bio.OutputTensorDescr(id=bio.TensorId("probabilities"), axes=output_axes,
                                           test_tensor=bio.FileDescr(source=folder / "test_output.npy"))],
            weights=bio.WeightsDescr(torchscript=bio.TorchscriptWeightsDescr(
                source=folder / "weights_torchscript.pt", pytorch_version=bio.Version(torch.__version__.split("+")[0]))),
            config={"electroseg": {"version": __version__, "spec": spec.to_dict(), "record": record}},
        )
        save_bioimageio_package_as_folder(descr, output_path=package)
    logger.info("wrote bioimage.io package %s", out)
    return out


def _package_readme(spec, record: Mapping[str, Any], channel_names, method: str, bounds, version: str) -> str:
    held = (record or {}).get("held_out") or {}
    data = (record or {}).get("data") or {}
    window = (f"the training window {bounds} per detector mapped to [0, 1] and clipped" if method in ("auto", "dataset")
              and bounds else "each input's own percentile window mapped to [0, 1] and clipped")
    lines = [
        f"# electroseg {spec.name}: {', '.join(spec.phases)}",
        "",
        f"Semantic segmentation of battery-electrode images, exported by electroseg {version}.",
        "",
        f"- Input `raw`: (batch, channel, {', '.join('zyx'[-len(spec.patch_size):])}); channels {channel_names}.",
        f"- Pre-processing: {window}.",
        f"- Output `probabilities`: softmax over the phases {list(spec.phases)} (argmax = label).",
        f"- Voxel size of the training data: {list(spec.voxel_size) if spec.voxel_size else 'not recorded'} um.",
        f"- Training patch: {list(spec.patch_size)}; inputs must be multiples of the network's down-sampling.",
    ]
    if data:
        lines.append(f"- Trained on dataset `{data.get('name')}` ({len(data.get('volumes', []))} volumes).")
    if held.get("mean_iou") is not None:
        lines.append(f"- Held-out mean IoU: {held['mean_iou']:.3f} ({held.get('iou')}).")
    lines += ["", "electroseg's own `predict` blends overlapping windows with Gaussian weights; other tools",
              "that tile the input may differ slightly near window edges."]
    return "\n".join(lines) + "\n"

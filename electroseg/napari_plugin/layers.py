"""Phase colours and the two label conventions the plugin converts between (no napari, no Qt).

- **Label files** (every electroseg command): value i = phase i, 255 = unlabelled, the phase
  names recorded in the file.
- **Painted labels** in napari: 0 = unlabelled (napari's eraser paints 0), phase i painted as
  i + 1. :func:`to_hand_labels` and :func:`to_painted` convert; the layer's colours say which
  value is which phase either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from electroseg import DEFAULT_PHASES
from electroseg.errors import InputError
from electroseg.io.labels import UNLABELLED  # the value of an unlabelled voxel in a hand-label file

__all__ = ["UNLABELLED", "phase_colours", "colour_dict", "to_hand_labels", "to_painted", "labelled_slices",
           "output_kind", "output_layers", "labels_layer_kwargs"]

#: Fixed colours of the usual phases, the same in every viewer session.
NAMED_COLOURS = {"pore": "#5e3c99", "cbd": "#e08a1e", "am": "#7fb8e6", "solid": "#59a14f",
                 "binder": "#e08a1e", "carbon": "#edc948", "crack": "#ff9da7", "pt": "#bab0ac"}
_OTHER_COLOURS = ("#59a14f", "#b07aa1", "#edc948", "#ff9da7", "#9c755f", "#76b7b2", "#f28e2b", "#4e79a7")


def phase_colours(phases: Sequence[str]) -> list[str]:
    """One colour per phase: fixed for the usual names, otherwise from a palette by position.

    >>> phase_colours(["pore", "cbd", "am"])
    ['#5e3c99', '#e08a1e', '#7fb8e6']
    """
    return [NAMED_COLOURS.get(str(p).lower(), _OTHER_COLOURS[i % len(_OTHER_COLOURS)])
            for i, p in enumerate(phases)]


def colour_dict(phases: Sequence[str], *, painted: bool) -> dict[int | None, str]:
    """``{value: colour}`` for a napari Labels layer; ``painted``: values are phase + 1 (0 =
    unlabelled), else phase indices (255 = unlabelled). Other values are transparent.

    >>> colour_dict(["pore", "am"], painted=True)
    {1: '#5e3c99', 2: '#7fb8e6', None: 'transparent', 0: 'transparent'}
    """
    offset = 1 if painted else 0
    colours: dict[int | None, str] = {i + offset: c for i, c in enumerate(phase_colours(phases))}
    colours[None] = "transparent"
    colours[0 if painted else UNLABELLED] = "transparent"
    return colours


def to_hand_labels(painted: np.ndarray, phases: Sequence[str], *, name: str = "labels layer") -> np.ndarray:
    """Painted labels (0 = unlabelled, phase i = i + 1) as a hand-label array (255 = unlabelled).

    >>> to_hand_labels(np.array([[0, 1], [2, 3]]), ["pore", "cbd", "am"]).tolist()
    [[255, 0], [1, 2]]
    """
    painted = np.asarray(painted)
    if painted.dtype.kind not in "iub":
        raise InputError(f"{name}: expected integer labels, got {painted.dtype}")
    top = int(painted.max()) if painted.size else 0
    if top > len(phases) or (painted.size and int(painted.min()) < 0):
        raise InputError(f"{name}: painted values must be 0 (unlabelled) to {len(phases)} "
                         f"(phases {list(phases)} painted as 1..{len(phases)}), found {top}")
    out = np.full(painted.shape, UNLABELLED, np.uint8)
    mask = painted > 0
    out[mask] = (painted[mask] - 1).astype(np.uint8)
    return out


def to_painted(hand_labels: np.ndarray) -> np.ndarray:
    """A hand-label array (255 = unlabelled) as painted labels (0 = unlabelled, phase i = i + 1).

    >>> to_painted(np.array([255, 0, 2], np.uint8)).tolist()
    [0, 1, 3]
    """
    hand_labels = np.asarray(hand_labels)
    out = np.zeros(hand_labels.shape, np.uint8)
    mask = hand_labels != UNLABELLED
    out[mask] = (hand_labels[mask] + 1).astype(np.uint8)
    return out


def labelled_slices(painted: np.ndarray) -> list[int]:
    """Z indices holding any painted label (a 2-D image is slice 0).

    >>> labelled_slices(np.array([[[0, 0]], [[0, 2]], [[1, 0]]]))
    [1, 2]
    """
    from electroseg.io import labelled_slices as slices_holding_labels

    return slices_holding_labels(painted, unlabelled=0)


def output_kind(path: str | Path) -> str | None:
    """``"predict"``, ``"segment"`` or ``"labels"`` when ``path`` is an electroseg output that
    :func:`output_layers` opens, else None (reads markers and metadata only)."""
    from electroseg.io import recorded_phases

    path = Path(path)
    if path.is_dir() and (path / "prediction.json").is_file() and \
            any((path / n).exists() for n in ("labels.tif", "labels.zarr")):
        return "predict"
    if path.is_dir() and _run_scan(path) is not None:
        return "run"
    if path.is_dir() and (path / "thresholds.json").is_file() and (path / "labels.tif").is_file():
        return "segment"
    if path.suffix.lower() in (".tif", ".tiff", ".zarr") and recorded_phases(path):
        return "labels"
    return None


def output_layers(path: str | Path) -> list[tuple[Any, dict, str]] | None:
    """napari layer data for an electroseg output, or None when ``path`` is not one.

    - a ``predict`` folder (``prediction.json``): the labels, the class probabilities (one image
      layer per phase), the uncertainty map and the input image when its file is still there;
    - a ``segment`` folder (``thresholds.json``): the labels and the confidence map;
    - an ``electroseg run`` folder: the (preprocessed) scan, its truth and hand labels when it
      has them, the classical labels and confidence, the learned labels;
    - a label TIFF or OME-Zarr that records its phase names: the labels; a file with unlabelled
      voxels (255, hand labels) opens as painted labels, ready to paint on.

    Labels layers carry their phase names (``metadata["phases"]``, the ``phase`` feature shown
    under the cursor) and fixed colours (``metadata["colours"]``, {value: colour}).
    """
    import json

    from electroseg.io import read_volume, recorded_phases

    path = Path(path)
    if path.is_dir() and (path / "prediction.json").is_file():
        record = json.loads((path / "prediction.json").read_text())
        labels_file = next((path / n for n in ("labels.tif", "labels.zarr") if (path / n).exists()), None)
        if labels_file is None:
            return None
        layers = []
        source = _input_path(record)
        if source is not None:
            image = read_volume(source, allow_channels=True)
            layers.append(_image_layer(image, Path(source).stem))
        phases = recorded_phases(labels_file) or tuple(record.get("phases") or ())
        labels = _read_named(labels_file, phases)
        layers.append(_labels_layer(labels.numpy(), phases, labels.voxel_size, f"{path.name} labels"))
        if (path / "probabilities.zarr").is_dir():
            probs = read_volume(path / "probabilities.zarr", allow_channels=True)
            names = probs.channels or tuple(f"phase {i}" for i in range(probs.shape[0]))
            for i, phase in enumerate(names):
                layers.append(_map_layer(np.asarray(probs.data[i]), probs.voxel_size, f"p({phase})", "probability",
                                         "gray", contrast_limits=_limits(probs.data)))
        if (path / "uncertainty.tif").is_file():
            entropy = read_volume(path / "uncertainty.tif")
            layers.append(_map_layer(entropy.numpy().astype(np.float32), entropy.voxel_size,
                                     f"{path.name} uncertainty", "uncertainty", "magma", contrast_limits=(0.0, 1.0)))
        return layers
    scan = _run_scan(path) if path.is_dir() else None
    if scan is not None:
        return _run_layers(path, scan)
    if path.is_dir() and (path / "thresholds.json").is_file() and (path / "labels.tif").is_file():
        phases = recorded_phases(path / "labels.tif") or ()
        labels = _read_named(path / "labels.tif", phases)
        layers = [_labels_layer(labels.numpy(), phases, labels.voxel_size, f"{path.name} labels")]
        if (path / "confidence.tif").is_file():
            confidence = read_volume(path / "confidence.tif")
            layers.append(_map_layer(confidence.numpy(), confidence.voxel_size, f"{path.name} confidence",
                                     "confidence", "viridis"))
        return layers
    if path.suffix.lower() in (".tif", ".tiff", ".zarr"):
        phases = recorded_phases(path)
        if not phases:
            return None
        labels = _read_named(path, phases)
        data = labels.numpy()
        if (data == UNLABELLED).any():
            return [_labels_layer(to_painted(data), phases, labels.voxel_size, f"{path.stem} hand labels",
                                  painted=True)]
        return [_labels_layer(data, phases, labels.voxel_size, f"{path.stem} labels")]
    return None


def _run_scan(path: Path) -> dict | None:
    """The scan record of an ``electroseg run`` folder (``classical/stage.json``), else None."""
    import json

    stage = path / "classical" / "stage.json"
    if not stage.is_file() or not (path / "classical" / "labels.tif").is_file():
        return None
    try:
        scan = json.loads(stage.read_text())["settings"]["scan"]
    except (ValueError, KeyError, TypeError):
        return None
    return scan if isinstance(scan, dict) and isinstance(scan.get("images"), dict) else None


def _run_layers(path: Path, scan: dict) -> list[tuple[Any, dict, str]]:
    """Layers of a run folder, bottom to top: images, truth, hand labels, classical, learned."""
    from electroseg.io import read_labels, read_volume

    phases = tuple(scan.get("phases") or ())
    layers = []
    for channel, image in (scan.get("images") or {}).items():
        if Path(image).is_file():
            volume = read_volume(image)
            layers.append(_image_layer(volume, f"{path.name} {channel}"))
    stored = {"phases": phases or DEFAULT_PHASES, "label_values": scan.get("label_values"),
              "ignore_value": int(scan.get("ignore_value", UNLABELLED))}  # the dataset's files
    if scan.get("truth") and Path(scan["truth"]).is_file():
        truth = read_labels(scan["truth"], **stored)
        kwargs = labels_layer_kwargs(phases, painted=False, name=f"{path.name} truth", voxel_size=truth.voxel_size)
        layers.append((truth.numpy(), {**kwargs, "visible": False}, "labels"))
    if scan.get("hand_labels") and Path(scan["hand_labels"]).is_file():
        hand = read_labels(scan["hand_labels"], **stored)
        layers.append(_labels_layer(to_painted(hand.numpy()), phases, hand.voxel_size,
                                    f"{path.name} hand labels", painted=True))
    confidence = path / "classical" / "confidence.tif"
    if confidence.is_file():
        volume = read_volume(confidence)
        layers.append(_map_layer(volume.numpy(), volume.voxel_size, f"{path.name} classical confidence",
                                 "confidence", "viridis"))
    learned = (path / "predict" / "labels.tif").is_file()
    for stage, name in (("classical", "classical"), ("predict", "learned")):
        if (path / stage / "labels.tif").is_file():
            labels = _read_named(path / stage / "labels.tif", phases)
            data, kwargs, kind = _labels_layer(labels.numpy(), phases, labels.voxel_size, f"{path.name} {name}")
            layers.append((data, {**kwargs, "visible": stage == "predict" or not learned}, kind))
    return layers


def _read_named(path: Path, phases: Sequence[str]):
    """An electroseg label file, by the phases it records (else ``phases``, else the default three)."""
    from electroseg.io import read_labels, recorded_phases

    return read_labels(path, phases=recorded_phases(path) or tuple(phases) or DEFAULT_PHASES)


def labels_layer_kwargs(phases: Sequence[str], *, painted: bool, name: str,
                        voxel_size: Sequence[float] | None = None) -> dict:
    """Keyword arguments of a napari Labels layer showing ``phases`` in their fixed colours."""
    phases = [str(p) for p in phases]
    offset = 1 if painted else 0
    values = list(range(offset, offset + len(phases)))
    kwargs = {"name": name, "metadata": {"phases": phases, "painted": painted,
                                         "colours": colour_dict(phases, painted=painted)},
              "features": {"index": values, "phase": phases} if phases else None,
              "opacity": 0.6}
    if voxel_size is not None:
        kwargs["scale"] = tuple(float(v) for v in voxel_size)
    return kwargs


def _labels_layer(data: np.ndarray, phases: Sequence[str], voxel_size, name: str, *, painted: bool = False):
    return data, labels_layer_kwargs(phases, painted=painted, name=name, voxel_size=voxel_size), "labels"


def _map_layer(data: np.ndarray, voxel_size, name: str, kind: str, colormap: str, **extra: Any):
    """A hidden image layer of a per-voxel map (probability, uncertainty, confidence), marked as
    an electroseg output so that the widget does not offer it as an input image."""
    return data, {"name": name, "colormap": colormap, "metadata": {"electroseg_output": kind},
                  "scale": _scale(voxel_size), "visible": False, **extra}, "image"


def _image_layer(volume: Any, name: str) -> tuple[Any, dict, str]:
    data = volume.numpy()
    kwargs: dict[str, Any] = {"name": name, "scale": _scale(volume.voxel_size)}
    if volume.is_multichannel:
        kwargs.update(channel_axis=0, name=[f"{name} {c}" for c in volume.channels])
    return data, kwargs, "image"


def _input_path(record: dict) -> str | None:
    """The input image file named in prediction.json, when it still exists."""
    text = str(record.get("input") or "")
    candidate = Path(text)
    return str(candidate) if text and candidate.exists() else None


def _scale(voxel_size) -> tuple[float, ...] | None:
    return None if voxel_size is None else tuple(float(v) for v in voxel_size)


def _limits(data) -> tuple[float, float]:
    return (0.0, 255.0) if np.dtype(data.dtype) == np.uint8 else (0.0, 1.0)

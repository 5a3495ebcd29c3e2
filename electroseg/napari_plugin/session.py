"""What the widget's buttons do, as plain functions (no Qt, no napari): the widget runs them in a
background thread; scripts and tests call them directly.

- :func:`save_dataset`: images and painted labels -> a dataset config folder that
  ``electroseg train --config-dir FOLDER data=NAME`` accepts as it is;
- :func:`train_config` / :func:`train_model`: train or fine-tune on it (progress per epoch,
  cancellable);
- :func:`predict`: labels, probabilities and the uncertainty map of the images;
- :func:`suggest`: the slices to label next;
- :func:`analyse`: the headline metrics as table rows.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from electroseg.errors import InputError
from electroseg.napari_plugin.layers import labelled_slices, to_hand_labels

__all__ = ["SavedDataset", "save_dataset", "default_start", "train_config", "train_model", "predict",
           "suggest", "analyse", "PredictResult"]


@dataclass(frozen=True)
class SavedDataset:
    """Where :func:`save_dataset` wrote a dataset: ``config_dir/data/<name>.yaml`` with its image
    and hand-label files beside it."""

    config_dir: Path
    name: str
    config: Path
    images: dict[str, Path]
    hand_labels: Path
    labelled_slices: tuple[int, ...]

    def train_command(self, out: str = "runs/NAME") -> str:
        """The shell command that trains on it."""
        return f"electroseg train --config-dir {self.config_dir} data={self.name} model=multichannel2d " \
               f"out={out.replace('NAME', self.name)}"


def _name(text: str, what: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]+", "_", str(text)).strip("_")
    if not name:
        raise InputError(f"{what}: expected a name with letters or digits, got {text!r}")
    return name


def save_dataset(folder: str | Path, name: str, images: Mapping[str, np.ndarray], painted: np.ndarray,
                 phases: Sequence[str], *, voxel_size: Sequence[float] | None = None, depth_axis: int = 1,
                 overwrite: bool = True) -> SavedDataset:
    """Write a dataset config and its files into ``folder``.

    ``images``: {detector name: (Z, Y, X) or (Y, X) array}, same shape each; ``painted``: the
    painted labels (0 = unlabelled, phase i = i + 1) of that shape; ``voxel_size`` in µm (None:
    unknown). Writes ``folder/data/<name>.yaml``, ``folder/images/<name>_<detector>.tif`` and
    ``folder/labels/<name>_hand_labels.tif`` (255 = unlabelled, phase names recorded). Every
    input is checked before anything is written.
    """
    import yaml

    from electroseg.io import write_tiff
    from electroseg.io._validate import check_voxel_size

    name = _name(name, "dataset name")
    phases = [str(p).strip() for p in phases if str(p).strip()]
    if len(phases) < 2 or len(set(phases)) != len(phases):
        raise InputError(f"phases: expected two or more different names, got {phases}")
    if not images:
        raise InputError("images: expected at least one image layer (one per detector)")
    arrays = {_name(k, "detector name"): np.asarray(v) for k, v in images.items()}
    if len(arrays) != len(images):
        raise InputError(f"images: detector names {list(images)} collide once made file-safe")
    painted = np.asarray(painted)
    for detector, array in arrays.items():
        if array.shape != painted.shape:
            raise InputError(f"image layer {detector!r}: shape {array.shape} differs from the labels layer's "
                             f"{painted.shape}; paint on a labels layer made for this image")
        if array.ndim not in (2, 3):
            raise InputError(f"image layer {detector!r}: expected a (Y, X) image or (Z, Y, X) stack, "
                             f"got shape {array.shape}")
    hand = to_hand_labels(painted, phases)
    slices = labelled_slices(painted)
    if not slices:
        raise InputError("labels layer: nothing is painted; paint a few strokes of every phase on a slice or two")
    missing = [p for i, p in enumerate(phases) if not (hand == i).any()]
    if missing:
        raise InputError(f"labels layer: no voxel is painted as {missing}; paint some of every phase "
                         f"(phases {phases} are values 1..{len(phases)})")
    voxel = check_voxel_size(voxel_size, painted.ndim, "voxel size") if voxel_size is not None else None
    folder = Path(folder)
    config = folder / "data" / f"{name}.yaml"
    if config.exists() and not overwrite:
        raise InputError(f"{config}: exists; choose another dataset name")
    files = {d: folder / "images" / f"{name}_{d}.tif" for d in arrays}
    labels_file = folder / "labels" / f"{name}_hand_labels.tif"
    for path in [*files.values(), labels_file, config]:
        path.parent.mkdir(parents=True, exist_ok=True)
    for detector, array in arrays.items():
        write_tiff(files[detector], array, voxel_size=voxel)
    write_tiff(labels_file, hand, voxel_size=voxel, phases=tuple(phases))
    content = {
        "name": name,
        "root": "..",
        "phases": phases,
        "voxel_size": None if voxel is None else [float(v) for v in voxel],
        "depth_axis": int(depth_axis),
        "channels": list(arrays),
        "volumes": [{"images": {d: str(p.relative_to(folder)) for d, p in files.items()},
                     "hand_labels": str(labels_file.relative_to(folder)), "split": "train"}],
        "ignore_value": 255,
        "label_values": None,
        "pseudo_labels": False,
        "volume_fractions": None,
        "classical": {},
    }
    header = (f"# Saved by the electroseg napari widget: {len(slices)} labelled slice(s) {slices}.\n"
              f"# Train: electroseg train --config-dir {folder} data={name} model=multichannel2d out=runs/{name}\n"
              "# (root is relative to this file's folder; hand labels: 255 = unlabelled, value i = phase i)\n")
    from electroseg.io import atomic_output

    with atomic_output(config) as tmp:
        Path(tmp).write_text(header + yaml.safe_dump(content, sort_keys=False))
    return SavedDataset(folder, name, config, files, labels_file, tuple(slices))


def default_start(phases: Sequence[str], n_detectors: int) -> str | None:
    """The shipped model to fine-tune from (``pretrained:NAME``), or None to train from scratch.

    Among the shipped models that read ``n_detectors`` channels: the one with these phases, else
    one with as many phases, else any (a new output head is made when the phases differ); None
    when none reads that many channels.
    """
    from electroseg.models.pretrained import PREFIX, available

    models = {name: card for name, card in available().items() if len(card["channels"]) == n_detectors}
    for fits in (lambda card: list(card["phases"]) == list(phases),
                 lambda card: len(card["phases"]) == len(phases), lambda card: True):
        names = [name for name, card in models.items() if fits(card)]
        if names:
            return PREFIX + names[0]
    return None


def train_config(dataset: SavedDataset, out: str | Path, *, init: str | None = None, epochs: int = 20,
                 seed: int = 0, overrides: Sequence[str] = ()):
    """The composed ``electroseg train`` config for ``dataset`` (model ``multichannel2d``, the
    2.5-D model that suits slice labels; ``init``: a checkpoint or ``pretrained:NAME``; the
    budget in epochs). Compose it in the main thread: Hydra's state is global."""
    from electroseg.config import compose_command

    if int(epochs) < 1:
        raise InputError(f"epochs: expected a positive number, got {epochs!r}")
    out = Path(out)
    args = [f"data={dataset.name}", "model=multichannel2d", f"out={_quoted(out)}",
            f"trainer.max_epochs={int(epochs)}", f"seed={int(seed)}", f"cache_dir={_quoted(out / 'cache')}",
            "trainer.enable_progress_bar=false", "++trainer.enable_model_summary=false"]  # the widget logs epochs
    if init:
        args.append(f"init={_quoted(init)}")
    return compose_command("train", [*args, *overrides], config_dir=dataset.config_dir)


def _quoted(value: Any) -> str:
    """A path as a quoted Hydra string: spaces, brackets and parentheses stay part of it."""
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def train_model(cfg: Any, *, on_epoch: Callable[[int, int, str], None] | None = None,
                cancel: threading.Event | None = None) -> dict[str, Any]:
    """Train as ``cfg`` says; ``on_epoch(epoch, max_epochs, line)`` after each epoch; setting
    ``cancel`` stops training after the current step (the best checkpoint so far is kept).
    Returns train's metrics, with ``cancelled``."""
    import lightning as L

    from electroseg.training import train

    class Progress(L.Callback):
        def on_train_batch_end(self, trainer, *args) -> None:
            if cancel is not None and cancel.is_set():
                trainer.should_stop = True

        def on_train_epoch_end(self, trainer, module) -> None:
            if on_epoch is None:
                return
            metrics = trainer.callback_metrics
            parts = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}", f"step {trainer.global_step}"]
            for key, label in (("train/loss", "loss"), ("val/mean_iou", "held-out mean IoU")):
                if key in metrics:
                    parts.append(f"{label} {float(metrics[key]):.3f}")
            on_epoch(trainer.current_epoch + 1, int(trainer.max_epochs or 0), ", ".join(parts))

    metrics = train(cfg, callbacks=[Progress()])
    metrics["cancelled"] = bool(cancel is not None and cancel.is_set())
    return metrics


@dataclass(frozen=True)
class PredictResult:
    """Labels (phase indices), class probabilities (K, ...) float16 and the normalised entropy
    (0 = certain, 1 = all phases equally likely) of the images."""

    labels: np.ndarray
    probabilities: np.ndarray
    uncertainty: np.ndarray
    phases: tuple[str, ...]


def _model(checkpoint: Any):
    from electroseg.inference import load_checkpoint

    return load_checkpoint(str(checkpoint)) if isinstance(checkpoint, (str, Path)) else checkpoint


def _volume(model: Any, images: Sequence[np.ndarray], voxel_size: Sequence[float] | None):
    from electroseg.io import Volume

    wanted = len(model.spec.channels)
    if len(images) != wanted:
        raise InputError(f"image layers: the model takes {wanted} detector(s) {list(model.spec.channels)}, "
                         f"{len(images)} chosen")
    arrays = [np.asarray(a) for a in images]
    if len({a.shape for a in arrays}) > 1:
        raise InputError(f"image layers: shapes differ {[a.shape for a in arrays]}")
    data = arrays[0] if wanted == 1 else np.stack(arrays)
    return Volume(data, None if voxel_size is None else tuple(voxel_size),
                  tuple(model.spec.channels) if wanted > 1 else ())


def predict(checkpoint: Any, images: Sequence[np.ndarray], *, voxel_size: Sequence[float] | None = None,
            precision: str = "auto") -> PredictResult:
    """Segment the images (one array per detector, in the model's channel order)."""
    from electroseg.inference import predict_volume
    from electroseg.inference.qa import normalized_entropy

    model = _model(checkpoint)
    prediction = predict_volume(model, _volume(model, images, voxel_size), probabilities="float16",
                                precision=precision)
    return PredictResult(prediction.labels, prediction.probabilities,
                         normalized_entropy(prediction.probabilities), tuple(model.spec.phases))


def suggest(checkpoint: Any, images: Sequence[np.ndarray], n: int, *, labelled: Sequence[int] = (),
            voxel_size: Sequence[float] | None = None, precision: str = "auto") -> list[tuple[int, float]]:
    """``[(slice, uncertainty)]``: the ``n`` Z slices to label next, best first, apart from each
    other and from the ``labelled`` ones (``electroseg suggest``)."""
    from electroseg.inference.suggest import slice_uncertainty, suggest_slices

    model = _model(checkpoint)
    scores = slice_uncertainty(model, _volume(model, images, voxel_size), precision=precision)
    return [(z, float(scores[z])) for z in suggest_slices(scores, int(n), labelled=list(labelled))]


def analyse(labels: np.ndarray, phases: Sequence[str], *, voxel_size: Sequence[float] | None,
            depth_axis: int = 1) -> tuple[list[tuple[str, str, str]], dict]:
    """Headline metrics of a label volume: table rows ``(metric, value, 95 % interval)`` and the
    whole metrics.json content (``electroseg analyze``)."""
    from electroseg.analysis import analyze_labels

    labels = np.asarray(labels)
    if voxel_size is None:
        raise InputError("voxel size: unknown; set the image layer's scale to the voxel size in µm")
    values = np.unique(labels) if labels.dtype.kind in "iub" else None
    bad = None if values is None else values[(values < 0) | ((values >= len(phases)) & (values != 255))]
    if bad is None or bad.size:
        raise InputError(f"labels layer: expected phase indices 0..{len(phases) - 1} ({list(phases)}) or 255 "
                         f"(unlabelled), got {labels.dtype} values {[] if bad is None else bad[:5].tolist()}")
    axis = depth_axis if labels.ndim == 3 else min(depth_axis, labels.ndim - 1)
    result = analyze_labels(labels.astype(np.uint8), voxel_size=tuple(voxel_size), phases=tuple(phases),
                            depth_axis=axis)
    metrics = result.to_dict()
    intervals = ((metrics.get("uncertainty") or {}).get("metrics")) or {}

    def row(label: str, value: Any, key: str | None, fmt: str = "{:.3f}") -> tuple[str, str, str]:
        ci = intervals.get(key) if key else None
        text = "—" if value is None else fmt.format(value)
        interval = "" if not ci or ci.get("ci_low") is None else \
            f"[{fmt.format(ci['ci_low'])}, {fmt.format(ci['ci_high'])}]"
        return label, text, interval

    rows = [row(f"volume fraction {p}", v, f"volume_fraction_{p}") for p, v in metrics["volume_fraction"].items()]
    if metrics.get("pba"):
        rows.append(row("PBA (AM/CBD contact), pooled", metrics["pba"]["pooled"], "pba_pooled"))
        rows.append(row("PBA, mean over depth", metrics["pba"]["depth_mean"], "pba_depth_mean"))
    particles = metrics.get("particles")
    if particles:
        rows.append(row("AM particles", particles["count"], None, "{:d}"))
        rows.append(row("AM median diameter (µm)", particles["diameter_um"]["median"], None))
    for key, value in metrics["surface"].items():
        if key != "unit":
            rows.append(row(f"interface {key} (µm²/µm³)", value, f"surface_{key}_per_um"))
    return rows, metrics


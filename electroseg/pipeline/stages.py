"""The stages of ``electroseg run``: how one stage runs, and what each stage does.

:func:`run_stage` runs one stage into ``<out>/<stage>/`` (nnU-Net style) through a
``<stage>.partial`` folder renamed when complete, then ``stage.json`` with the fingerprint of its
settings; a stage whose folder holds the same fingerprint is not redone on a rerun. The functions
below it do each stage's work (data, preprocess, classical, predict, analysis, compare); the
chains that call them in order are in :mod:`electroseg.pipeline.chain`. Nothing here imports
Hydra or torch at import time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from electroseg.errors import InputError
from electroseg.io import UNLABELLED, read_labels, read_volume, write_json, write_tiff

logger = logging.getLogger(__name__)

STAGES = ("data", "preprocess", "classical", "train", "predict", "analysis", "compare")
TrainModel = Callable[[Path, dict], Path]
"""``train_model(folder, dataset) -> checkpoint``: fit on a dataset mapping (configs/data format)."""


@dataclass(frozen=True)
class Scan:
    """The scan a run segments: image per channel, optional hand labels and dense ground truth."""

    images: dict[str, Path]
    hand_labels: Path | None
    truth: Path | None
    phases: tuple[str, ...]
    voxel_size: tuple[float, ...] | None
    depth_axis: int
    ignore_value: int = 255
    """Stored value of unlabelled voxels in the dataset's hand labels (and truth)."""
    label_values: tuple[int, ...] | None = None
    """Stored value of each phase in those files (None: 0 .. K-1)."""

    def to_dict(self) -> dict:
        out = {"images": {k: str(v) for k, v in self.images.items()},
               "hand_labels": self.hand_labels and str(self.hand_labels),
               "truth": self.truth and str(self.truth), "phases": list(self.phases),
               "voxel_size": self.voxel_size and list(self.voxel_size),
               "depth_axis": self.depth_axis, "ignore_value": self.ignore_value}
        if self.label_values is not None:
            out["label_values"] = list(self.label_values)
        return out


@dataclass(frozen=True)
class StageRecord:
    """One stage of a run: its folder, whether it was reused, its time (s) and settings hash."""

    name: str
    folder: Path
    reused: bool
    seconds: float
    fingerprint: str = ""

    def to_dict(self) -> dict:
        return {"stage": self.name, "folder": str(self.folder), "reused": self.reused,
                "seconds": round(self.seconds, 2), "fingerprint": self.fingerprint}


def fingerprint(settings: Any) -> str:
    """Short sha256 of the JSON form of ``settings`` (what a stage's outputs depend on)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_stage(name: str, folder: Path, build: Callable[[Path], Any], *, settings: Any = None,
              force: bool = False) -> StageRecord:
    """Run ``build(tmp_folder)`` and rename the folder to ``folder`` when it completes.

    Skipped when ``folder/stage.json`` records the same settings fingerprint: outputs made with
    other settings (or by a stage upstream that changed) are redone, never silently reused.
    """
    key = fingerprint(settings)
    marker = folder / "stage.json"
    if marker.is_file() and not force:
        if json.loads(marker.read_text()).get("fingerprint") == key:
            logger.info("stage %s: outputs in %s exist, not redone", name, folder)
            return StageRecord(name, folder, True, 0.0, key)
        logger.info("stage %s: settings or inputs changed since %s was made; redoing", name, folder)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    start = time.perf_counter()
    logger.info("stage %s: running into %s", name, folder)
    build(partial)
    seconds = time.perf_counter() - start
    write_json(partial / "stage.json", {"stage": name, "seconds": round(seconds, 2),
                                        "fingerprint": key, "settings": settings})
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return StageRecord(name, folder, False, seconds, key)


# ---- data ------------------------------------------------------------------------------------

def synthesize(folder: Path, dataset: Mapping, preset: Mapping | None) -> None:
    from electroseg.synthetic import load_preset
    from electroseg.synthetic.samples import ensure_samples

    block = dict(dataset["synthetic"])
    params = dict(preset) if preset is not None else load_preset(str(block["preset"]))
    ensure_samples(block, folder, params=params, default_samples={"seed0": 0})
    write_json(folder / "preset.json", params)


def dataset_root(dataset: Mapping, data_folder: Path) -> Path:
    """Where the dataset's relative paths point: the generated folder for synthetic data."""
    if dataset.get("synthetic"):
        return data_folder
    if not dataset.get("root"):
        raise InputError(f"data {dataset.get('name')!r}: 'root' is not set; give data.root=FOLDER")
    return Path(str(dataset["root"])).expanduser().resolve()


def target_scan(dataset: Mapping, root: Path) -> Scan:
    """The scan to segment: the first ``test`` volume with dense labels, else the first ``train``."""
    volumes = list(dataset.get("volumes") or [])
    tests = [v for v in volumes if v.get("split") == "test" and v.get("labels")]
    trains = [v for v in volumes if v.get("split") == "train"]
    if not (tests or trains):
        raise InputError(f"data {dataset.get('name')!r}: expected a volume with split test or "
                         f"train, got splits {[v.get('split') for v in volumes]}")
    chosen = (tests or trains)[0]
    images = {str(k): root / str(p) for k, p in dict(chosen["images"]).items()}
    hand = chosen.get("hand_labels") or next(
        (v.get("hand_labels") for v in volumes
         if dict(v["images"]) == dict(chosen["images"]) and v.get("hand_labels")), None)
    vs = dataset.get("voxel_size")
    return Scan(images=images, hand_labels=hand and root / str(hand),
                truth=chosen.get("labels") and root / str(chosen["labels"]),
                phases=tuple(dataset.get("phases") or ("pore", "cbd", "am")),
                voxel_size=None if vs is None else tuple(float(v) for v in vs),
                depth_axis=int(dataset.get("depth_axis", 1)),
                ignore_value=int(dataset.get("ignore_value", 255)),
                label_values=None if dataset.get("label_values") is None
                else tuple(int(v) for v in dataset["label_values"]))


# ---- preprocess -------------------------------------------------------------------------------

def image_sets(dataset: Mapping, root: Path) -> dict[str, dict[str, Path]]:
    """Distinct image sets of the dataset keyed by a folder name for their preprocessed copy."""
    sets: dict[str, dict[str, Path]] = {}
    for volume in dataset.get("volumes") or []:
        images = {str(k): root / str(p) for k, p in dict(volume["images"]).items()}
        if images in sets.values():
            continue
        first = next(iter(images.values()))
        key = f"{first.parent.name}_{first.stem}".strip("_") or "volume"
        sets[key if key not in sets else f"{key}_{len(sets)}"] = images
    return sets


def _file_names(channels: Sequence[str]) -> list[str]:
    return ["image.tif"] if len(channels) == 1 else [f"image_{c}.tif" for c in channels]


def preprocess_images(images: Mapping[str, Path], out: Path, *, steps: Sequence[Mapping],
                      voxel_size: Sequence[float] | None = None) -> None:
    """Preprocess one image set (channels registered together) into ``out/image*.tif``."""
    from electroseg.preprocess import preprocess_volume

    volumes = [read_volume(p, voxel_size=voxel_size, allow_channels=False) for p in images.values()]
    stack = np.stack([v.numpy() for v in volumes]) if len(volumes) > 1 else volumes[0].numpy()
    result = preprocess_volume(stack, steps=list(steps), multichannel=len(volumes) > 1, channel_names=list(images))
    out.mkdir(parents=True, exist_ok=True)
    arrays = list(result.image) if len(volumes) > 1 else [result.image]
    if not steps:  # nothing changed the values: keep the files' dtype, which a trained model records
        # (a float copy of 16-bit counts made `predict` on the original file take its own window)
        arrays = [v.numpy() for v in volumes]
    for name, array in zip(_file_names(list(images)), arrays):
        write_tiff(out / name, array, voxel_size=volumes[0].voxel_size)
    write_json(out / "preprocess.json", result.to_dict())


def check_label_shapes(prepared: Mapping) -> None:
    """Every labels file of a `preprocessed_dataset` covers its preprocessed image voxel for
    voxel (a 2-D image may be stored (1, Y, X)): a preprocessing that crops (a marker band)
    must fit the images it ran on. One line naming both files otherwise. Shapes are read lazily
    (any label format `read_volume` takes)."""

    def shape(path: str) -> tuple[int, ...]:
        dims = read_volume(path, lazy=True).shape
        return tuple(n for i, n in enumerate(dims) if n != 1 or i >= len(dims) - 2)

    for volume in prepared["volumes"]:
        image = next(iter(volume["images"].values()))
        labels = {field: shape(volume[field]) for field in ("hand_labels", "labels") if volume.get(field)}
        expected = shape(image) if labels else None
        for field, got in labels.items():
            if got != expected:
                raise InputError(f"{volume[field]}: expected labels of the preprocessed image's "
                                 f"shape {expected} ({image}), got {got}; "
                                 f"does the dataset's preprocess (crop, fiducial_roi) fit these images?")


def preprocessed_dataset(dataset: Mapping, root: Path, pre_root: Path, classical: Mapping) -> dict:
    """The dataset mapping with absolute paths, images replaced by their preprocessed copies.

    Its ``preprocess`` is emptied (the images are already preprocessed), so checkpoints trained
    on it expect preprocessed inputs.
    """
    sets = image_sets(dataset, root)
    volumes = []
    for volume in dataset.get("volumes") or []:
        images = {str(k): root / str(p) for k, p in dict(volume["images"]).items()}
        key = next(k for k, v in sets.items() if v == images)
        entry = {"images": {c: str(pre_root / key / n)
                            for c, n in zip(images, _file_names(list(images)))},
                 "split": volume.get("split", "train")}
        for field in ("hand_labels", "labels"):
            if volume.get(field):
                entry[field] = str(root / str(volume[field]))
        volumes.append(entry)
    out = {k: v for k, v in dict(dataset).items() if k != "synthetic"}
    out.update(root=str(root), volumes=volumes, classical=dict(classical), preprocess=[])
    return out


# ---- segment, train, predict ------------------------------------------------------------------

def _read_image(scan: Scan, *, channel: str | None = None):
    """The scan's image: one channel (Y/Z arrays) or all channels as a (C, ...) Volume."""
    from electroseg.io import read_channels

    if channel is not None or len(scan.images) == 1:
        name = channel or next(iter(scan.images))
        if name not in scan.images:
            raise InputError(f"classical.channel: expected one of {list(scan.images)}, got {name!r}")
        return read_volume(scan.images[name], voxel_size=scan.voxel_size, allow_channels=False)
    return read_channels(scan.images, voxel_size=scan.voxel_size)


def segment_classical(scan: Scan, out: Path, *, options: Mapping[str, Any]) -> None:
    """Classical segmentation of the scan into ``out/labels.tif`` and ``out/confidence.tif``."""
    from electroseg.classical import segment_volume

    opts = dict(options)
    image = _read_image(scan, channel=opts.pop("channel", None))
    result = segment_volume(image.numpy(), phases=scan.phases, **opts)
    write_tiff(out / "labels.tif", np.asarray(result.labels, np.uint8), voxel_size=image.voxel_size,
               phases=scan.phases)
    write_tiff(out / "confidence.tif", np.asarray(result.confidence, np.float32),
               voxel_size=image.voxel_size)
    thresholds = getattr(result, "thresholds", None)
    write_json(out / "classical.json", {"options": opts, "thresholds": None if thresholds is None
                                        else np.asarray(thresholds).tolist()})


def best_checkpoint(folder: Path) -> Path:
    """``checkpoints/best.ckpt`` of a training folder, else ``last.ckpt``."""
    for name in ("best.ckpt", "last.ckpt"):
        if (folder / "checkpoints" / name).is_file():
            return folder / "checkpoints" / name
    raise InputError(f"{folder}: training left no checkpoints/best.ckpt or last.ckpt")


def predict_learned(scan: Scan, checkpoint: Path, out: Path, *, options: Mapping[str, Any]) -> None:
    """Segment the scan with a trained checkpoint into ``out/labels.tif``; with a dense truth or
    hand labels, also ``reliability.json`` / ``reliability.png`` (are the probabilities honest?)."""
    from electroseg.inference import load_checkpoint, predict_volume

    model = load_checkpoint(checkpoint)
    if model.slice_errors is not None:  # the analysis turns them into uncertainty.segmentation / total
        write_json(out / "slice_errors.json", model.slice_errors)
    image = _read_image(scan)
    reference = scan.truth or scan.hand_labels
    options = dict(options)
    if reference is not None and options.get("probabilities") is None:
        options["probabilities"] = "float16"
    prediction = predict_volume(model, image, **options)
    write_tiff(out / "labels.tif", np.asarray(prediction.labels, np.uint8),
               voxel_size=image.voxel_size, phases=prediction.phases or scan.phases)
    record = {"checkpoint": str(checkpoint), **prediction.to_dict()}
    if reference is not None and prediction.probabilities is not None:
        from electroseg.evaluation.reliability import reliability, reliability_figure
        from electroseg.evaluation.figures import save_figure

        truth = _load_labels(reference, scan).numpy()
        table = {"against": "truth" if scan.truth else "hand labels",
                 **reliability(prediction.probabilities, truth, ignore_value=UNLABELLED)}
        write_json(out / "reliability.json", table)
        save_figure(reliability_figure(table, title=f"learned probabilities against the {table['against']}"),
                    out / "reliability.png")
        record["reliability_ece"] = table["ece"]
    write_json(out / "predict.json", record)


# ---- analysis and comparison ------------------------------------------------------------------

def _load_labels(path: Path, scan: Scan):
    """A label file of the run as phase indices, unlabelled = `UNLABELLED`: the dataset's hand
    labels and truth in their stored values (``label_values``, ``ignore_value``), the stages'
    own label files by the phases they record."""
    if Path(path) in (scan.hand_labels, scan.truth):
        return read_labels(path, phases=scan.phases, label_values=scan.label_values,
                           ignore_value=scan.ignore_value, voxel_size=scan.voxel_size)
    return read_labels(path, phases=scan.phases, voxel_size=scan.voxel_size)


def volume_names(dataset: Mapping) -> list[str]:
    """The names training gives the volumes of a (preprocessed, absolute-path) dataset mapping
    (`electroseg.training.dataset_config.VolumeEntry.name`)."""
    from electroseg.training.dataset_config import parse_dataset_config

    return [entry.name for entry in parse_dataset_config(dataset, root=Path.cwd()).volumes]


def own_slice_errors(errors: Mapping, own_volumes: Sequence[str]) -> tuple[dict, str]:
    """The checkpoint's held-out slice errors to correct a scan with, and where they come from.

    A checkpoint trained on several specimens (the cycling study's pristine and cycled samples)
    keeps each held-out volume's errors apart (``by_volume``). The scan is then corrected with
    the errors of the held-out volumes of its own dataset (the same specimen, imaged alike)
    when some, not all, of them are, and with all of them otherwise: the error depends on the
    specimen (on 10 generator pristine/cycled pairs of 64 x 384 x 384, the corrected learned drop
    was 0.21 of the true one with the pooled errors, 1.01 with each specimen's own).
    """
    from electroseg.analysis.segmentation_error import SliceErrors

    by_volume = errors.get("by_volume") or {}
    own = [name for name in own_volumes if name in by_volume]
    pooled = {k: v for k, v in errors.items() if k != "by_volume"}
    if not own or len(own) == len(by_volume):
        return pooled, "the checkpoint's held-out slices"
    found = SliceErrors.from_dict(by_volume[own[0]])
    for name in own[1:]:
        found = found.pooled(SliceErrors.from_dict(by_volume[name]))
    return found.to_dict(), (f"the checkpoint's held-out slices of this scan's own dataset ({len(own)} of its "
                             f"{len(by_volume)} held-out volumes)")


def analyse(segmentations: Mapping[str, Path], scan: Scan, out: Path, *,
            options: Mapping[str, Any], dataset: Mapping | None = None) -> None:
    """metrics.json, tables and overlay figures of every segmentation into ``out/<name>/``.

    The segmentation's own error (``uncertainty.segmentation`` / ``total``) is measured for the
    classical route on the scan's hand-labelled slices, and for the learned route on the slices
    its training held out (stored in the checkpoint: the scan's hand labels may have taught it);
    of those, on the held-out volumes of ``dataset`` (this run's, preprocessed) when the
    checkpoint also held out other specimens' volumes (:func:`own_slice_errors`).
    """
    from electroseg.analysis.segmentation_error import slice_depth
    from electroseg.analysis.metrics import analyze_labels, write_analysis

    hand = None if scan.hand_labels is None else _load_labels(scan.hand_labels, scan).numpy()
    results = {}
    for name, path in segmentations.items():
        labels = _load_labels(path, scan)
        check: dict[str, Any] = {}
        if name == "classical" and hand is not None:
            check = {"hand_labels": hand, "hand_labels_source": str(scan.hand_labels)}
        stored = Path(path).parent / "slice_errors.json"
        if name == "learned" and stored.is_file():
            errors = json.loads(stored.read_text())
            own = volume_names(dataset) if errors.get("by_volume") and dataset is not None else ()
            errors, source = own_slice_errors(errors, own)
            if errors.get("depth") == slice_depth(labels.ndim_spatial, scan.depth_axis):
                check = {"slice_errors": errors, "hand_labels_source": source}
        results[name] = analyze_labels(
            labels.numpy(), voxel_size=labels.require_voxel_size(f"analysis of {name}"),
            depth_axis=scan.depth_axis, phases=scan.phases, ignore_value=UNLABELLED,
            source=str(path), **check, **dict(options))
    write_analysis(results, out)


def compare(segmentations: Mapping[str, Path], scan: Scan, out: Path, *,
            blocks_per_axis: int = 3) -> None:
    """Classical vs learned (and each vs the truth or the hand labels) into ``out/``."""
    from electroseg.evaluation import compare_segmentations, write_comparison

    names = [n for n in segmentations if n != "truth"]
    a_name, b_name = names[:2] if len(names) > 1 else ("truth", names[0])
    a, b = (_load_labels(segmentations[n], scan) for n in (a_name, b_name))
    reference_path = None if a_name == "truth" else (scan.truth or scan.hand_labels)
    reference = None if reference_path is None else _load_labels(reference_path, scan).numpy()
    reference_name = "truth" if scan.truth else "hand labels"  # sparse labels are not "the reference"
    voxel_size = a.require_voxel_size("the comparison's particle volumes")
    result = compare_segmentations(
        a.numpy(), b.numpy(), reference=reference, voxel_size=voxel_size,
        depth_axis=scan.depth_axis, phases=scan.phases, ignore_value=UNLABELLED,
        names=(a_name, b_name), blocks_per_axis=blocks_per_axis, reference_name=reference_name)
    shown = {a_name: a.numpy(), b_name: b.numpy()}
    if reference is not None:
        shown[reference_name] = reference
    image = _read_image(scan, channel=next(iter(scan.images))).numpy()
    write_comparison(result, out, segmentations=shown, image=image,
                     depth_step_um=float(voxel_size[scan.depth_axis]),
                     ignore_value=UNLABELLED)

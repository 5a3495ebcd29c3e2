"""Batch prediction over many inputs with resumable outputs: what ``electroseg predict`` runs.

Per input ``<out_dir>/<name>/`` receives ``labels.tif`` (or ``labels.zarr`` in chunked mode),
optionally ``probabilities.zarr`` and the analysis outputs, and last ``prediction.json``: the
completion marker. Every file is written atomically, so an input with a marker is complete and
is skipped when the batch is run again (unless ``overwrite``); an input without one is redone.
``<out_dir>/summary.csv`` (one row per input) is rewritten after every input; rows of earlier
calls into the same folder for inputs this call does not have are kept. A failed input leaves no
folder behind (unless an earlier run made it).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from electroseg.errors import InputError
from electroseg.inference.checkpoint import load_checkpoint
from electroseg.inference.inputs import check_intensity_window
from electroseg.inference.scale import check_scale, scale_factor
from electroseg.inference.sources import InputItem, resolve_inputs
from electroseg.io import atomic_output, write_json
from electroseg.models.logit_bias import check_volume_fractions

logger = logging.getLogger(__name__)

MARKER = "prediction.json"
CHUNKED_CHOICES = ("auto", "true", "false")
#: Errors that fail one input and let the batch go on; anything else is a bug and stops it.
RECOVERABLE = (InputError, ValueError, OSError, MemoryError)


@dataclass(frozen=True)
class InputResult:
    """Outcome of one input: status ``ok``, ``skipped`` (complete from an earlier run) or ``failed``."""

    name: str
    status: str
    seconds: float
    input: str
    volume_fraction: dict[str, float | None] = field(default_factory=dict)
    pba_pooled: float | None = None
    error: str = ""
    qa: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "seconds": round(self.seconds, 3),
                "input": self.input, "volume_fraction": dict(self.volume_fraction),
                "pba_pooled": self.pba_pooled, "error": self.error, "qa": dict(self.qa)}

    def row(self, phases: Sequence[str]) -> dict:
        """Flat summary row: name, status, seconds, fraction_<phase>..., pba_pooled,
        low_confidence, tiling_agreement, error, input."""
        row = {"name": self.name, "status": self.status, "seconds": round(self.seconds, 3)}
        row.update({f"fraction_{p}": self.volume_fraction.get(p) for p in phases})
        row.update({"pba_pooled": self.pba_pooled,
                    "low_confidence": (self.qa.get("low_confidence") or {}).get("all"),
                    "tiling_agreement": self.qa.get("tiling_agreement"),
                    "hand_label_agreement": (self.qa.get("hand_labels") or {}).get("agreement"),
                    "error": self.error, "input": self.input})
        return row


@dataclass(frozen=True)
class BatchResult:
    """All inputs of a batch, in input order, and where the summary went."""

    results: tuple[InputResult, ...]
    phases: tuple[str, ...]
    summary_path: Path

    @property
    def failed(self) -> int:
        return sum(r.status == "failed" for r in self.results)

    def to_dict(self) -> dict:
        return {"phases": list(self.phases), "summary_path": str(self.summary_path),
                "results": [r.to_dict() for r in self.results]}

    def as_table(self):
        """pandas DataFrame, one row per input (the columns of summary.csv)."""
        import pandas as pd

        columns = list(InputResult("", "", 0.0, "").row(self.phases))
        return pd.DataFrame([r.row(self.phases) for r in self.results], columns=columns)


@dataclass(frozen=True)
class _Options:
    analyze: bool
    probabilities: str | None
    chunked: str
    voxel_size: tuple[float, ...] | None
    depth_axis: int
    max_memory_bytes: int
    predict: dict
    blockwise: dict | None = None  # executor=dask: {"client": ..., "slab_size": ...}
    chunked_format: str = "zarr"   # chunked labels: labels.zarr or labels.tif (OME BigTIFF)
    uncertainty: bool = True       # uncertainty.tif + qa.low_confidence (in-memory route)
    qa_tiling: bool = False        # qa.tiling_agreement: the central half predicted again
    hand_labels: dict | None = None  # {path: "{name}"-template, label_values, ignore_value}: qa.hand_labels
    scale: float | str = "auto"    # in-memory route: predict_volume's scale (streaming routes: 1)
    arithmetic: dict | None = None  # {"device", "precision"} the network runs in (prediction.json)


def _summary_values(labels: np.ndarray, phases: Sequence[str], depth_axis: int):
    """Volume fractions and pooled PBA (None without am and cbd phases) of a label array."""
    from electroseg.analysis import pba_profile, volume_fractions

    fractions = volume_fractions(labels, phases=phases).fractions
    if not {"am", "cbd"} <= set(phases):
        return fractions, None
    axis = depth_axis if labels.ndim == 3 else max(depth_axis - 1, 0)
    return fractions, pba_profile(labels, depth_axis=axis, phases=phases).pooled


def _use_chunked(volume, options: _Options, spec) -> bool:
    if options.chunked != "auto":
        return options.chunked == "true"
    if spec.preprocess:  # preprocessing (e.g. slice registration) needs the whole volume
        return False
    return _float32_bytes(volume) > options.max_memory_bytes


def _float32_bytes(volume) -> int:
    """Bytes of the input as float32 (or its own dtype when wider): what prediction holds in memory."""
    return int(np.prod(volume.shape, dtype=np.float64)) * max(volume.dtype.itemsize, 4)


def _write_probabilities(path: Path, probabilities: np.ndarray, voxel_size, phases) -> None:
    from electroseg.io.ngff import create_probabilities

    with atomic_output(path) as tmp:
        out = create_probabilities(tmp, probabilities.shape, chunks=(1, *probabilities.shape[1:]),
                                   voxel_size=voxel_size, phases=phases, dtype=probabilities.dtype)
        out[...] = probabilities


def _predict_item(loaded, item: InputItem, folder: Path, options: _Options) -> tuple[np.ndarray, Any, list, dict]:
    """Run one input, write its label (probability, uncertainty) files; return labels, voxel
    size, the intensity window per channel (empty where the Dask route does not report it) and
    the quality record (`electroseg.inference.qa`; empty on the streaming routes)."""
    from electroseg.inference.chunked import predict_chunked
    from electroseg.inference.predict import predict_volume
    from electroseg.io import write_tiff

    volume = item.read(lazy=True, voxel_size=options.voxel_size)
    if options.analyze:  # before any computing: analysis needs the voxel size
        _check_voxel_size(volume.voxel_size, item.name, len(volume.spatial_shape))
    phases = loaded.spec.phases
    three_d = len(volume.spatial_shape) == 3
    on_dask = options.blockwise is not None and three_d
    chunked = not on_dask and three_d and _use_chunked(volume, options, loaded.spec)
    if (on_dask or chunked) and options.scale != "auto" and options.scale != 1.0:
        raise InputError(f"scale={options.scale}: only the in-memory route resamples; this input is streamed "
                         f"(chunked or executor=dask): give chunked=false, or resample it beforehand")
    if on_dask:
        return _predict_on_dask(loaded, volume, folder, options), volume.voxel_size, [], {}
    if chunked:
        prob_path = folder / "probabilities.zarr" if options.probabilities else None
        result = predict_chunked(loaded, volume, folder / f"labels.{options.chunked_format}", probabilities_path=prob_path,
                                 probabilities=options.probabilities or "float16", **options.predict)
        return _streamed_labels(result.labels_path), volume.voxel_size, list(result.intensity), {}
    _check_fits_in_memory(volume, item)
    wanted = options.probabilities or ("float16" if options.uncertainty else None)
    factor = scale_factor(loaded, volume, options.scale)  # one factor for the input and its tiling check
    prediction = predict_volume(loaded, volume, probabilities=wanted, scale=factor, **options.predict)
    write_tiff(folder / "labels.tif", prediction.labels, voxel_size=volume.voxel_size, phases=phases)
    if options.probabilities:
        _write_probabilities(folder / "probabilities.zarr", prediction.probabilities, volume.voxel_size, phases)
    qa: dict = {}
    if options.uncertainty:
        from electroseg.inference.qa import low_confidence, normalized_entropy

        entropy = normalized_entropy(prediction.probabilities)
        write_tiff(folder / "uncertainty.tif", entropy, voxel_size=volume.voxel_size)
        qa["uncertainty_map"] = "uncertainty.tif"
        qa["low_confidence"] = low_confidence(prediction.labels, entropy, phases)
        del entropy
        _warn_if_unsure(loaded, item.name, qa["low_confidence"])
    if options.qa_tiling:
        qa["tiling_agreement"] = _tiling_agreement(loaded, volume, prediction.labels, options, factor)
    return prediction.labels, volume.voxel_size, list(prediction.intensity), qa


def _warn_if_unsure(loaded, name: str, record: dict) -> None:
    """Warn (and record ``warning_from`` in ``record``) when the share of low-confidence voxels
    reaches the level the model's card names: where, on images with truth, its predictions were
    mostly poor. Only the shipped models carry such a level."""
    level, share = getattr(loaded, "low_confidence_warning", None), record.get("all")
    if level is None or share is None:
        return
    record["warning_from"] = level
    if share >= level:
        logger.warning("%s: %.0f %% of the voxels are low-confidence, at or above the %.0f %% from which this "
                       "model's predictions were mostly poor on images with truth; check the labels against a "
                       "few hand-labelled slices (hand_labels=...) or fine-tune (electroseg train init=...)",
                       name, 100 * share, 100 * level)


def _read_hand_labels(path: str, phases, shape, *, label_values=None, ignore_value: int = 255) -> np.ndarray | None:
    """An input's hand labels (in memory 255 = unlabelled), None when it has no hand-label file."""
    from electroseg.io import read_labels

    if not Path(path).exists():
        return None
    hand = read_labels(path, phases=phases, label_values=label_values, ignore_value=ignore_value).numpy()
    if hand.shape != tuple(shape):
        raise InputError(f"{path}: hand labels of shape {hand.shape}, the input is {tuple(shape)}")
    return hand


def _hand_label_agreement(labels: np.ndarray, hand: np.ndarray, path: str, phases) -> dict:
    """Share of an input's hand-labelled voxels (255 = unlabelled) that the prediction
    reproduces, overall and per phase."""
    marked = hand != 255
    agree = labels[marked] == hand[marked]
    per_phase = {p: (float(agree[hand[marked] == i].mean()) if np.any(hand[marked] == i) else None)
                 for i, p in enumerate(phases)}
    return {"file": str(path), "voxels": int(marked.sum()),
            "agreement": float(agree.mean()) if agree.size else None, "per_phase": per_phase}


def _tiling_agreement(loaded, volume, labels: np.ndarray, options: _Options, factor: float) -> float | None:
    """The central half (in-plane) predicted on its own, at the whole input's scale ``factor``,
    against the whole input's labels there."""
    from dataclasses import replace

    from electroseg.inference.predict import predict_volume
    from electroseg.inference.qa import central_crop, tiling_agreement

    crop = central_crop(labels.shape, labels.ndim)
    data = volume.data[(slice(None), *crop)] if volume.is_multichannel else volume.data[crop]
    part = predict_volume(loaded, replace(volume, data=np.asarray(data)), scale=factor, **options.predict)
    return tiling_agreement(labels, part.labels, crop)


def _predict_on_dask(loaded, volume, folder: Path, options: _Options) -> np.ndarray:
    """executor=dask: Z slabs with halos as Dask tasks, labels stored to ``labels.zarr``."""
    from electroseg.inference.blockwise import predict_blockwise

    if options.probabilities:
        raise InputError("save_probabilities: not available with executor=dask; use the local executor")
    predict = {k: v for k, v in options.predict.items() if k != "progress"}
    result = predict_blockwise(loaded, volume, folder / "labels.zarr", **options.blockwise, **predict)
    return _streamed_labels(result.labels_path)


def _streamed_labels(path: Path) -> np.ndarray:
    """The labels a streaming path wrote (``labels.zarr`` or BigTIFF ``labels.tif``), in memory."""
    from electroseg.io import read_volume

    return read_volume(path, lazy=True).numpy()


def _check_fits_in_memory(volume, item: InputItem) -> None:
    """Refuse, before allocating, an in-memory prediction of an input larger than the memory limit."""
    from electroseg.io.readers import default_max_bytes

    nbytes = _float32_bytes(volume)
    limit = default_max_bytes()
    if nbytes > limit:
        raise InputError(f"{item.describe()}: the input {tuple(volume.shape)} needs {nbytes / 1e9:.1f} GB in memory, "
                         f"over the {limit / 1e9:.1f} GB memory limit; use chunked=true (3-D inputs)")


def _check_voxel_size(voxel_size, name: str, ndim: int = 3) -> None:
    if voxel_size is None:
        axes = "[z,y,x]" if ndim == 3 else "[y,x]"
        raise InputError(f"{name}: analyze=true needs the voxel size, but the input has none; "
                         f"give voxel_size={axes} in micrometres")


def _analyze(labels: np.ndarray, voxel_size, folder: Path, phases, depth_axis: int, name: str, *,
             hand: np.ndarray | None = None, hand_path: str | None = None,
             slice_errors: dict | None = None) -> list[Path]:
    """metrics.json and tables of one prediction; its segmentation error from the input's own
    hand labels when it has them, else from the checkpoint's held-out slices."""
    from electroseg.analysis import analyze_labels, write_analysis

    _check_voxel_size(voxel_size, name)
    axis = depth_axis if labels.ndim == 3 else max(depth_axis - 1, 0)
    from electroseg.analysis.segmentation_error import slice_depth

    usable = slice_errors is not None and slice_errors.get("depth") == slice_depth(labels.ndim, axis)
    result = analyze_labels(labels, voxel_size=tuple(voxel_size), depth_axis=axis, phases=phases,
                            hand_labels=hand, slice_errors=slice_errors if hand is None and usable else None,
                            hand_labels_source=hand_path if hand is not None else "the checkpoint's held-out slices")
    return write_analysis(result, folder)


def _written(folder: Path, options: _Options, qa: dict, analysis: list[Path]) -> list[str]:
    """Names (relative to ``folder``) of the outputs this run made for one input."""
    names = [name for name in ("labels.tif", "labels.zarr") if (folder / name).exists()]
    if options.probabilities:
        names.append("probabilities.zarr")
    if qa.get("uncertainty_map"):
        names.append(str(qa["uncertainty_map"]))
    names += [str(Path(path).resolve().relative_to(folder.resolve())) for path in analysis]
    return sorted(set(names))


def _earlier_files(marker: Path) -> list[str]:
    """The outputs an earlier run recorded in its marker (none for markers that list nothing)."""
    try:
        files = json.loads(marker.read_text()).get("files") or []
    except (OSError, ValueError, AttributeError):
        return []
    return [str(f) for f in files if isinstance(f, str) and ".." not in Path(f).parts]


def _remove_stale(folder: Path, earlier: list[str], now: list[str]) -> None:
    """Delete what an earlier run wrote and this one did not (e.g. metrics.json after a rerun
    with analyze=false): the folder holds only this run's outputs."""
    for name in sorted(set(earlier) - set(now)):
        path = folder / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()
        logger.info("%s: %s from an earlier run removed (not an output of this one)", folder.name, name)


def _outputs_key(options: _Options) -> dict:
    """The settings that decide which files an input's folder holds."""
    return {"analyze": options.analyze, "probabilities": options.probabilities,
            "uncertainty": options.uncertainty, "qa_tiling": options.qa_tiling, "hand_labels": options.hand_labels}


def _finished(marker: Path, options: _Options) -> dict | None:
    """The marker's record when the folder is complete for these settings, else None."""
    if not marker.is_file():
        return None
    try:
        record = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    wanted = _outputs_key(options)
    done = record.get("outputs", {})
    if (wanted["analyze"] and not done.get("analyze")) or (
            wanted["probabilities"] and done.get("probabilities") != wanted["probabilities"]) or (
            wanted["qa_tiling"] and not done.get("qa_tiling")) or (
            wanted["hand_labels"] and done.get("hand_labels") != wanted["hand_labels"]):
        logger.info("%s: earlier outputs lack what is asked now (%s); redoing", marker.parent.name, wanted)
        return None
    return record


def _run_item(loaded, item: InputItem, out_dir: Path, options: _Options, overwrite: bool) -> InputResult:
    folder = out_dir / item.name
    marker = folder / MARKER
    record = _finished(marker, options) if not overwrite else None
    if record is not None:
        logger.info("%s: complete from an earlier run, skipped (overwrite=true redoes it)", item.name)
        return InputResult(item.name, "skipped", 0.0, item.describe(), record.get("volume_fraction", {}),
                           record.get("pba_pooled"), qa=record.get("qa") or {})
    start = time.perf_counter()
    created = not folder.exists()
    earlier = _earlier_files(marker)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        labels, voxel_size, intensity, qa = _predict_item(loaded, item, folder, options)
        hand, hand_path = None, None
        if options.hand_labels:
            hand_path = options.hand_labels["path"].format(name=item.name)
            hand = _read_hand_labels(hand_path, loaded.spec.phases, labels.shape,
                                     label_values=options.hand_labels["label_values"],
                                     ignore_value=options.hand_labels["ignore_value"])
            qa["hand_labels"] = (None if hand is None else
                                 _hand_label_agreement(labels, hand, hand_path, loaded.spec.phases))
        analysis = []
        if options.analyze:
            analysis = _analyze(labels, voxel_size, folder, loaded.spec.phases, options.depth_axis, item.name,
                                hand=hand, hand_path=hand_path, slice_errors=getattr(loaded, "slice_errors", None))
        fractions, pba = _summary_values(labels, loaded.spec.phases, options.depth_axis)
    except RECOVERABLE as err:
        message = " ".join(str(err).split()) or type(err).__name__
        if not message.startswith((f"{item.name}:", f"{item.describe()}:")):
            message = f"{item.name}: {message}"  # the error names the input once
        logger.error("failed: %s", message)
        if created:  # nothing of a failed input is left behind (a folder from an earlier run is kept)
            shutil.rmtree(folder, ignore_errors=True)
        return InputResult(item.name, "failed", time.perf_counter() - start, item.describe(), error=message)
    result = InputResult(item.name, "ok", time.perf_counter() - start, item.describe(), fractions, pba, qa=qa)
    files = _written(folder, options, qa, analysis)
    _remove_stale(folder, earlier, files)
    write_json(marker, {**result.to_dict(), "outputs": _outputs_key(options), "intensity": intensity,
                        "arithmetic": options.arithmetic, "files": files})
    logger.info("%s: done in %.1f s", item.name, result.seconds)
    return result


def _write_summary(out_dir: Path, results: list[InputResult], phases) -> Path:
    """summary.csv: the rows of earlier calls into the same folder whose inputs this call does
    not have (first, in their order), then this call's rows."""
    import pandas as pd

    path = out_dir / "summary.csv"
    table = BatchResult(tuple(results), tuple(phases), path).as_table()
    if path.is_file():
        try:
            earlier = pd.read_csv(path, keep_default_na=False, dtype={"name": str})
        except (OSError, ValueError) as err:
            logger.warning("%s: earlier summary unreadable (%s); it is replaced", path, err)
        else:
            if "name" in earlier.columns:
                kept = earlier[~earlier["name"].isin(set(table["name"]))]
                if len(kept):
                    table = pd.concat([kept, table], ignore_index=True)
    with atomic_output(path) as tmp:
        table.to_csv(tmp, index=False)
    return path


def _options(*, analyze, save_probabilities, chunked, voxel_size, depth_axis, max_memory_bytes,
             predict, chunked_format="zarr", uncertainty=True, qa_tiling=False, hand_labels=None,
             scale="auto", arithmetic=None) -> _Options:
    chunked = str(chunked).lower()
    if chunked not in CHUNKED_CHOICES:
        raise InputError(f"chunked: expected one of {CHUNKED_CHOICES}, got {chunked!r}")
    if chunked_format not in ("zarr", "tif"):
        raise InputError(f"chunked_format: expected zarr or tif, got {chunked_format!r}")
    if save_probabilities not in (False, None, True, "float16", "uint8"):
        raise InputError(f"save_probabilities: expected true, false, float16 or uint8, got {save_probabilities!r}")
    probabilities = "float16" if save_probabilities is True else (save_probabilities or None)
    if max_memory_bytes is None:
        from electroseg.io.readers import default_max_bytes

        max_memory_bytes = default_max_bytes() // 8  # input + float32 copy + outputs fit easily
    voxel_size = None if voxel_size is None else tuple(float(v) for v in voxel_size)
    return _Options(bool(analyze), probabilities, chunked, voxel_size, int(depth_axis),
                    int(max_memory_bytes), predict, chunked_format=chunked_format,
                    uncertainty=bool(uncertainty), qa_tiling=bool(qa_tiling),
                    hand_labels=_check_hand_labels(hand_labels), scale=check_scale(scale), arithmetic=arithmetic)


def _check_hand_labels(value: Any) -> dict | None:
    """``hand_labels`` as ``{path, label_values, ignore_value}``: a path template, or a mapping
    with ``path`` and optionally the stored ``label_values`` and ``ignore_value`` of the files."""
    if value is None:
        return None
    from electroseg.io.labels import label_file_spec

    spec = label_file_spec(value)
    return {**spec, "path": _check_template(spec["path"])}


def _check_template(template: Any) -> str:
    """A hand-label path template must name the input (``{name}``) and nothing else."""
    text = str(template)
    try:
        text.format(name="x")
    except (KeyError, IndexError, ValueError):
        raise InputError(f"hand_labels: expected a path with {{name}} for the input's name, "
                         f"e.g. labels/{{name}}_labels.tif, got {text!r}") from None
    if "{name}" not in text:
        raise InputError(f"hand_labels: expected a path with {{name}} for the input's name, got {text!r}")
    return text


def predict_batch(
    checkpoint: str | os.PathLike | Any,
    inputs: Any,
    out_dir: str | os.PathLike,
    *,
    analyze: bool = False,
    save_probabilities: bool | str = False,
    tta: bool = False,
    overwrite: bool = False,
    chunked: str | bool = "auto",
    chunked_format: str = "zarr",
    voxel_size: Sequence[float] | None = None,
    depth_axis: int = 1,
    overlap: float = 0.25,
    batch_size: int | None = None,
    device: Any = None,
    precision: str = "auto",
    max_memory_bytes: int | None = None,
    progress: bool = False,
    executor: str = "local",
    dask: dict | None = None,
    slab_size: int = 64,
    volume_fractions: Mapping[str, float] | None = None,
    uncertainty: bool = True,
    qa_tiling: bool = False,
    hand_labels: str | Mapping[str, Any] | None = None,
    scale: float | str = "auto",
    intensity_window: Any = None,
) -> BatchResult:
    """Segment every input with one checkpoint; resumable, one failed input does not stop the rest.

    Parameters
    ----------
    checkpoint : path or LoadedModel
        The checkpoint alone defines network, phases, channels and normalisation.
    inputs : path, glob, mapping or list of them
        See :mod:`electroseg.inference.sources`: one file per input, ``{detector: path}``
        mappings, or folders of ``image_<detector>.tif``.
    out_dir : path
        Receives ``<name>/`` per input and ``summary.csv``.
    analyze : bool
        Also run :func:`electroseg.analysis.analyze_labels` and write its outputs into ``<name>/``.
    save_probabilities : bool or {"float16", "uint8"}
        Write ``<name>/probabilities.zarr`` (K, Z, Y, X); true means float16.
    tta : bool
        Average over in-plane flips.
    overwrite : bool
        Redo inputs whose outputs are complete (default: skip them).
    chunked : {"auto", "true", "false"}
        Stream labels to ``labels.zarr`` (or ``labels.tif``, see ``chunked_format``) slab by slab
        instead of predicting in memory; ``auto`` streams inputs whose float32 size exceeds
        ``max_memory_bytes`` (default an eighth of the available memory).
    chunked_format : {"zarr", "tif"}
        Streamed labels as a Zarr array or as an uncompressed OME BigTIFF (Fiji opens it).
    voxel_size : sequence of float, optional
        µm per voxel, overrides file metadata.
    depth_axis : int
        Separator-to-collector axis of volumes for PBA (2-D images: the axis before it).
    overlap, batch_size, device, precision
        As :func:`electroseg.inference.predict_volume`.
    progress : bool
        tqdm bars over inputs and windows (stderr).
    executor : {"local", "dask"}
        ``dask``: volumes are predicted in Z slabs of ``slab_size`` (with halos) as tasks on a Dask
        cluster (:func:`electroseg.inference.blockwise.predict_blockwise`), labels to ``labels.zarr``.
    dask : dict, optional
        Options of :func:`electroseg.analysis.blockwise.dask_client` (``scheduler_address``,
        ``n_workers``, ``threads_per_worker``, ``memory_limit``, ``processes``).
    volume_fractions : mapping phase -> fraction, optional
        Known volume fractions of every input (e.g. {"pore": 0.35} from the mass loading):
        logit offsets are fitted per input so that its labels match them
        (:mod:`electroseg.inference.calibrate`; with ``executor=dask`` fitted once per input
        before its slabs are sent out). Inputs finished in an earlier run are skipped as
        usual: rerun with ``overwrite=true`` after changing them.
    uncertainty : bool
        Write ``<name>/uncertainty.tif`` (normalised entropy in [0, 1]) and ``qa.low_confidence``
        in prediction.json and summary.csv (:mod:`electroseg.inference.qa`; in-memory route:
        streamed and Dask predictions write neither).
    qa_tiling : bool
        Predict the central half (in-plane) of each input again on its own and record the share
        of its interior that gets the same labels (``qa.tiling_agreement``); about a quarter
        more prediction time.
    hand_labels : str or mapping, optional
        Where each input's hand labels are, as a path with ``{name}`` (the input's name), e.g.
        ``"labels/{name}_labels.tif"`` (255 = unlabelled, phase i stored as i, or the phases the
        file names), or ``{"path": ..., "label_values": [...], "ignore_value": N}`` for files
        stored with other values (NREL's scribbles: ``[2, 1]`` and ``0``). When the file exists, ``qa.hand_labels``
        records the share of its labelled voxels the prediction reproduces, overall and per phase
        (``hand_label_agreement`` in summary.csv).
    scale : "auto" or float in (0, 1]
        In-memory route: :func:`~electroseg.inference.predict_volume`'s ``scale`` (``auto``
        shrinks an input whose features are larger than a shipped model's training images';
        a checkpoint of your own records none and is never resampled). Streamed inputs are
        predicted as they are; a factor other than 1 is refused for them.
    intensity_window : [lo, hi], list of [lo, hi] per channel, or a prediction.json path, optional
        Fixed intensity window of every input instead of the checkpoint's rule (see
        :func:`~electroseg.inference.predict_volume`): e.g. a crop predicted with the window its
        parent's prediction.json records under ``intensity`` (give that file's path).

    Returns
    -------
    BatchResult
        ``failed`` counts failed inputs; the command exits non-zero when it is not 0.
    """
    from electroseg.inference.engine import arithmetic_record, check_window_options, check_window_values

    # a bad overlap, batch size, device or precision stops the call before any input is read;
    # on Dask the workers choose their device and precision, so only the values are checked here
    arithmetic = None
    if executor == "dask":
        check_window_values(overlap=overlap, batch_size=batch_size, precision=precision)
    else:
        arithmetic = arithmetic_record(*check_window_options(overlap=overlap, batch_size=batch_size, device=device,
                                                             precision=precision))
    loaded = checkpoint if hasattr(checkpoint, "spec") else load_checkpoint(checkpoint)
    fractions = check_volume_fractions(volume_fractions, list(loaded.spec.phases), "volume_fractions")
    window = check_intensity_window(intensity_window, max(1, len(loaded.spec.channels)))
    predict = {"overlap": overlap, "batch_size": batch_size, "tta": tta, "device": device,
               "precision": precision, "progress": progress, "volume_fractions": fractions,
               "intensity_window": window}
    if arithmetic is not None:
        logger.info("the network runs in %s on %s%s", arithmetic["precision"], arithmetic["device"],
                    (" (precision=auto: this CPU has no bf16 instructions)" if precision == "auto"
                     and arithmetic["device"] == "cpu" and arithmetic["precision"] == "fp32" else ""))
    options = _options(analyze=analyze, save_probabilities=save_probabilities, chunked=chunked,
                       voxel_size=voxel_size, depth_axis=depth_axis, max_memory_bytes=max_memory_bytes,
                       predict=predict, chunked_format=str(chunked_format).lower(),
                       uncertainty=uncertainty, qa_tiling=qa_tiling, hand_labels=hand_labels, scale=scale,
                       arithmetic=arithmetic)
    items = resolve_inputs(inputs, channels=loaded.spec.channels)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if executor not in ("local", "dask"):
        raise InputError(f"executor: expected local or dask, got {executor!r}")
    if executor == "dask":
        from dataclasses import replace

        from electroseg.parallel import dask_client

        with dask_client(**(dask or {})) as client:
            blockwise = {"client": client, "slab_size": int(slab_size)}
            return _run_all(loaded, items, out_dir, replace(options, blockwise=blockwise), overwrite, progress)
    return _run_all(loaded, items, out_dir, options, overwrite, progress)


def _run_all(loaded, items, out_dir: Path, options: _Options, overwrite: bool, progress: bool) -> BatchResult:
    """Run every input in turn, rewriting summary.csv after each."""
    results: list[InputResult] = []
    iterator = items
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(items, desc="inputs", unit="input")
    from electroseg.inference.engine import reuse_prepared_networks

    with reuse_prepared_networks():  # one checkpoint for every input: trace and freeze it once
        for item in iterator:
            results.append(_run_item(loaded, item, out_dir, options, bool(overwrite)))
            summary = _write_summary(out_dir, results, loaded.spec.phases)
    logger.info("%d input(s): %d ok, %d skipped, %d failed; summary %s", len(results),
                sum(r.status == "ok" for r in results), sum(r.status == "skipped" for r in results),
                sum(r.status == "failed" for r in results), summary)
    return BatchResult(tuple(results), tuple(loaded.spec.phases), summary)

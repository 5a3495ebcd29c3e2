"""``run_pipeline`` and ``run_cycling``: the whole chain on one dataset (or a pristine/cycled pair).

data → preprocess → classical → train → predict → analysis → compare → report, one inspectable
folder per stage (:mod:`electroseg.pipeline.stages`). The learned route needs a
``train_model`` callable (the command layer builds it from the Hydra training config), so this
module never imports Hydra or torch at import time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from electroseg.errors import InputError
from electroseg.io import write_json
from electroseg.pipeline.stages import (STAGES, Scan, StageRecord, TrainModel, analyse, best_checkpoint,
                                        check_label_shapes, compare, dataset_root, image_sets,
                                        predict_learned, preprocess_images, preprocessed_dataset,
                                        run_stage, segment_classical, synthesize, target_scan)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    """What `run_pipeline` produced."""

    out: Path
    scan: Scan
    stages: tuple[StageRecord, ...]
    segmentations: dict[str, Path]
    summary: dict
    report: Path | None

    def to_dict(self) -> dict:
        return {"out": str(self.out), "scan": self.scan.to_dict(),
                "stages": [s.to_dict() for s in self.stages],
                "segmentations": {k: str(v) for k, v in self.segmentations.items()},
                "summary": self.summary, "report": self.report and str(self.report)}

    def as_table(self):
        """pandas DataFrame, one row per stage."""
        import pandas as pd

        return pd.DataFrame([s.to_dict() for s in self.stages])


def _provenance(out: Path, dataset: Mapping, root: Path, preset: Mapping | None) -> None:
    from electroseg.report import input_hashes, package_versions

    inputs = {}
    for i, volume in enumerate(dataset.get("volumes") or []):
        for channel, path in dict(volume["images"]).items():
            inputs[f"volume{i}.{channel}"] = root / str(path)
        for field in ("hand_labels", "labels"):
            if volume.get(field):
                inputs[f"volume{i}.{field}"] = root / str(volume[field])
    unique = {k: p for k, p in inputs.items() if p not in list(inputs.values())[:list(inputs).index(k)]}
    write_json(out / "provenance.json", {"versions": package_versions(),
                                         "inputs": input_hashes(unique), "preset": preset})


def _learned(out: Path, scan: Scan, dataset: dict, *, train_model: TrainModel | None,
             checkpoint: Path | None, predict_options: Mapping, train_settings: Mapping,
             upstream: str, redo: Sequence[str]) -> list[StageRecord]:
    stages = []
    if checkpoint is None:
        stages.append(run_stage("train", out / "train", lambda f: train_model(f, dataset),
                                settings={"upstream": upstream, "dataset": dataset,
                                          "train": dict(train_settings)},
                                force="train" in redo))
        checkpoint, source = best_checkpoint(out / "train"), stages[-1].fingerprint
    else:
        from electroseg.models.pretrained import resolve_checkpoint

        checkpoint = resolve_checkpoint(checkpoint)  # pretrained:NAME -> the shipped file
        source = {"checkpoint": str(checkpoint), "sha256": _file_hash(checkpoint)}
    stages.append(run_stage("predict", out / "predict", lambda f: predict_learned(
        scan, Path(checkpoint), f, options=predict_options),
        settings={"upstream": upstream, "model": source, "options": dict(predict_options)},
        force="predict" in redo))
    return stages


def _file_hash(path: Path) -> str:
    from electroseg.report import sha256_file

    return sha256_file(path) if path.exists() else "missing"


def _front(out: Path, dataset: Mapping, preset: Mapping | None, steps: Sequence[Mapping],
           classical: Mapping, redo: Sequence[str]) -> tuple[list[StageRecord], Path, dict, Scan]:
    """data, preprocess and classical stages; returns (stages, root, prepared dataset, scan)."""
    stages = []
    if dataset.get("synthetic"):
        stages.append(run_stage("data", out / "data", lambda f: synthesize(f, dataset, preset),
                                settings={"synthetic": dataset["synthetic"], "preset": preset},
                                force="data" in redo))
    root = dataset_root(dataset, out / "data")
    sets = image_sets(dataset, root)
    upstream = stages[-1].fingerprint if stages else {k: {c: str(p) for c, p in v.items()}
                                                      for k, v in sets.items()}
    stages.append(run_stage("preprocess", out / "preprocess", lambda f: [preprocess_images(
        images, f / key, steps=steps, voxel_size=dataset.get("voxel_size"))
        for key, images in sets.items()], settings={"upstream": upstream, "steps": list(steps)},
        force="preprocess" in redo))
    prepared = preprocessed_dataset(dataset, root, out / "preprocess", classical)
    check_label_shapes(prepared)
    scan = target_scan(prepared, root)
    stages.append(run_stage("classical", out / "classical", lambda f: segment_classical(
        scan, f, options=classical), settings={"upstream": stages[-1].fingerprint,
                                               "scan": scan.to_dict(), "options": dict(classical)},
        force="classical" in redo))
    return stages, root, prepared, scan


def run_pipeline(out: str | Path, *, dataset: Mapping[str, Any], preset: Mapping | None = None,
                 preprocess_steps: Sequence[Mapping] = (), classical: Mapping[str, Any] | None = None,
                 train_model: TrainModel | None = None, checkpoint: str | Path | None = None,
                 predict_options: Mapping[str, Any] | None = None,
                 analysis_options: Mapping[str, Any] | None = None,
                 train_settings: Mapping[str, Any] | None = None, blocks_per_axis: int = 3,
                 redo: Sequence[str] = (), report: bool = True,
                 title: str | None = None) -> RunResult:
    """Run data → preprocess → classical → train → predict → analysis → compare → report.

    Parameters
    ----------
    out : path
        Run folder; one subfolder per stage, plus summary.json, provenance.json, report.*.
    dataset : mapping
        A dataset config (``configs/data`` format). With a ``synthetic`` block its samples are
        generated into ``out/data/`` (from ``preset``, or the preset it names).
    preset : mapping, optional
        Synthetic preset parameters overriding the dataset's preset.
    preprocess_steps : sequence of mapping
        `electroseg.preprocess.preprocess_volume` steps applied to every image set.
    classical : mapping
        `electroseg.classical.segment_volume` options (``channel`` picks a detector); also
        used by training for pseudo-labels.
    train_model : callable, optional
        ``train_model(folder, dataset) -> checkpoint``; None and no ``checkpoint``: no learned
        route (classical only).
    checkpoint : path, optional
        A trained checkpoint to predict with instead of training.
    train_settings : mapping
        What identifies the training besides the data (model, trainer, overrides, seed): a
        change retrains on rerun.
    predict_options, analysis_options : mapping
        Keyword options of `predict_volume` and `analyze_labels`.
    blocks_per_axis : int
        In-plane sub-blocks for the comparison's within-sample variability.
    redo : sequence of str
        Stages to redo even when their outputs exist (names from `STAGES`). A stage is redone
        anyway when its settings or an upstream stage changed (see `run_stage`).
    report : bool
        Write summary.json and report.html / report.md.

    Returns
    -------
    RunResult
    """
    unknown = sorted(set(redo) - set(STAGES))
    if unknown:
        raise InputError(f"redo: expected stage names among {list(STAGES)}, got {unknown}")
    classical, predict_options = dict(classical or {}), dict(predict_options or {})
    analysis_options, train_settings = dict(analysis_options or {}), dict(train_settings or {})
    out = Path(out).resolve()  # stage products refer to each other by path: relative ones broke
    out.mkdir(parents=True, exist_ok=True)
    stages, root, prepared, scan = _front(out, dataset, preset, preprocess_steps, classical, redo)
    segmentations = {"classical": out / "classical" / "labels.tif"}
    _check_voxel_size(segmentations["classical"], scan, dataset, root)  # before training: analysis needs it
    if train_model is not None or checkpoint is not None:
        stages += _learned(out, scan, prepared, train_model=train_model, checkpoint=checkpoint,
                           predict_options=predict_options, train_settings=train_settings,
                           upstream=next(s.fingerprint for s in stages if s.name == "preprocess"),
                           redo=redo)
        segmentations["learned"] = out / "predict" / "labels.tif"
    if scan.truth is not None:
        segmentations["truth"] = scan.truth
    made = [s.fingerprint for s in stages if s.name in ("classical", "predict")]
    stages.append(run_stage("analysis", out / "analysis", lambda f: analyse(
        segmentations, scan, f, options=analysis_options, dataset=prepared),
        settings={"upstream": made, "options": dict(analysis_options)},
        force="analysis" in redo))
    stages.append(run_stage("compare", out / "compare", lambda f: compare(
        segmentations, scan, f, blocks_per_axis=blocks_per_axis),
        settings={"upstream": made, "blocks_per_axis": blocks_per_axis},
        force="compare" in redo))
    _provenance(out, dataset, root, preset)
    return _finish(out, scan, tuple(stages), segmentations, report=report, title=title)


def _check_voxel_size(labels: Path, scan: Scan, dataset: Mapping, root: Path) -> None:
    """InputError, before the long stages, when the analysis will find no voxel size."""
    from electroseg.io import read_volume

    found = read_volume(labels, lazy=True)
    if scan.voxel_size is None and found.voxel_size is None:
        images = [str(p) for channels in image_sets(dataset, root).values() for p in channels.values()]
        target = [str(p) for p in target_scan(dataset, root).images.values()]  # the files, not their copies
        others = len(set(images) - set(target))
        named = target[0] if len(target) == 1 else target
        axes = "[z,y,x]" if found.ndim_spatial == 3 else "[y,x]"
        raise InputError(f"{named}{f' (and {others} other images)' if others else ''}: the analysis needs the "
                         f"voxel size, but the images have none; give it as data.voxel_size={axes} in micrometres")


def _finish(out: Path, scan: Scan, stages: tuple, segmentations: dict, *, report: bool,
            title: str | None) -> RunResult:
    from electroseg.report import build_report
    from electroseg.report.summary import summarize_run

    summary = summarize_run(out)
    html = None
    if report:
        write_json(out / "summary.json", summary)
        html = build_report(out, title=title).html
    return RunResult(out, scan, stages, segmentations, summary, html)


def _shared_model(out: Path, dataset: Mapping, presets: Mapping, options: dict) -> StageRecord:
    """Train one model on the labels of both samples (``out/train``), front stages first."""
    prepared, upstream = {}, []
    for name in ("pristine", "cycled"):
        stages, _, prepared[name], _ = _front(out / name, dataset, presets[name],
                                              options["preprocess_steps"], options["classical"],
                                              options.get("redo", ()))
        upstream.append(next(s.fingerprint for s in stages if s.name == "preprocess"))
    combined = {**prepared["pristine"], "name": f"{dataset.get('name')} pristine+cycled",
                "volumes": prepared["pristine"]["volumes"] + prepared["cycled"]["volumes"]}
    return run_stage("train", out / "train", lambda f: options["train_model"](f, combined),
                     settings={"upstream": upstream, "dataset": combined,
                               "train": dict(options.get("train_settings") or {})},
                     force="train" in options.get("redo", ()))


def run_cycling(out: str | Path, *, dataset: Mapping[str, Any], presets: Mapping[str, Mapping],
                shared_model: bool = True, tolerance: float = 0.03, **options: Any) -> RunResult:
    """Pristine and cycled samples through `run_pipeline`, then the PBA drop of every route.

    Parameters
    ----------
    out : path
        ``out/pristine`` and ``out/cycled`` are full runs; ``out/cycling`` holds cycling.json
        and the PBA-versus-depth figure; ``out/train`` the shared model; the report covers all.
    dataset : mapping
        A synthetic dataset config (its preset is replaced per sample).
    presets : mapping with keys "pristine" and "cycled"
        Preset parameters of each sample (same seeds: same particles).
    shared_model : bool
        Train one model on the hand-labelled slices and pseudo-labels of both samples and
        predict both with it (a model trained on pristine labels only never sees detached CBD);
        False trains a model per sample.
    tolerance : float
        Acceptable difference between a route's PBA drop and the true drop.
    **options
        Passed to `run_pipeline` (``train_model``, ``classical``, ...).
    """
    from electroseg.evaluation.cycling import cycling_study, write_cycling

    out = Path(out).resolve()  # stage products refer to each other by path: relative ones broke
    extra: tuple[StageRecord, ...] = ()
    if shared_model and options.get("train_model") is not None and not options.get("checkpoint"):
        extra = (_shared_model(out, dataset, presets, options),)
        options = {**options, "train_model": None, "checkpoint": best_checkpoint(out / "train")}
    runs = {name: run_pipeline(out / name, dataset=dataset, preset=presets[name], report=False,
                               **options) for name in ("pristine", "cycled")}
    study = cycling_study({k: r.out for k, r in runs.items()}, tolerance=tolerance)
    scan = runs["pristine"].scan
    step = None if scan.voxel_size is None else scan.voxel_size[scan.depth_axis]
    write_cycling(study, out / "cycling", depth_step_um=step)
    stages = extra + runs["pristine"].stages + runs["cycled"].stages
    return _finish(out, scan, stages, runs["cycled"].segmentations, report=True,
                   title=options.get("title") or "electroseg: pristine versus cycled")

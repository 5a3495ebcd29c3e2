"""``electroseg segment``: preprocessing and classical segmentation of one image or volume."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from electroseg.config import plain as _plain
from electroseg.errors import InputError

HELP = "classical segmentation (preprocess, thresholds, gradient analysis)"

logger = logging.getLogger(__name__)


def _registered_on(steps: list[dict[str, Any]], volume: Any, channel: int) -> list[dict[str, Any]]:
    """Steps for a multi-channel input segmented on ``channel``: ``register_slices`` reads the
    drift from that channel unless the step names another (index or detector name)."""
    if not volume.is_multichannel:
        return steps
    if not 0 <= channel < len(volume.channels):
        raise InputError(f"channel: expected 0..{len(volume.channels) - 1} for {volume.source}, got {channel}")
    return [{"channel": channel, **step} if step.get("step") == "register_slices" else step for step in steps]


def _segment_options(segmenter: dict[str, Any], cfg: DictConfig) -> dict[str, Any]:
    phases = tuple(_plain(cfg.phases))
    order = _plain(cfg.phase_order)
    return {**segmenter, "phases": phases, "phase_order": None if order is None else tuple(order)}


def run(cfg: DictConfig) -> int:
    """Read ``cfg.input``, preprocess, segment, write labels/confidence/thresholds (+ analysis)."""
    from electroseg.classical import segment_volume
    from electroseg.io import read_volume, write_json, write_tiff
    from electroseg.preprocess import preprocess_volume, write_preprocess_qc

    volume = read_volume(cfg.input, voxel_size=_plain(cfg.voxel_size))
    if cfg.analyze:  # before segmenting and writing anything
        volume.require_voxel_size("the analysis of segment (analyze=true)")
    data, multichannel, channel = volume.numpy(), volume.is_multichannel, int(cfg.channel)
    steps = _registered_on(_plain(cfg.preprocess.steps) or [], volume, channel)
    prepared = preprocess_volume(data, steps=steps, multichannel=multichannel,
                                 channel_names=volume.channels if multichannel else None)
    image = prepared.image[channel] if multichannel else prepared.image
    try:
        segmentation = segment_volume(image, **_segment_options(_plain(cfg.segmenter), cfg))
    except InputError as err:  # name the file: segment_volume only knows it was given an array
        raise InputError(f"{cfg.input}: {err}") from err
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    write_tiff(out / "labels.tif", segmentation.labels, voxel_size=volume.voxel_size, phases=segmentation.phases)
    write_tiff(out / "confidence.tif", segmentation.confidence, voxel_size=volume.voxel_size)
    write_json(out / "thresholds.json", {**segmentation.to_dict(), "preprocess": prepared.to_dict()})
    if steps:
        write_preprocess_qc(prepared, data, out, channel=channel if multichannel else None,
                            label=volume.channels[channel] if multichannel else "")
    if cfg.analyze:
        _analyze(segmentation, volume, image, cfg, out)
    if cfg.sensitivity_delta is not None:
        _sensitivity(segmentation, image, cfg, out)
    logger.info("segment: %s -> %s, fractions %s", cfg.input, out,
                {k: round(v, 3) for k, v in segmentation.to_dict()["volume_fraction"].items()})
    return 0


def _sensitivity(segmentation: Any, image: np.ndarray, cfg: DictConfig, out: Path) -> None:
    from electroseg.classical import threshold_sensitivity
    from electroseg.io import atomic_output, write_json

    if np.ndim(segmentation.thresholds) != 1:
        raise InputError("sensitivity_delta: needs global thresholds, got per-slice thresholds (per_slice=true)")
    segmenter = _plain(cfg.segmenter)
    result = threshold_sensitivity(
        image, thresholds=segmentation.thresholds, delta=float(cfg.sensitivity_delta),
        phases=segmentation.phases, phase_order=segmentation.phase_order, depth_axis=int(cfg.depth_axis),
        gradient=segmenter.get("gradient"), cleanup=segmenter.get("cleanup"),
        smooth=segmentation.smoothing_sigma,
    )
    with atomic_output(out / "threshold_sensitivity.csv") as tmp:
        result.as_table().to_csv(tmp, index=False)
    write_json(out / "threshold_sensitivity.json", result.to_dict())


def _analyze(segmentation: Any, volume: Any, image: np.ndarray, cfg: DictConfig, out: Path) -> None:
    from electroseg.analysis import analyze_labels, write_analysis

    voxel_size = volume.require_voxel_size("the analysis of segment (analyze=true)")
    result = analyze_labels(segmentation.labels, voxel_size=voxel_size, depth_axis=int(cfg.depth_axis),
                            phases=segmentation.phases, image=image, source=str(cfg.input))
    write_analysis(result, out)

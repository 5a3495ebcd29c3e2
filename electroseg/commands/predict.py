"""``electroseg predict``: batch inference with a trained checkpoint (see configs/predict.yaml)."""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from electroseg.config import plain as _plain

HELP = "batch inference with a trained checkpoint"

logger = logging.getLogger(__name__)


def run(cfg: DictConfig) -> int:
    """Call :func:`electroseg.inference.predict_batch`; exit status 1 when any input failed."""
    from electroseg.inference import predict_batch

    result = predict_batch(
        cfg.checkpoint, _plain(cfg.inputs), cfg.out,
        analyze=bool(cfg.analyze), save_probabilities=_plain(cfg.save_probabilities),
        tta=bool(cfg.tta), overwrite=bool(cfg.overwrite), chunked=cfg.chunked,
        chunked_format=str(cfg.chunked_format),
        voxel_size=_plain(cfg.voxel_size), depth_axis=int(cfg.depth_axis),
        overlap=float(cfg.overlap), batch_size=cfg.batch_size, device=cfg.device,
        precision=str(cfg.precision), max_memory_bytes=cfg.max_memory_bytes,
        progress=bool(cfg.progress), executor=str(cfg.executor), dask=_plain(cfg.dask),
        slab_size=int(cfg.slab_size), volume_fractions=_plain(cfg.get("volume_fractions")),
        uncertainty=bool(cfg.get("uncertainty", True)), qa_tiling=bool(cfg.get("qa_tiling", False)),
        hand_labels=_plain(cfg.get("hand_labels")), scale=_plain(cfg.get("scale", "auto")),
        intensity_window=_plain(cfg.get("intensity_window")),
    )
    for failed in (r for r in result.results if r.status == "failed"):
        logger.error("%s", failed.error)
    logger.info("summary: %s", result.summary_path)
    return 1 if result.failed else 0

"""``electroseg compare``: agreement of two segmentations and of their metrics, with figures."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from electroseg.errors import InputError

HELP = "agreement of two segmentations and of their metrics"

logger = logging.getLogger(__name__)


def _list(cfg: DictConfig, key: str):
    value = cfg.get(key)
    return None if value is None else list(OmegaConf.to_container(value, resolve=True))


def run(cfg: DictConfig) -> int:
    """Read the label files, compare, write comparison.json, figures and (optionally) a report."""
    from electroseg.evaluation import compare_segmentations, write_comparison
    from electroseg.io import UNLABELLED, read_labels, read_volume

    phases = tuple(_list(cfg, "phases"))
    opts = dict(phases=phases, label_values=_list(cfg, "label_values"),
                ignore_value=int(cfg.ignore_value), voxel_size=_list(cfg, "voxel_size"))
    a = read_labels(cfg.a, **opts)
    b = read_labels(cfg.b, **opts)
    reference = read_labels(cfg.reference, **opts) if cfg.reference else None
    voxel_size = a.require_voxel_size("particle volumes (µm³)")
    names = _list(cfg, "names")
    if len(names) != 2:
        raise InputError(f"names: expected two names (for a and b), got {names}")
    comparison = compare_segmentations(
        a.numpy(), b.numpy(), reference=None if reference is None else reference.numpy(),
        voxel_size=voxel_size, depth_axis=int(cfg.depth_axis), phases=phases,
        ignore_value=UNLABELLED, names=names, blocks_per_axis=int(cfg.blocks_per_axis))  # read_labels maps ignore_value to it
    shown = {names[0]: a.numpy(), names[1]: b.numpy()}
    if reference is not None:
        shown["reference"] = reference.numpy()
    image = read_volume(cfg.image, allow_channels=False).numpy() if cfg.image else None
    write_comparison(comparison, cfg.out, segmentations=shown, image=image,
                     depth_step_um=float(voxel_size[int(cfg.depth_axis)]),
                     ignore_value=UNLABELLED)
    if cfg.report:
        from electroseg.report import build_report

        files = build_report(cfg.out, title=f"electroseg compare: {names[0]} vs {names[1]}")
        logger.info("report: %s", files.html)
    logger.info("comparison written to %s", Path(cfg.out) / "comparison.json")
    return 0

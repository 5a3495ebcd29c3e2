"""``electroseg inspect CHECKPOINT``: what a checkpoint is, what it was trained on, how it scored."""

from __future__ import annotations

import json

from omegaconf import DictConfig

HELP = "print a checkpoint's network, phases, channels, voxel size, training data, scores, versions"
POSITIONAL = "checkpoint"  # `electroseg inspect CK` means checkpoint=CK


def run(cfg: DictConfig) -> int:
    from electroseg.models.export import format_inspection, inspect_checkpoint

    info = inspect_checkpoint(str(cfg.checkpoint))
    print(json.dumps(info, indent=2, default=str) if cfg.json else format_inspection(info))
    return 0

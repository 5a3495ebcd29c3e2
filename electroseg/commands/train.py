"""``electroseg train``: fit a learned segmentation model to a dataset config.

Synthetic datasets (a ``synthetic:`` block in the dataset config, e.g. ``data=nmc_fibsem``) are
generated with ``electroseg synth`` into ``<cache_dir>/synthetic/<preset>/<folder>`` the first
time they are needed, and ``data.root`` is pointed there.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from electroseg.errors import InputError

HELP = "train a learned segmentation model (writes <out>/checkpoints/best.ckpt and last.ckpt)"

logger = logging.getLogger(__name__)


def prepare_synthetic(cfg: DictConfig) -> None:
    """Generate missing synthetic samples of ``cfg.data.synthetic`` and set ``cfg.data.root``.

    Without an explicit ``data.root`` the samples go to
    ``<cache_dir>/synthetic/<preset>/<shape>-<hash>``, the hash taken over the preset's settings
    and the shape: a sample made with another shape or an edited preset is never reused.
    (After upgrading electroseg, delete the cache to regenerate samples with the new generator.)
    """
    block = cfg.data.get("synthetic")
    if not block:
        return
    from electroseg.commands import synth
    from electroseg.config import compose_command

    preset = str(block.preset)
    shape = block.get("shape")
    root = Path(cfg.data.root) if cfg.data.get("root") else synthetic_cache_folder(cfg.cache_dir, preset, shape)
    for folder, seed in OmegaConf.to_container(block.samples, resolve=True).items():
        target = root / str(folder)
        if (target / "truth.json").is_file():
            continue
        logger.info("generating synthetic %s seed %s into %s", preset, seed, target)
        overrides = [f"preset={preset}", f"seed={int(seed)}", f"out={target}"]
        if shape is not None:
            overrides.append(f"shape=[{','.join(str(int(s)) for s in shape)}]")
        target.mkdir(parents=True, exist_ok=True)
        synth.run(compose_command("synth", overrides))
    with open_dict(cfg):
        cfg.data.root = str(root)


def synthetic_cache_folder(cache_dir: str | Path, preset: str, shape=None) -> Path:
    """``<cache_dir>/synthetic/<preset>/<shape>-<hash>`` for samples of a built-in preset."""
    import hashlib
    import json

    from electroseg.synthetic import load_preset

    settings = load_preset(preset)
    size = [int(s) for s in shape] if shape is not None else list(settings.get("shape") or [])
    digest = hashlib.sha256(json.dumps({"preset": settings, "shape": size}, sort_keys=True,
                                       default=str).encode()).hexdigest()[:8]
    return Path(cache_dir) / "synthetic" / preset / f"{'x'.join(map(str, size)) or 'default'}-{digest}"


def run(cfg: DictConfig) -> int:
    """Prepare the data, train, and log the final validation metrics."""
    from electroseg.training import train

    if not cfg.get("out"):
        raise InputError("out: expected an output folder, e.g. out=runs/my_model")
    OmegaConf.to_container(cfg.data, resolve=True)  # an unset ${data_dir:...} fails here, before out exists
    prepare_synthetic(cfg)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    metrics = train(cfg)
    logger.info("training finished: %s", {k: v for k, v in metrics.items() if k.startswith("val/")})
    logger.info("best checkpoint: %s", metrics.get("best_checkpoint"))
    return 0


def help_extra(cfg: DictConfig) -> str:
    """The built-in model configs, read from their YAML (no network is built: --help stays fast;
    ``electroseg inspect`` prints a trained model's parameter count and plan)."""
    from electroseg.config_files import builtin_config_dir

    lines = ["models (model=NAME):"]
    for path in sorted((builtin_config_dir() / "model").glob("*.yaml")):
        model = OmegaConf.load(path)
        lines.append(f"  model={path.stem}: features {list(model.get('channels', []))}, "
                     f"patch {list(model.get('patch_size', []))}, {model.get('norm', 'instance')} norm, "
                     f"batch {model.get('batch_size', 2)}")
    return "\n".join(lines)

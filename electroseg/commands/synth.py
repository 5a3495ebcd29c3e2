"""``electroseg synth``: write a synthetic electrode sample with exact ground truth."""

from __future__ import annotations

import logging

from omegaconf import DictConfig, OmegaConf

from electroseg.errors import InputError

HELP = "make a synthetic electrode sample with ground truth"

logger = logging.getLogger(__name__)


def run(cfg: DictConfig) -> int:
    """Build the sample of ``cfg.preset`` with ``cfg.seed`` and write it into ``cfg.out``."""
    from electroseg.synthetic import make_sample, sample_truth, write_sample

    preset = OmegaConf.to_container(cfg.preset, resolve=True)
    if not isinstance(preset, dict):
        raise InputError(f"preset: expected a preset mapping (preset=NAME), got {preset!r}")
    shape = cfg.get("shape")
    shape = None if shape is None else list(OmegaConf.to_container(shape, resolve=True))
    seed = cfg.seed
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise InputError(f"seed: expected a non-negative integer, got {seed!r}")
    sample = make_sample(preset, seed=seed, shape=shape)
    files = write_sample(sample, cfg.out)
    truth = sample_truth(sample)
    pba = truth["pba"]["pooled"] if truth["pba"] else None
    logger.info("synth %s seed %d: shape %s, fractions %s, PBA %s, %s particles -> %s",
                sample.name, seed, truth["shape"],
                {k: round(v, 3) for k, v in truth["volume_fraction"].items()},
                None if pba is None else round(pba, 3), truth["particle_count"],
                ", ".join(str(p) for p in files))
    return 0

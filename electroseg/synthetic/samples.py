"""Generated training data: the samples a dataset config's ``synthetic:`` block asks for, made once.

A dataset config may say::

    synthetic: {preset: nmc_fibsem, shape: [64, 192, 192], samples: {s0: 0, s1: 1}}

:func:`ensure_samples` writes each missing sample (``make_sample`` + ``write_sample``) into
``<root>/<folder>``; :func:`cache_folder` names the default root,
``<cache_dir>/synthetic/<preset>/<shape>-<hash>``, the hash taken over the preset's settings and
the shape, so a sample made with another shape or an edited preset is never reused (after
upgrading electroseg, delete the cache to regenerate samples with the new generator).
``electroseg train``, ``electroseg run``, the benchmarks and the tests all prepare data here.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from electroseg.synthetic.sample import load_preset, make_sample
from electroseg.synthetic.writer import write_sample

__all__ = ["cache_folder", "ensure_samples", "prepare_synthetic"]

logger = logging.getLogger(__name__)


def cache_folder(cache_dir: str | Path, preset: str, shape: Sequence[int] | None = None) -> Path:
    """``<cache_dir>/synthetic/<preset>/<shape>-<hash>`` for samples of a built-in preset."""
    settings = load_preset(preset)
    size = [int(s) for s in shape] if shape is not None else list(settings.get("shape") or [])
    digest = hashlib.sha256(json.dumps({"preset": settings, "shape": size}, sort_keys=True,
                                       default=str).encode()).hexdigest()[:8]
    return Path(cache_dir) / "synthetic" / preset / f"{'x'.join(map(str, size)) or 'default'}-{digest}"


def ensure_samples(block: Mapping[str, Any], root: str | Path, *, params: Mapping[str, Any] | None = None,
                   default_samples: Mapping[str, int] | None = None) -> Path:
    """Write the samples of a ``synthetic:`` block that ``root`` does not hold yet; return ``root``.

    Parameters
    ----------
    block : mapping
        ``preset`` (a built-in preset name), optional ``shape`` and ``samples`` ``{folder: seed}``.
    root : path
        Samples go to ``root/<folder>``; one holding ``truth.json`` is complete and kept.
    params : mapping, optional
        The preset's settings (default ``load_preset(block["preset"])``).
    default_samples : mapping, optional
        Used when the block names no samples.
    """
    root = Path(root)
    settings = dict(params) if params is not None else load_preset(str(block["preset"]))
    shape = block.get("shape")
    shape = None if shape is None else [int(s) for s in shape]
    samples = dict(block.get("samples") or default_samples or {})
    for folder, seed in samples.items():
        target = root / str(folder)
        if (target / "truth.json").is_file():
            continue
        logger.info("generating synthetic %s seed %s into %s", settings.get("name", block.get("preset")), seed, target)
        target.mkdir(parents=True, exist_ok=True)
        write_sample(make_sample(settings, seed=int(seed), shape=shape), target)
    return root


def prepare_synthetic(cfg: Any) -> None:
    """Generate the missing samples of a composed config's ``data.synthetic`` and set ``data.root``.

    ``cfg`` is a composed ``train`` (or ``run``) config: without an explicit ``data.root`` the
    samples go to :func:`cache_folder` under ``cfg.cache_dir``. Nothing happens for a dataset
    that is not synthetic.
    """
    from omegaconf import OmegaConf, open_dict

    block = cfg.data.get("synthetic")
    if not block:
        return
    block = OmegaConf.to_container(block, resolve=True)
    root = Path(cfg.data.root) if cfg.data.get("root") else cache_folder(cfg.cache_dir, str(block["preset"]),
                                                                          block.get("shape"))
    ensure_samples(block, root)
    with open_dict(cfg):
        cfg.data.root = str(root)

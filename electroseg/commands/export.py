"""``electroseg export``: hand a checkpoint on, as a bioimage.io package or an inference-only checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from electroseg.errors import InputError

HELP = "write a checkpoint as a bioimage.io model package, or without optimizer state"
SAVE_CONFIG = False  # `out` is the product itself (a package folder or a checkpoint file)

logger = logging.getLogger(__name__)


def run(cfg: DictConfig) -> int:
    from electroseg.models import read_checkpoint, spec_from_checkpoint
    from electroseg.models.export import export_bioimageio, slim_checkpoint

    if cfg.format not in ("bioimageio", "checkpoint"):
        raise InputError(f"format: expected bioimageio or checkpoint, got {cfg.format!r}")
    out = Path(str(cfg.out))
    if out.exists() and (cfg.format == "checkpoint" or not out.is_dir() or any(out.iterdir())):
        raise InputError(f"out: {out} exists; give a new {'file' if cfg.format == 'checkpoint' else 'folder'} "
                         "for the export")
    spec = spec_from_checkpoint(read_checkpoint(str(cfg.checkpoint)), source=str(cfg.checkpoint))
    if cfg.format == "checkpoint":
        slim_checkpoint(str(cfg.checkpoint), out)
        print(out)
        return 0
    try:
        import bioimageio.spec  # noqa: F401
    except ImportError:
        raise InputError("format=bioimageio needs bioimageio.spec and bioimageio.core: "
                         "pip install 'electroseg[export]'") from None
    test_input = None if cfg.test_input is None else _test_input(Path(str(cfg.test_input)), spec)
    export_bioimageio(str(cfg.checkpoint), out, name=cfg.name, license=str(cfg.license), test_input=test_input,
                      authors=[str(a) for a in OmegaConf.to_container(cfg.authors, resolve=True) or []])
    print(out)
    return 0


def _test_input(path: Path, spec) -> np.ndarray:
    """The centre of an image file, one training patch large (or smaller, in multiples of the
    network's down-sampling), with a 2.5-D model's context slices as channels."""
    from electroseg.io import read_volume
    from electroseg.models.export import size_divisor

    if len(spec.channels) != 1:
        raise InputError(f"test_input: a file serves one-detector models; this one has channels {list(spec.channels)}")
    data = read_volume(path).numpy().astype(np.float32)
    dims, k = len(spec.patch_size), spec.context_slices
    if dims == 2 and data.ndim == 2:
        if k:
            raise InputError(f"test_input: {path} is a 2-D image; this model reads +-{k} neighbouring slices, "
                             "give a volume")
        data = data[None]
    elif dims == 2:
        z = data.shape[0] // 2
        if z - k < 0 or z + k >= data.shape[0]:
            raise InputError(f"test_input: {path} has {data.shape[0]} slices; the model needs {2 * k + 1}")
        data = data[z - k:z + k + 1]
    elif data.ndim != 3:
        raise InputError(f"test_input: {path}: the 3-D model needs a (Z, Y, X) volume, got shape {data.shape}")
    else:
        data = data[None]
    divisor = size_divisor(spec.kwargs, dims)
    region = []
    for size, patch, d in zip(data.shape[1:], spec.patch_size, divisor):
        take = min(int(patch), size) // d * d
        if take == 0:
            raise InputError(f"test_input: {path} is smaller than the network's down-sampling {divisor}")
        start = (size - take) // 2
        region.append(slice(start, start + take))
    return data[(slice(None), *region)]

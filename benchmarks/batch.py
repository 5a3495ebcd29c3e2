"""Batch prediction of many small inputs: the network prepared once per batch against once per input.

    .venv/bin/python benchmarks/batch.py [--inputs N] [--rounds R] [--models unet3d,multichannel2d]

On the CPU, ``prepare_network`` traces and freezes the network (TorchScript) at its first batch
of windows. ``predict_batch`` does that once for all its inputs (``reuse_prepared_networks``);
the peer is the same batch with the network prepared afresh for every input, as before. Inputs
are N random uint16 images: 768 x 1024 SEM cross-sections for ``multichannel2d``, 32 x 256 x 256
volumes for ``unet3d`` (default models, random weights, bf16 on the CPU). Rounds alternate the
two settings; the ratio uses each setting's median round. Prints a table and the ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

SHAPES = {"multichannel2d": (768, 1024), "unet3d": (32, 256, 256)}
VOXEL = (0.05, 0.025, 0.025)


def _loaded(name: str):
    import torch

    from electroseg.models import LoadedModel, build_model
    from training import _spec  # the default model config, as benchmarks/training.py builds it

    torch.manual_seed(0)
    spec = _spec(name, False)
    return LoadedModel(network=build_model(spec).eval(), spec=spec)


def _timed_batch(loaded, pattern: str, out: Path, reuse: bool) -> float:
    import electroseg.inference.engine as engine
    from electroseg.inference import predict_batch

    real = engine.reuse_prepared_networks
    engine.reuse_prepared_networks = real if reuse else contextlib.nullcontext  # peer: prepare per input
    try:
        start = time.perf_counter()
        predict_batch(loaded, [pattern], out, device="cpu", progress=False)
        return time.perf_counter() - start
    finally:
        engine.reuse_prepared_networks = real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=8, help="inputs per batch (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both settings, alternated (default 3)")
    parser.add_argument("--models", default=",".join(SHAPES), help=f"among {','.join(SHAPES)}")
    args = parser.parse_args()
    from electroseg.io import write_tiff

    print(f"{'model':<16}{'input':<16}{'inputs':>7}{'setting':>18}  seconds per round")
    for name in args.models.split(","):
        shape, loaded = SHAPES[name], _loaded(name)
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.inputs):
                image = np.random.default_rng(i).integers(1000, 60000, size=shape, dtype=np.uint16)
                write_tiff(Path(tmp) / f"scan{i:03d}.tif", image, voxel_size=VOXEL[-len(shape):])
            times: dict[str, list[float]] = {"once per batch": [], "once per input": []}
            for r in range(args.rounds):
                for setting in times:
                    out = Path(tmp) / f"out_{r}_{setting.replace(' ', '_')}"
                    times[setting].append(_timed_batch(loaded, str(Path(tmp) / "scan*.tif"), out,
                                                       setting == "once per batch"))
            for setting, values in times.items():
                print(f"{name:<16}{'x'.join(map(str, shape)):<16}{args.inputs:>7}{setting:>18}  "
                      + " ".join(f"{v:.2f}" for v in values))
            ratio = np.median(times["once per input"]) / np.median(times["once per batch"])
            print(f"{name}: prepared once per batch is {ratio:.2f}x the throughput of once per input "
                  f"(medians)", flush=True)


if __name__ == "__main__":
    main()

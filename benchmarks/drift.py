"""Drift recovery from the specimen alone, over many seeds: all tiles against the less contrasted half.

    .venv/bin/python benchmarks/drift.py [--seeds A B] [--cases PRESET:DETECTOR ...] [--high H ...]

For each synthetic preset (and detector) and each generator seed, `estimate_shifts` reads the
drift of the simulated stack and is scored by the RMS error (px) of its per-slice shifts against
the shifts the generator applied. Columns: ``register_slices``' ``tile_contrast`` with no upper
bound (all textured tiles, the default) and with each ``--high`` (``[0.25, H]``: the tiles more
contrasted than H times the median tile, mostly particle walls, left out). The error of one stack
varies by a factor of 2-3 from seed to seed, so compare means over many seeds. The peer is the
default setting in the same run.

Default cases and seeds give the figures quoted in `estimate_shifts` and the README (about 4 min).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from electroseg.preprocess import estimate_shifts  # noqa: E402
from electroseg.synthetic import load_preset, make_sample  # noqa: E402

CASES = ("nmc_fibsem:sem", "kintsugi_2ch:tld", "kintsugi_2ch:cbs", "nmc_fibsem_cycled:sem", "he_nmc_fibsem:sem",
         "demo:sem")


def rms_error(estimated: np.ndarray, truth: np.ndarray) -> float:
    """RMS over slices of the (dy, dx) error, both relative to slice 0."""
    error = (estimated - estimated[0]) - (truth - truth[0])
    return float(np.sqrt(np.mean(np.sum(error**2, axis=1))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs=2, type=int, default=[0, 12], metavar=("FIRST", "STOP"),
                        help="generator seeds FIRST .. STOP-1 (default 0 12)")
    parser.add_argument("--cases", nargs="*", default=list(CASES), help="PRESET:DETECTOR pairs")
    parser.add_argument("--high", nargs="*", type=float, default=[1.0],
                        help="upper contrast bounds to compare with none (default 1.0)")
    args = parser.parse_args()
    settings = [("all tiles", (0.25, None))] + [(f"high {h:g}", (0.25, h)) for h in args.high]
    seeds = range(*args.seeds)
    print(f"RMS drift error (px), seeds {seeds.start}-{seeds.stop - 1}; mean, then per seed")
    print(f"{'preset:detector':<24}" + "".join(f"{name:>12}" for name, _ in settings))
    for case in args.cases:
        preset, detector = case.split(":")
        errors = {name: [] for name, _ in settings}
        for seed in seeds:
            sample = make_sample(load_preset(preset), seed=seed)
            for name, contrast in settings:
                errors[name].append(rms_error(estimate_shifts(sample.images[detector], tile_contrast=contrast),
                                              sample.shifts))
        print(f"{case:<24}" + "".join(f"{np.mean(errors[name]):>12.2f}" for name, _ in settings), flush=True)
        for name, _ in settings:
            print(f"{'':<4}{name:<20}" + " ".join(f"{e:.2f}" for e in errors[name]))


if __name__ == "__main__":
    main()

"""Time to generate a synthetic ``nmc_fibsem`` sample, per step, against a 20 s target.

Usage: ``.venv/bin/python benchmarks/synthetic.py [--quick] [--seed N]``

Peer: the target of 20 s for a 64 x 256 x 256 sample on 2 CPU cores (the whole sample: labels,
simulated image, truth.json metrics and the files). Prints a table of step times and
``ratio = total / target`` (< 1 is faster than the target). Also reports how far plain multi-Otsu
thresholding is from the ground truth (mean IoU), the realism check for the simulator.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import numpy as np
from skimage.filters import threshold_multiotsu

from electroseg.synthetic import (
    detach_cbd,
    generate_microstructure,
    load_preset,
    make_sample,
    random_drift_shifts,
    sample_truth,
    simulate_fibsem,
    write_sample,
)

TARGET_S = 20.0


def _timed(rows: list, name: str, func, *args, **kwargs):
    start = time.perf_counter()
    result = func(*args, **kwargs)
    rows.append((name, time.perf_counter() - start))
    return result


def _steps(preset: dict, shape: tuple, seed: int) -> list[tuple[str, float]]:
    """Each library step on its own (the same work make_sample does, split up)."""
    rows: list[tuple[str, float]] = []
    micro = _timed(rows, "generate_microstructure", generate_microstructure, shape,
                   voxel_size=preset["voxel_size"], seed=seed, **preset["microstructure"])
    _timed(rows, "detach_cbd (cycled variant)", detach_cbd, micro, seed=seed,
           **load_preset("nmc_fibsem_cycled")["cycling"])
    shifts = random_drift_shifts(shape[0], step_px=preset["drift_step_px"], seed=seed)
    _timed(rows, "simulate_fibsem", simulate_fibsem, micro.labels, voxel_size=preset["voxel_size"],
           shifts=shifts, seed=seed, **preset["detectors"]["sem"])
    return rows


def _otsu_iou(sample) -> float:
    image, labels = sample.images["sem"], sample.labels
    segmented = np.digitize(image, threshold_multiotsu(image, classes=3))
    ious = [np.sum((segmented == p) & (labels == p)) / np.sum((segmented == p) | (labels == p))
            for p in range(3)]
    return float(np.mean(ious))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="32 x 128 x 128 instead of 64 x 256 x 256")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    shape = (32, 128, 128) if args.quick else (64, 256, 256)
    preset = load_preset("nmc_fibsem")
    rows = _steps(preset, shape, args.seed)
    total_rows: list[tuple[str, float]] = []
    sample = _timed(total_rows, "make_sample", make_sample, preset, seed=args.seed, shape=shape)
    _timed(total_rows, "sample_truth (analysis)", sample_truth, sample)
    with tempfile.TemporaryDirectory() as out:
        _timed(total_rows, "write_sample (4 files)", write_sample, sample, out)
    total = total_rows[0][1] + total_rows[2][1]  # write_sample computes the truth itself
    width = 34
    sys.stdout.write(f"nmc_fibsem {shape[0]}x{shape[1]}x{shape[2]}, seed {args.seed}\n")
    sys.stdout.write(f"{'step':<{width}} {'seconds':>8}\n")
    for name, seconds in rows + total_rows:
        sys.stdout.write(f"{name:<{width}} {seconds:8.2f}\n")
    sys.stdout.write(f"{'total (make_sample + write_sample)':<{width}} {total:8.2f}\n")
    sys.stdout.write(f"{'target (peer)':<{width}} {TARGET_S:8.2f}\n")
    sys.stdout.write(f"ratio total/target = {total / TARGET_S:.3f} (< 1: faster than target)\n")
    truth = sample_truth(sample)
    fractions = {k: round(v, 3) for k, v in truth["volume_fraction"].items()}
    sys.stdout.write(f"fractions {fractions}, "
                     f"PBA {truth['pba']['pooled']:.3f}, particles {truth['particle_count']}, "
                     f"multi-Otsu mean IoU vs truth {_otsu_iou(sample):.3f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Particles against the generator's instances, and the speed of the split.

Accuracy (default): for each preset and seed, the synthetic labels' AM is split by each
definition (``none`` = connected clusters, ``watershed`` = the raw split, ``merged`` = the
default) and compared with particles.tif of the generator (`make_labels_and_particles`):

- count: particles of at least 27 voxels, relative error against the generator's;
- d50v: volume-weighted median equivalent diameter of whole particles (not touching a face of
  the volume), relative error;
- W1: Wasserstein distance between the volume-weighted distributions of log10 diameter
  (decades; 0 = identical size distributions);
- F1: share of particles matched one-to-one at IoU > 0.5 (2 m / (n_found + n_true));
- frag: fragments (pieces >= 27 voxels of particles) found / true.

Targets (issue 22): |count| <= 15 %, |d50v| <= 10 %.

Speed (``--speed``): the split of a (300, 768, 1024) label volume mirrored from nmc_fibsem
seed 0 (voxels 0.1 x 0.05 x 0.05 µm), in a child process: wall time and peak RSS.

    python benchmarks/particles.py                       # accuracy table (~2 min on one core)
    python benchmarks/particles.py --seeds 0 1 2 --presets nmc_fibsem
    python benchmarks/particles.py --speed [--shape 300 768 1024] [--split merged]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

MIN_VOXELS = 27
PRESETS = ("nmc_fibsem", "he_nmc_fibsem", "demo")
SPLITS = ("none", "watershed", "merged")


def _stats(ids: np.ndarray, voxel_size) -> tuple[np.ndarray, np.ndarray]:
    import cc3d

    stats = cc3d.statistics(ids.astype(np.uint32, copy=False), no_slice_conversion=True)
    voxels = np.asarray(stats["voxel_counts"], np.int64)
    boxes = np.asarray(stats["bounding_boxes"], np.int64).reshape(len(voxels), -1)
    keep = np.flatnonzero(voxels >= MIN_VOXELS)
    keep = keep[keep > 0]
    upper = np.asarray(ids.shape) - 1
    touches = (boxes[keep][:, 0::2] == 0).any(1) | (boxes[keep][:, 1::2] >= upper).any(1)
    return np.cbrt(6 * voxels[keep] * float(np.prod(voxel_size)) / np.pi), touches


def volume_weighted_median(d: np.ndarray) -> float:
    if d.size == 0:
        return float("nan")
    order = np.argsort(d)
    cumulative = np.cumsum(d[order] ** 3)
    return float(d[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def matched_f1(found: np.ndarray, truth: np.ndarray) -> float:
    """2 m / (n_found + n_true), m = pairs with IoU > 0.5 (each side >= 27 voxels counted)."""
    f, t = found.ravel().astype(np.int64), truth.ravel().astype(np.int64)
    both = (f > 0) & (t > 0)
    pairs, overlap = np.unique(f[both] << 32 | t[both], return_counts=True)
    vf, vt = np.bincount(f), np.bincount(t)
    pf, pt = pairs >> 32, pairs & 0xFFFFFFFF
    iou = overlap / (vf[pf] + vt[pt] - overlap)
    n = int((vf[1:] >= MIN_VOXELS).sum()) + int((vt[1:] >= MIN_VOXELS).sum())
    return 2 * int((iou > 0.5).sum()) / n if n else float("nan")


def compare(found: np.ndarray, truth: np.ndarray, voxel_size) -> dict:
    from scipy.stats import wasserstein_distance

    from electroseg.analysis.particles import find_fragments

    df, tf = _stats(found, voxel_size)
    dt, tt = _stats(truth, voxel_size)
    frag_found = np.bincount(find_fragments(found)[0].ravel())[1:]
    frag_true = np.bincount(find_fragments(truth)[0].ravel())[1:]
    return {"n": df.size, "n_true": dt.size, "count": df.size / dt.size - 1,
            "d50v": volume_weighted_median(df[~tf]) / volume_weighted_median(dt[~tt]) - 1,
            "w1": wasserstein_distance(np.log10(df), np.log10(dt), df ** 3, dt ** 3),
            "f1": matched_f1(found, truth),
            "frag": (int((frag_found >= MIN_VOXELS).sum()), int((frag_true >= MIN_VOXELS).sum()))}


def accuracy(presets, seeds, splits) -> list[dict]:
    from electroseg.analysis.particles import find_particles
    from electroseg.synthetic import load_preset, make_labels_and_particles

    rows = []
    print(f"{'preset':14s} {'seed':>4s} {'voxel µm':>15s} {'split':9s} {'found':>6s} "
          f"{'true':>5s} {'count':>7s} {'d50v':>7s} {'W1':>6s} {'F1':>5s} {'frag':>10s} "
          f"{'time s':>6s}")
    for preset_name in presets:
        preset = load_preset(preset_name)
        for seed in seeds:
            labels, truth, _ = make_labels_and_particles(preset, seed=seed)
            vs = tuple(preset["voxel_size"])
            for split in splits:
                start = time.perf_counter()
                found = find_particles(labels, voxel_size=vs, split=split)
                elapsed = time.perf_counter() - start
                row = {"preset": preset_name, "seed": seed, "split": split, "time_s": elapsed,
                       **compare(found, truth, vs)}
                rows.append(row)
                print(f"{preset_name:14s} {seed:4d} {'x'.join(f'{v:g}' for v in vs):>15s} "
                      f"{split:9s} {row['n']:6d} {row['n_true']:5d} {row['count']:+7.1%} "
                      f"{row['d50v']:+7.1%} {row['w1']:6.3f} {row['f1']:5.3f} "
                      f"{row['frag'][0]:>4d}/{row['frag'][1]:<5d} {elapsed:6.1f}", flush=True)
    print("\nsummary (mean |error| and worst over presets x seeds):")
    for split in splits:
        sel = [r for r in rows if r["split"] == split]
        count = np.abs([r["count"] for r in sel])
        d50 = np.abs([r["d50v"] for r in sel])
        within = sum((abs(r["count"]) <= 0.15) and (abs(r["d50v"]) <= 0.10) for r in sel)
        print(f"  {split:9s} count {count.mean():5.1%} (worst {count.max():5.1%})  "
              f"d50v {d50.mean():5.1%} (worst {d50.max():5.1%})  "
              f"W1 {np.mean([r['w1'] for r in sel]):.3f}  F1 {np.mean([r['f1'] for r in sel]):.3f}"
              f"  both targets met in {within}/{len(sel)}")
    return rows


def _speed_child(shape, split) -> None:
    import resource

    from electroseg.analysis.particles import find_particles
    from electroseg.synthetic import load_preset, make_labels

    preset = load_preset("nmc_fibsem")
    tile, _ = make_labels(preset, seed=0)
    reps = [-(-n // t) for n, t in zip(shape, tile.shape)]
    labels = tile
    for axis, r in enumerate(reps):  # mirror tiling: no cut particles at the seams
        labels = np.concatenate([labels if i % 2 == 0 else np.flip(labels, axis)
                                 for i in range(r)], axis=axis)
    labels = np.ascontiguousarray(labels[tuple(slice(0, n) for n in shape)])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    start = time.perf_counter()
    ids = find_particles(labels, voxel_size=tuple(preset["voxel_size"]), split=split)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    print(f"split={split} shape={tuple(shape)} ({np.prod(shape) / 1e6:.0f} Mvoxel): "
          f"{elapsed:.1f} s, peak RSS {peak:.2f} GB (labels alone {labels.nbytes / 2**30:.2f} GB, "
          f"RSS before the split {before:.2f} GB), {int(ids.max())} particles", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--splits", nargs="+", default=list(SPLITS))
    parser.add_argument("--speed", action="store_true", help="time the split on a large volume")
    parser.add_argument("--shape", nargs=3, type=int, default=[300, 768, 1024])
    parser.add_argument("--split", default="merged", help="--speed: the split to time")
    args = parser.parse_args(argv)
    if args.speed:
        import subprocess

        code = (f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); "
                f"import particles; particles._speed_child({args.shape!r}, {args.split!r})")
        return subprocess.call([sys.executable, "-c", code])
    accuracy(args.presets, args.seeds, args.splits)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

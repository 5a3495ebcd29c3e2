"""Whole commands, as a user runs them: start-up, reading, computing and writing, against their peers.

Every case is a separate process timed from the outside (GNU ``/usr/bin/time``: wall seconds and
peak resident memory), in rounds that alternate the cases; the table gives each case's median.

- ``analyze``: ``electroseg analyze`` with its defaults on a 300 x 768 x 1024 label TIFF (the
  particle split, collector connectivity, sub-block uncertainty, representative volume, figures),
  and the same with one product turned off at a time (what each product costs). Peer: the plain
  route in a fresh Python process: ``tifffile.imread``, then NumPy counts per depth plane and face
  pairs, ``scipy.ndimage.label`` and ``skimage.measure.regionprops_table``
  (``benchmarks/analysis.py``'s peer).
- ``predict``: ``electroseg predict`` with the default ``unet3d`` (random weights in a checkpoint
  file) on a 128 x 512 x 512 uint16 TIFF, labels written. Peer: plain MONAI
  ``sliding_window_inference`` in float32, network only (``benchmarks/inference.py``'s
  ``monai_fp32`` case: the same patch, overlap and windows per batch; its process start, reading
  and model building are not counted).

    .venv/bin/python benchmarks/commands.py [--quick] [--rounds 3] [--only analyze predict]

Targets (issue 28): analyze >= 5x the plain route, <= 3 GB (2.79 GiB); predict >= 3x MONAI, <= 4 GB
(3.73 GiB). The table gives GiB (GNU time's kilobytes / 1024^2).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _worker import run_worker  # benchmarks/ is sys.path[0] when a script here runs

REPO = Path(__file__).resolve().parents[1]
ELECTROSEG = Path(sys.executable).with_name("electroseg")
VOXEL = (0.05, 0.03, 0.03)
ANALYZE_VARIANTS = {  # name: extra overrides (defaults first)
    "analyze (defaults)": [],
    "  collector_connectivity=false": ["collector_connectivity=false"],
    "  uncertainty=false": ["uncertainty=false"],
    "  figures=false": ["figures=false"],
    "  split=none": ["split=none"],
    "  all four off": ["collector_connectivity=false", "uncertainty=false", "figures=false", "split=none"],
}


def _timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in GiB) of one process, measured by GNU time."""
    report = cwd / "time.txt"
    done = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", str(report), *cmd], cwd=cwd,
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    wall, kb = report.read_text().split()[-2:]
    return float(wall), float(kb) / 1024 ** 2


def _peer_analyze(path: str) -> None:
    """Worker: the plain route on a label TIFF, whole process."""
    import tifffile

    from analysis import peer

    peer(tifffile.imread(path))
    print("{}")


def _analyze_cases(work: Path, shape, rounds: int) -> list[tuple[str, list, list]]:
    from analysis import make_volume

    from electroseg.io import write_tiff

    labels = work / "labels.tif"
    write_tiff(labels, make_volume(shape), voxel_size=VOXEL)
    cases = {name: [str(ELECTROSEG), "analyze", f"input={labels}", f"out={work / 'a'}", *extra]
             for name, extra in ANALYZE_VARIANTS.items()}
    cases["plain route (tifffile + NumPy + scipy + skimage)"] = [sys.executable, __file__, "--worker", "analyze",
                                                                   str(labels)]
    return _rounds(cases, work, rounds)


def _predict_cases(work: Path, shape, rounds: int) -> tuple[list, dict]:
    import torch

    import inference as bench

    from electroseg.io import write_tiff

    loaded = bench._loaded()
    checkpoint = work / "unet3d.ckpt"
    torch.save({"electroseg": loaded.spec.to_dict(),
                "state_dict": {f"net.{k}": v for k, v in loaded.network.state_dict().items()}}, checkpoint)
    scan = work / "scan.tif"
    write_tiff(scan, bench._volume(shape), voxel_size=bench.VOXEL)
    cases = {"predict (defaults, whole command)": [str(ELECTROSEG), "predict", f"checkpoint={checkpoint}",
                                                   f"inputs={scan}", f"out={work / 'p'}", "overwrite=true"]}
    rows = _rounds(cases, work, rounds, peer=lambda: run_worker(
        bench.__file__, "monai_fp32", "--threads", 0, "--overlap", bench.OVERLAP, "--patch", *bench.PATCH,
        "--device", "cpu", "--batch", bench.BATCH, "--shape", *shape))
    return rows


def _rounds(cases: dict, work: Path, rounds: int, peer=None) -> list[tuple[str, list, list]]:
    walls: dict[str, list] = {name: [] for name in cases}
    peaks: dict[str, list] = {name: [] for name in cases}
    if peer is not None:
        walls["plain MONAI fp32 (network only)"], peaks["plain MONAI fp32 (network only)"] = [], []
    for r in range(rounds):
        for name, cmd in cases.items():
            wall, peak = _timed(cmd, work)
            walls[name].append(wall)
            peaks[name].append(peak)
            print(f"  round {r + 1}: {name.strip():<48} {wall:7.2f} s {peak:6.2f} GiB", flush=True)
        if peer is not None:
            result = peer()
            walls["plain MONAI fp32 (network only)"].append(result["seconds"])
            peaks["plain MONAI fp32 (network only)"].append(result["peak_bytes"] / 1024 ** 3)
            print(f"  round {r + 1}: {'plain MONAI fp32 (network only)':<48} {result['seconds']:7.2f} s", flush=True)
    return [(name, walls[name], peaks[name]) for name in walls]


def _table(title: str, rows, peer_name: str, voxels: int) -> None:
    peer = statistics.median(next(w for n, w, _ in rows if n == peer_name))
    print(f"\n{title}\n{'case':<52}{'median wall (s)':>16}{'peak RSS (GiB)':>15}{'Mvox/s':>9}{'vs peer':>9}")
    for name, walls, peaks in rows:
        wall = statistics.median(walls)
        print(f"{name:<52}{wall:>16.2f}{max(peaks):>15.2f}{voxels / wall / 1e6:>9.1f}{peer / wall:>8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small volumes (a smoke run)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=["analyze", "predict"], choices=["analyze", "predict"])
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _peer_analyze(args.worker[1])
    labels_shape = (60, 192, 256) if args.quick else (300, 768, 1024)
    scan_shape = (32, 128, 128) if args.quick else (128, 512, 512)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "analyze" in args.only:
            rows = _analyze_cases(work, labels_shape, args.rounds)
            _table(f"electroseg analyze on {labels_shape} labels, whole processes, median of {args.rounds}",
                   rows, "plain route (tifffile + NumPy + scipy + skimage)", int(np.prod(labels_shape)))
        if "predict" in args.only:
            from electroseg.inference.windows import cpu_has_bf16

            rows = _predict_cases(work, scan_shape, args.rounds)
            arithmetic = "bf16 (this CPU has bf16 instructions)" if cpu_has_bf16() else "fp32 (no bf16 instructions)"
            _table(f"electroseg predict (unet3d) on {scan_shape}, precision=auto: {arithmetic}, median of {args.rounds}",
                   rows, "plain MONAI fp32 (network only)", int(np.prod(scan_shape)))
    print(f"\n({time.perf_counter() - start:.0f} s in all)")


if __name__ == "__main__":
    main()

"""Speed and memory of the default FIB-SEM preprocessing + classical segmentation.

    .venv/bin/python benchmarks/classical.py [--quick]

Target: a 300 x 768 x 1024 uint8 stack (the papers' FIB-SEM size) in <= 60 s and <= 6 GB peak
on 2 cores. Prints the time of every step, the peak resident memory, and the ratio against the
peer "plain skimage route" (skimage multi-Otsu + numpy digitize on the raw stack, plus
scipy.ndimage.median_filter for the median, timed on a subset of slices and scaled).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from electroseg.classical import segment_volume  # noqa: E402
from electroseg.preprocess import preprocess_volume  # noqa: E402

FIBSEM_STEPS = [
    {"step": "register_slices"},
    {"step": "remove_curtaining"},
    {"step": "flatten_shading"},
    {"step": "normalize_slices"},
    {"step": "denoise"},
]


def make_stack(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """Three-phase stack (pore/CBD/AM grey levels 40/110/190) with blur, noise and curtains."""
    rng = np.random.default_rng(seed)
    coarse = ndi.gaussian_filter(rng.standard_normal((shape[0] // 4 + 1, shape[1] // 8 + 1, shape[2] // 8 + 1)), 1.5)
    low, high = np.quantile(coarse, [0.25, 0.35])
    stack = np.empty(shape, np.uint8)
    curtains = rng.normal(0, 6, shape[2]).astype(np.float32)
    for k in range(shape[0]):
        plane = coarse[k // 4].repeat(8, axis=0).repeat(8, axis=1)[: shape[1], : shape[2]]
        grey = np.where(plane < low, 40.0, np.where(plane < high, 110.0, 190.0)).astype(np.float32)
        grey = ndi.gaussian_filter(grey, 1.0) + curtains + rng.normal(0, 12, shape[1:]).astype(np.float32)
        stack[k] = np.clip(grey, 0, 255)
    return stack


def peer_seconds(stack: np.ndarray, subset: int = 10) -> dict[str, float]:
    """The plain route a user would write: skimage multi-Otsu + digitize, scipy median filter."""
    from skimage.filters import threshold_multiotsu

    start = time.perf_counter()
    thresholds = threshold_multiotsu(stack, classes=3)
    np.digitize(stack, thresholds).astype(np.uint8)
    otsu = time.perf_counter() - start
    start = time.perf_counter()
    ndi.median_filter(stack[:subset].astype(np.float32), size=(1, 3, 3))
    median = (time.perf_counter() - start) * stack.shape[0] / subset
    return {"multi-Otsu + digitize (skimage)": otsu, "median 3x3 (scipy, scaled)": median}


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 x 384 x 512 instead of 300 x 768 x 1024")
    parser.add_argument("--slices", type=int, default=None, help="number of slices (full in-plane size)")
    args = parser.parse_args()
    shape = (60, 384, 512) if args.quick else (args.slices or 300, 768, 1024)
    stack = make_stack(shape)
    print(f"stack {shape} uint8, {stack.nbytes / 1e9:.2f} GB; peak RSS after creation {peak_rss_gb():.2f} GB")
    start, cpu_start = time.perf_counter(), time.process_time()
    prepared = preprocess_volume(stack, steps=FIBSEM_STEPS)
    segmentation = segment_volume(prepared.image)
    total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    rows = [(f"preprocess: {r['step']}", r["seconds"], r["cpu_seconds"]) for r in prepared.log]
    rows += [(f"segment: {name}", seconds, segmentation.cpu_seconds[name])
             for name, seconds in segmentation.seconds.items()]
    print(f"\n{'step':<34}{'seconds':>9}{'CPU s':>9}")
    for name, seconds, cpu_seconds in rows:
        print(f"{name:<34}{seconds:>9.2f}{cpu_seconds:>9.2f}")
    print(f"{'total (preprocess + segment)':<34}{total:>9.2f}")
    print(f"{'CPU time of this process':<34}{cpu:>9.2f}  (wall > CPU when other jobs share the cores)")
    peak = peak_rss_gb()
    print(f"{'peak RSS (GB)':<34}{peak:>9.2f}")
    peers = peer_seconds(stack)
    ours = {"multi-Otsu + digitize (skimage)": segmentation.seconds["thresholds"] + segmentation.seconds["classify"],
            "median 3x3 (scipy, scaled)": prepared.log[-1]["seconds"]}
    print(f"\n{'peer comparison':<34}{'ours s':>9}{'peer s':>9}{'peer/ours':>11}")
    for name, seconds in peers.items():
        print(f"{name:<34}{ours[name]:>9.2f}{seconds:>9.2f}{seconds / ours[name]:>11.2f}")
    target = "<= 60 s and <= 6 GB" if not args.quick else "(quick size; target applies to the full size)"
    print(f"\ntarget {target}: total {total:.1f} s wall, {cpu:.1f} s CPU, peak {peak:.2f} GB "
          "(peak measured before the peers ran)")


if __name__ == "__main__":
    main()

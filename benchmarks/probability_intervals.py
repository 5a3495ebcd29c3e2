"""Can a learned model's own probabilities say how wrong its metrics are? A control on real data.

    .venv/bin/python benchmarks/probability_intervals.py [--checkpoint CKPT | --keep DIR] [--epochs 40] [--samples 20]

Real synchrotron nano-CT (SegmentPy, dense labels). A ``multichannel2d`` model is trained with
the defaults on the 8 train slices (as ``benchmarks/real_data.py`` does; or ``--checkpoint``),
its probabilities are calibrated by the temperature fitted on its held-out slices, and each
quadrant of the three test slices (12 cases) gets two 95 % segmentation intervals of its
volume fractions and PBA:

- **from the probabilities**: label maps drawn from the calibrated probabilities, spatially
  correlated (Gumbel-max with Gumbel fields made from Gaussian noise smoothed over ``l``
  pixels: every pixel keeps its calibrated marginal, boundaries move coherently over ``l``);
  the interval is the 2.5-97.5 percentile of the metric over the draws.
- **from labelled slices** (what electroseg uses): the error measured on the two held-out
  training slices (:func:`electroseg.analysis.segmentation_error.measure_slice_errors`),
  corrected for, with the prediction interval of errors measured on other images
  (:func:`~electroseg.analysis.segmentation_error.segmentation_intervals`, ``transfer=True``).

It prints how often each interval holds the truth of the quadrant, and the mean width.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage, special

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = Path(os.environ.get("ELECTROSEG_DATA") or REPO.parent / "shared" / "data")  # third-party data

from electroseg.analysis.contacts import pba_profile  # noqa: E402
from electroseg.analysis.segmentation_error import measure_slice_errors, segmentation_intervals  # noqa: E402
from electroseg.inference import load_checkpoint, predict_volume  # noqa: E402
from real_data import SEGMENTPY_TEST as TEST, _segmentpy_truth as _truth, _train  # noqa: E402  (benchmarks/)

NAMES = ("volume_fraction_pore", "volume_fraction_cbd", "volume_fraction_am", "pba_pooled")


def _metrics(labels: np.ndarray) -> np.ndarray:
    fractions = [(labels == k).mean() for k in range(3)]
    return np.array([*fractions, pba_profile(labels, depth_axis=1).pooled])


def _draw(log_p: np.ndarray, length: float, rng: np.random.Generator) -> np.ndarray:
    """One label map: argmax(log p + g), g a Gumbel field per phase correlated over ``length``."""
    fields = []
    for _ in range(log_p.shape[0]):
        g = rng.standard_normal(log_p.shape[1:]).astype(np.float32)
        if length > 0:
            g = ndimage.gaussian_filter(g, length)
            g /= g.std()
        u = np.clip(special.ndtr(g), 1e-7, 1 - 1e-7)
        fields.append(-np.log(-np.log(u)))
    return np.argmax(log_p + np.stack(fields), axis=0).astype(np.uint8)


def _model(args, work: Path):
    if args.checkpoint:
        return load_checkpoint(args.checkpoint)
    args.override, args.seed = [], 0
    return _train(args, work / "segmentpy", ["data=segmentpy", "model=multichannel2d", "model.context_slices=0",
                                             f"data.root={DATA / 'segmentpy'}"])[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="a SegmentPy checkpoint (default: train one as real_data.py does)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--keep", help="train into this folder and keep it (default: a temporary one)")
    parser.add_argument("--lengths", type=float, nargs="*", default=[4, 8, 16])
    parser.add_argument("--held-out", type=int, nargs="*", default=[103, 394],
                        help="slices the model did not train on, where the labelled-slice error is measured")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rng = np.random.default_rng(0)
    if args.keep:  # train into a folder that stays (its checkpoints/best.ckpt serves --checkpoint later)
        model = _model(args, Path(args.keep))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            model = _model(args, Path(tmp))
    errors = None
    for n in args.held_out:
        image = tifffile.imread(DATA / "segmentpy" / f"{n}.tif")
        found = measure_slice_errors(predict_volume(model, image).labels, _truth(n), depth_axis=1)
        errors = found if errors is None else errors.pooled(found)
    hits = {key: np.zeros(4) for key in [*(f"l={l:g}" for l in args.lengths), "labelled slices"]}
    widths = {key: [] for key in hits}
    rows = []
    for n in TEST:
        truth = _truth(n)
        prediction = predict_volume(model, tifffile.imread(DATA / "segmentpy" / f"{n}.tif"), probabilities="float16")
        log_p = np.log(np.clip(prediction.probabilities.astype(np.float32), 1e-6, 1.0))
        h, w = truth.shape
        for qy in (0, 1):
            for qx in (0, 1):
                part = (slice(qy * h // 2, (qy + 1) * h // 2), slice(qx * w // 2, (qx + 1) * w // 2))
                true, found = _metrics(truth[part]), _metrics(prediction.labels[part])
                rows.append((n, qy, qx, true, found))
                for length in args.lengths:
                    draws = np.array([_draw(log_p[(slice(None), *part)], length, rng) for _ in range(args.samples)])
                    values = np.array([_metrics(d) for d in draws])
                    lo, hi = np.percentile(values, [2.5, 97.5], axis=0)
                    hits[f"l={length:g}"] += (lo <= true) & (true <= hi)
                    widths[f"l={length:g}"].append(hi - lo)
                out = segmentation_intervals(prediction.labels[part], errors, voxel_size=(1.0, 1.0),
                                             pba_pooled=float(found[3]), n_boot=1000,
                                             transfer=True)["segmentation"]  # other images' errors
                lo = np.array([out[k]["ci_low"] for k in NAMES])
                hi = np.array([out[k]["ci_high"] for k in NAMES])
                hits["labelled slices"] += (lo <= true) & (true <= hi)
                widths["labelled slices"].append(hi - lo)
    cases = len(rows)
    error = np.mean([np.abs(r[4] - r[3]) for r in rows], axis=0)
    print(f"\nSegmentPy test slices {list(TEST)}, quadrants: {cases} cases; {args.samples} draws; "
          f"temperature {getattr(model.spec, 'temperature', None)}\n")
    print("| interval | holds pore | holds cbd | holds am | holds PBA | width pore / cbd / am / PBA |")
    print("|---|---|---|---|---|---|")
    for key in hits:
        width = np.mean(widths[key], axis=0)
        print(f"| {key} | " + " | ".join(f"{int(c)}/{cases}" for c in hits[key])
              + " | " + " / ".join(f"{v:.3f}" for v in width) + " |")
    print(f"| (mean error of the argmax labels) | {error[0]:.3f} | {error[1]:.3f} | {error[2]:.3f} | {error[3]:.3f} | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What solid fraction do the nmc1cal scribbles support on their own?

    .venv/bin/python benchmarks/nrel_scribbles.py [--root DIR] [--seeds N]

The learned-segmentation issue asks that a model trained on the NREL nmc1cal micro-CT
(../shared/data/nrel_expertsegmentation: 75^3 voxels, ilastik scribbles on slices 0, 33 and 74)
from its sparse scribbles alone predict about the 0.51 solid (NMC) fraction its authors target.
This script asks what other routes make of the same scribbles:

- the peer: the tool the scribbles were made for, a pixel classifier on an ilastik-style filter
  bank (Gaussian intensity, edges and Hessian eigenvalues at scales 0.7-10 voxels, skimage's
  ``multiscale_basic_features``) with a random forest (scikit-learn; ``pip install -e .[bench]``).
  It is what NREL/expertsegmentation runs when given no target; its ``example.py`` reaches 0.51
  only by adding a volume-fraction term to the loss (``objective='volume_fraction'``);
- the same features with gradient-boosted trees (the upstream tool uses XGBoost);
- global grey thresholds: the one that contradicts the fewest scribbles, and the one that gives
  0.51 solid, each with the share of each scribble class it contradicts;
- how much the scribbles pin down at all, resampling the 70 strokes the annotator drew (a stroke
  is one face-connected run of one class in one slice): the 95 % range of the solid fraction
  that the fewest-error threshold gives, how precisely one slice's strokes measure an agreement,
  and, per solid fraction, how many scribbles its global threshold contradicts.

The learned rows come from ``benchmarks/training.py --skip-speed --accuracy nrel_nmc1cal
nrel_nmc1cal_fixed`` (multichannel2d from the scribbles alone; and calibrated to 0.51).
"""

from __future__ import annotations

import os
import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = Path(os.environ.get("ELECTROSEG_DATA") or REPO.parent / "shared" / "data") / "nrel_expertsegmentation"
TARGET = 0.51
NMC, DARK = 1, 2  # stored scribble values: 1 = NMC (bright), 2 = pore + CBD (dark), 0 = unlabelled


def load(root: Path) -> tuple[np.ndarray, np.ndarray]:
    import tifffile

    image_path, label_path = root / "nmc1cal.tif", root / "nmc1cal_labels.tiff"
    for path in (image_path, label_path):
        if not path.is_file():
            sys.exit(f"{path}: expected the NREL nmc1cal file (set ELECTROSEG_DATA to the folder holding nrel_expertsegmentation/), not found")
    image = tifffile.imread(image_path).astype(np.float32)
    scribbles = tifffile.imread(label_path)
    if image.shape != scribbles.shape or not set(np.unique(scribbles)) <= {0, NMC, DARK}:
        sys.exit(f"{label_path}: expected scribbles of shape {image.shape} with values 0/1/2, "
                 f"got shape {scribbles.shape} and values {np.unique(scribbles).tolist()}")
    return image, scribbles


def contradicted(solid: np.ndarray, scribbles: np.ndarray) -> tuple[float, float]:
    """Shares of the NMC scribbles called not solid and of the dark scribbles called solid."""
    return float(np.mean(~solid[scribbles == NMC])), float(np.mean(solid[scribbles == DARK]))


def _threshold_errors(bright: np.ndarray, dark: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate thresholds t (the scribbled values) and how many scribbles "solid = image >= t"
    contradicts at each."""
    candidates = np.unique(np.concatenate([bright, dark]))
    errors = (np.searchsorted(np.sort(bright), candidates)
              + (dark.size - np.searchsorted(np.sort(dark), candidates)))
    return candidates, errors


def _fewest_errors(image: np.ndarray, scribbles: np.ndarray) -> float:
    """The grey threshold t for which "solid = image >= t" contradicts the fewest scribbles."""
    candidates, errors = _threshold_errors(image[scribbles == NMC], image[scribbles == DARK])
    return float(candidates[np.argmin(errors)])


def _held_out_threshold(image: np.ndarray, scribbles: np.ndarray, z: int) -> float:
    """`_fewest_errors` fitted on the scribbles of every slice but ``z``."""
    others = scribbles.copy()
    others[z] = 0
    return _fewest_errors(image, others)


def threshold_rows(image: np.ndarray, scribbles: np.ndarray) -> list[tuple[str, np.ndarray, dict | None]]:
    """Solid masks from the scribble-optimal global threshold (held out: each scribbled slice
    thresholded at the value fitted on the other slices) and from the one giving 0.51 solid."""
    best = _fewest_errors(image, scribbles)
    held = {}
    for z in _scribbled_slices(scribbles):
        t = _held_out_threshold(image, scribbles, z)
        marked = scribbles[z] > 0
        held[z] = float(np.mean((image[z][marked] >= t) != (scribbles[z][marked] == NMC)))
    at_target = float(np.quantile(image, 1.0 - TARGET))
    return [(f"global threshold, fewest scribble errors (t = {best:.0f})", image >= best, held),
            (f"global threshold giving {TARGET} solid (t = {at_target:.0f})", image >= at_target, None)]


def _fewest_error_fraction(sorted_image: np.ndarray, bright: np.ndarray, dark: np.ndarray) -> float:
    """Solid fraction of the volume above the fewest-error threshold of these scribble values."""
    candidates, errors = _threshold_errors(bright, dark)
    t = np.median(candidates[errors == errors.min()])
    return 1.0 - np.searchsorted(sorted_image, t) / sorted_image.size


def _strokes(plane: np.ndarray):
    """(class value, bool mask) of each stroke of one slice's scribbles: a face-connected run of
    one class."""
    from scipy import ndimage

    for value in (NMC, DARK):
        pieces, count = ndimage.label(plane == value)
        for k in range(1, count + 1):
            yield value, pieces == k


def stroke_bootstrap(image: np.ndarray, scribbles: np.ndarray, *, draws: int = 2000,
                     seed: int = 0) -> tuple[float, float, int]:
    """95 % interval of the solid fraction that the fewest-error global threshold gives, over
    resamples of the scribbled strokes; and the number of strokes.

    A stroke (a face-connected run of one scribble class in one slice) is the unit the annotator
    drew, so its voxels are not independent: resampling voxels would give an interval far too
    narrow. Each draw takes as many strokes as there are, with replacement, and refits the
    threshold.
    """
    strokes = [(value, image[z][stroke]) for z in _scribbled_slices(scribbles)
               for value, stroke in _strokes(scribbles[z])]
    sorted_image = np.sort(image, axis=None)
    rng = np.random.default_rng(seed)
    fractions = []
    for _ in range(draws):
        picked = [strokes[k] for k in rng.integers(0, len(strokes), len(strokes))]
        bright = [values for value, values in picked if value == NMC]
        dark = [values for value, values in picked if value == DARK]
        if bright and dark:
            fractions.append(_fewest_error_fraction(sorted_image, np.concatenate(bright), np.concatenate(dark)))
    low, high = np.percentile(fractions, [2.5, 97.5])
    return float(low), float(high), len(strokes)


def agreement_interval(solid: np.ndarray, scribbles: np.ndarray, *, draws: int = 4000,
                       seed: int = 0) -> tuple[float, float, int]:
    """95 % interval of a slice's scribble agreement over resamples of its strokes, and the
    number of strokes: how precisely one slice's scribbles measure an agreement."""
    counts = np.array([(int((solid[stroke] == (value == NMC)).sum()), int(stroke.sum()))
                       for value, stroke in _strokes(scribbles)])
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(counts), (draws, len(counts)))
    shares = counts[picks, 0].sum(axis=1) / counts[picks, 1].sum(axis=1)
    low, high = np.percentile(shares, [2.5, 97.5])
    return float(low), float(high), len(counts)


def threshold_profile(image: np.ndarray, scribbles: np.ndarray,
                      fractions=np.arange(0.30, 0.5251, 0.025)) -> list[tuple[float, float, int, int]]:
    """For each solid fraction, the global threshold giving it and how many NMC / dark scribbles
    that threshold contradicts."""
    bright, dark = image[scribbles == NMC], image[scribbles == DARK]
    rows = []
    for fraction in fractions:
        t = float(np.quantile(image, 1.0 - fraction))
        rows.append((float(fraction), t, int((bright < t).sum()), int((dark >= t).sum())))
    return rows


def _scribbled_slices(scribbles: np.ndarray) -> list[int]:
    return [int(z) for z in np.flatnonzero((scribbles > 0).reshape(scribbles.shape[0], -1).any(axis=1))]


def classifier_rows(image: np.ndarray, scribbles: np.ndarray,
                    seeds: int) -> list[tuple[str, np.ndarray, dict | None]]:
    """Solid masks of filter-bank classifiers fitted on all scribbles, with their error rate on
    each scribbled slice when fitted on the other two (leave one slice out)."""
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    except ImportError:
        print("scikit-learn is not installed: the filter-bank classifier rows are skipped "
              "(pip install -e .[bench])")
        return []
    from skimage.feature import multiscale_basic_features

    scaled = (image - image.mean()) / image.std()
    features = multiscale_basic_features(scaled, sigma_min=0.7, sigma_max=10.0, num_sigma=6)
    flat = features.reshape(-1, features.shape[-1])
    labelled = scribbles.reshape(-1) > 0
    scribbled, targets = flat[labelled], scribbles.reshape(-1)[labelled]
    print(f"filter bank: {features.shape[-1]} features per voxel, {int(labelled.sum())} scribbled voxels")
    slices = np.broadcast_to(np.arange(image.shape[0])[:, None, None], image.shape).reshape(-1)[labelled]
    models = [(f"random forest on the filter bank (seed {seed})",
               lambda seed=seed: RandomForestClassifier(n_estimators=100, n_jobs=-1, random_state=seed))
              for seed in range(seeds)]
    models.append(("gradient-boosted trees on the filter bank", lambda: HistGradientBoostingClassifier(random_state=0)))
    rows = []
    for name, make in models:
        # held out: each scribbled slice predicted by a model fitted on the other slices' scribbles
        held_out = {}
        for held in np.unique(slices):
            fitted = make().fit(scribbled[slices != held], targets[slices != held])
            held_out[int(held)] = float(np.mean(fitted.predict(scribbled[slices == held]) != targets[slices == held]))
        solid = (make().fit(scribbled, targets).predict(flat) == NMC).reshape(image.shape)
        rows.append((name, solid, held_out))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="folder with nmc1cal.tif and its labels")
    parser.add_argument("--seeds", type=int, default=3, help="random-forest seeds (default 3)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    image, scribbles = load(args.root)
    rows = threshold_rows(image, scribbles) + classifier_rows(image, scribbles, args.seeds)
    print(f"\nnmc1cal {image.shape}: solid (NMC) fraction from the scribbles alone; target {TARGET} +- 0.03\n")
    slices = _scribbled_slices(scribbles)
    print("| route | solid fraction | - target | NMC scribbles called dark | dark scribbles called solid "
          f"| agreement on slice {' / '.join(map(str, slices))}, fitted on the others |")
    print("|---|---|---|---|---|---|")
    for name, solid, held_out in rows:
        missed, extra = contradicted(solid, scribbles)
        held = "-" if held_out is None else " / ".join(f"{1 - held_out[z]:.1%}" for z in slices)
        print(f"| {name} | {solid.mean():.3f} | {solid.mean() - TARGET:+.3f} | {missed:.1%} | {extra:.1%} | {held} |")
    low, high, strokes = stroke_bootstrap(image, scribbles)
    print(f"\nWhat the scribbles support: over 2000 resamples of the {strokes} scribbled strokes, the "
          f"fewest-error global threshold gives {low:.3f}-{high:.3f} solid (95 %).")
    for z in slices:
        solid_z = image[z] >= _held_out_threshold(image, scribbles, z)
        marked = scribbles[z] > 0
        share = float(np.mean(solid_z[marked] == (scribbles[z][marked] == NMC)))
        low_z, high_z, count = agreement_interval(solid_z, scribbles[z])
        print(f"Slice {z} ({count} strokes): the threshold fitted on the other slices agrees with "
              f"{share:.1%} of its scribbles, 95 % interval over stroke resamples {low_z:.1%}-{high_z:.1%}.")
    print("\n| solid fraction | global threshold | NMC scribbles called dark | dark scribbles called solid | contradicted |")
    print("|---|---|---|---|---|")
    for fraction, t, missed, extra in threshold_profile(image, scribbles):
        print(f"| {fraction:.3f} | {t:.0f} | {missed} | {extra} | {missed + extra} of {int((scribbles > 0).sum())} |")
    print(f"\n{time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How much does the PBA correction move from one labelled pair of slices to the next?

The segmentation interval (``uncertainty.segmentation``) is a bootstrap over labelled
positions, so its width follows the spread of the correction between them. This benchmark
labels one pair of adjacent slices at a time (8 positions evenly spread along Z), corrects the
classical route's pooled PBA with that pair alone, and prints, per sample group, the standard
deviation of the corrected values across the 8 positions and their mean error against the
truth of the whole imaged volume, for three estimators:

- ``shared out`` (electroseg's: :func:`electroseg.analysis.segmentation_error.segmentation_intervals`):
  every face of the volume shared out over the hand classes as on the labelled pair;
- ``difference`` (the alternative it replaced, computed here): the segmentation's PBA of the
  volume minus its error on the pair, axis by axis (in-slice across the depth, and between the
  two slices), pooled with the segmentation's AM surface along each;
- ``pair alone``: the hand labels' own PBA on the pair (no segmentation at all).

Samples: the generator's pristine/cycled presets (``--seeds`` each) and the real
microstructures imaged with five shine-through laws that are not the generator's
(``benchmarks/_fibsem_physics.py``; needs ``$ELECTROSEG_DATA``).

    .venv/bin/python benchmarks/correction_spread.py [--seeds 5] [--positions 8]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from electroseg.analysis import pba_profile  # noqa: E402
from electroseg.analysis.contacts import am_contacts, face_pair_counts  # noqa: E402
from electroseg.analysis.segmentation_error import (  # noqa: E402
    measure_slice_errors,
    pair_codes,
    segmentation_intervals,
)
from electroseg.config import builtin_config  # noqa: E402
from electroseg.synthetic import load_preset, make_sample  # noqa: E402

PHASES = ("pore", "cbd", "am")
I_AM, I_CBD = 2, 1


def _pba(sym):
    contacts, surface = am_contacts(sym, I_AM, I_CBD)
    return contacts / surface if surface > 0 else np.nan


def difference_estimate(counts, errors) -> float:
    """The segmentation's pooled PBA (``counts``: its face pairs) minus its error on the labelled
    slices, axis by axis."""
    sym = counts.symmetric().sum(axis=0)                                                # (3, n, n)
    codes = pair_codes(len(PHASES))
    hand_x, seg_x = errors.faces[0].sum(axis=0)[1], errors.faces[1].sum(axis=0)[1]     # across the depth (X)
    through = errors.through_joint.sum(axis=0)
    hand_z, seg_z = through.sum(axis=0)[codes], through.sum(axis=1)[codes]
    x = sym[2]
    in_slice = _pba(x) - (_pba(seg_x) - _pba(hand_x))
    z = _pba(sym[0]) - (_pba(seg_z) - _pba(hand_z))
    surface_z, surface_x = am_contacts(sym[0], I_AM, I_CBD)[1], am_contacts(x, I_AM, I_CBD)[1]
    w = surface_z / (surface_z + surface_x)
    return float(np.clip((1 - w) * np.clip(in_slice, 0, 1) + w * np.clip(z, 0, 1), 0, 1))


def per_position(seg, truth, positions: int) -> dict[str, np.ndarray]:
    values: dict[str, list] = {"shared out": [], "difference": [], "pair alone": []}
    reported = pba_profile(seg, depth_axis=1).pooled
    counts = face_pair_counts(seg, depth_axis=1, phases=PHASES)   # the volume's, the same for every position
    for k in range(positions):
        z = (k + 1) * seg.shape[0] // (positions + 1)
        hand = np.full_like(truth, 255)
        hand[z:z + 2] = truth[z:z + 2]
        errors = measure_slice_errors(seg, hand, depth_axis=1)
        out = segmentation_intervals(seg, errors, voxel_size=(1, 1, 1), pba_pooled=reported, n_boot=10,
                                     counts=counts)
        values["shared out"].append(out["segmentation"]["pba_pooled"]["estimate"])
        values["difference"].append(difference_estimate(counts, errors))
        values["pair alone"].append(pba_profile(truth[z:z + 2], depth_axis=1).pooled)
    return {k: np.asarray(v, float) for k, v in values.items()}


def samples(seeds: int):
    from interval_coverage import _classical, _physics
    steps = builtin_config("preprocess/fibsem.yaml")["steps"]
    for seed in range(seeds):
        for preset in ("nmc_fibsem", "nmc_fibsem_cycled"):
            sample = make_sample(load_preset(preset), seed=seed, shape=[48, 160, 160])
            yield "generator", _classical(next(iter(sample.images.values())), steps), np.asarray(sample.labels)
    physics = _physics()
    if not physics.SHARED.is_dir():
        print(f"independent: {physics.SHARED} is not present (set ELECTROSEG_DATA); skipped")
        return
    for case in physics.cases():
        if case.two_phase:
            continue
        image, truth = physics.stack(case)
        yield "independent physics", _classical(image, steps), np.asarray(truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--positions", type=int, default=8)
    args = parser.parse_args()
    start = time.perf_counter()
    rows: dict[str, list] = {}
    for group, seg, truth in samples(args.seeds):
        true = pba_profile(truth, depth_axis=1).pooled
        found = per_position(seg.astype(np.uint8), truth.astype(np.uint8), args.positions)
        for name, values in found.items():
            rows.setdefault((group, name), []).append((values.std(ddof=1), abs(values.mean() - true)))
    print(f"pooled PBA corrected with one labelled pair of adjacent slices, {args.positions} positions per "
          f"sample; {time.perf_counter() - start:.0f} s\n")
    print(f"{'samples':22s} {'estimator':12s} {'n':>3s}  {'sd across positions':>20s}  {'|mean - truth|':>15s}")
    for (group, name), values in rows.items():
        sd, err = np.asarray(values).mean(axis=0)
        print(f"{group:22s} {name:12s} {len(values):3d}  {sd:20.3f}  {err:15.3f}")


if __name__ == "__main__":
    main()

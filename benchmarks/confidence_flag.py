"""Does the low-confidence share say when a prediction is wrong? Measured on images with truth.

``electroseg predict`` records ``qa.low_confidence``: the share of voxels whose normalised
entropy is at least 0.6. This script asks whether that number, read alone (no labels), tells a
good prediction from a poor one. For each image it prints the mean IoU against the truth and
the low-confidence share, for the shipped models zero-shot (as ``electroseg predict`` runs them,
``scale=auto``, and as the image is):

- the SegmentPy test slices (real X-ray CT, truth by its authors);
- the samba_kintsugi SEM image (real; truth: the four hand-drawn rectangles; the share is
  counted over the whole image);
- 21 real label volumes (15 three-phase, 6 two-phase) imaged by ``benchmarks/_fibsem_physics.py``
  (five shine-through laws that are not the generator's);
- the NREL nmc1cal micro-CT, 2-phase, against its scribbles;
- generator CT images blurred within (0.8, 2 px) and beyond (4 px) the training range;
- draws of the pretraining randomisation itself (in distribution).

Per model it then prints how many poor (mean IoU < 0.6) and good images lie at or above each
share cut, the rank correlation of the share with the IoU, and the warning level: the lowest cut
(0.05 steps) with at most 5 % of the good images at or above it and at least one poor image,
else none. ``--record`` writes the levels into ``electroseg/models/pretrained/models.json``
(``low_confidence_warning``), from which ``electroseg predict`` warns.

    .venv/bin/python benchmarks/confidence_flag.py [--only segmentpy samba independent nrel blur training] [--record]

Needs $ELECTROSEG_DATA (default ../shared/data) for the real cases.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import tifffile

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pretrained import blurred_ct, samba_rectangles  # noqa: E402
from real_data import DATA, SEGMENTPY_TEST, _segmentpy_truth  # noqa: E402
from _training_accuracy import mean_iou  # noqa: E402

from electroseg.inference import load_checkpoint, predict_volume  # noqa: E402
from electroseg.inference.qa import low_confidence, normalized_entropy  # noqa: E402

POOR = 0.6  # mean IoU below which a prediction counts as poor here


def _score(model, image, truth, k: int, scale) -> tuple[float, float]:
    found = predict_volume(model, image, scale=scale, probabilities="float16")
    share = low_confidence(found.labels, normalized_entropy(found.probabilities), model.spec.phases)["all"]
    return mean_iou(found.labels, truth, k), share


def segmentpy(models):
    for n in SEGMENTPY_TEST:
        image = tifffile.imread(DATA / "segmentpy" / f"{n}.tif")
        for scale in ("auto", 1.0):
            yield f"segmentpy {n}", scale, *_score(models[3], image, _segmentpy_truth(n), 3, scale), 3


def samba(models):
    image, truth = samba_rectangles()
    for scale in ("auto", 1.0):
        yield "samba", scale, *_score(models[3], image, truth, 3, scale), 3


def independent(models):
    from _fibsem_physics import cases, stack

    for i, case in enumerate(cases()):
        volume, truth = stack(case)
        k = 2 if case.two_phase else 3
        yield f"independent {i} ({k}-phase)", "auto", *_score(models[k], volume, truth, k, "auto"), k


def blur(models):
    for sigma_px in (0.8, 2.0, 4.0):
        for seed in range(4):
            image, truth = blurred_ct(sigma_px, seed)
            yield f"generator CT blur {sigma_px:g} px, seed {seed}", "auto", *_score(models[3], image, truth, 3, "auto"), 3


def training(models):
    from electroseg.synthetic import load_preset
    from electroseg.synthetic.randomize import random_sample

    base = load_preset("nmc_fibsem")
    for seed in range(2000, 2008):
        image, truth, preset = random_sample(seed, shape=(4, 192, 192), base=base)
        yield f"pretraining draw {seed} ({preset['modality']})", "auto", *_score(models[3], image, truth, 3, "auto"), 3


def nrel(models):
    folder = DATA / "nrel_expertsegmentation"
    scribbles = tifffile.imread(folder / "nmc1cal_labels.tiff")
    truth = np.where(scribbles == 0, 255, scribbles == 1).astype(np.uint8)  # scribble 1 = solid, 2 = pore
    image = tifffile.imread(folder / "nmc1cal.tif")
    yield "nrel nmc1cal scribbles (2-phase)", "auto", *_score(models[2], image, truth, 2, "auto"), 2


CASES = {"segmentpy": segmentpy, "samba": samba, "independent": independent, "nrel": nrel, "blur": blur,
         "training": training}
MODELS = {2: "electrode-2phase", 3: "electrode-3phase"}
GOOD_FLAGGED = 0.05  # the warning level: the lowest share cut (in steps of 0.05) with at most 5 % of good images above


def warning_level(iou: np.ndarray, share: np.ndarray) -> float | None:
    """The lowest cut in 0.05 steps at or above which at most `GOOD_FLAGGED` of the good images
    (mean IoU >= POOR) lie, when at least one poor image lies there too; else None (the share
    does not tell this model's poor predictions from its good ones)."""
    good, poor = share[iou >= POOR], share[iou < POOR]
    for cut in np.arange(0.05, 1.0001, 0.05):
        if np.sum(good >= cut) <= GOOD_FLAGGED * good.size:
            return round(float(cut), 2) if np.any(poor >= cut) else None
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--record", action="store_true",
                        help="write each model's warning level into electroseg/models/pretrained/models.json")
    args = parser.parse_args()
    models = {k: load_checkpoint(f"pretrained:{name}") for k, name in MODELS.items()}
    rows = []  # (image, scale, mean IoU, share, phases of the model)
    print("| image | scale | mean IoU | low-confidence share |\n|---|---|---|---|")
    for name in args.only:
        for row in CASES[name](models):
            rows.append(row)
            print(f"| {row[0]} | {row[1]} | {row[2]:.3f} | {row[3]:.3f} |", flush=True)
    levels = {}
    for k, name in MODELS.items():
        iou = np.array([r[2] for r in rows if r[4] == k])
        share = np.array([r[3] for r in rows if r[4] == k])
        if iou.size < 2:
            continue
        print(f"\n{name}: {iou.size} images, {np.sum(iou < POOR)} poor (mean IoU < {POOR}), shares "
              f"{share.min():.3f}-{share.max():.3f}\n\n| share cut | poor at or above | good at or above |\n|---|---|---|")
        for cut in (0.10, 0.15, 0.20, 0.25, 0.30):
            print(f"| {cut:.2f} | {np.sum((share >= cut) & (iou < POOR))} | {np.sum((share >= cut) & (iou >= POOR))} |")
        ranks = lambda a: np.argsort(np.argsort(a))  # noqa: E731
        if np.ptp(share) > 0 and np.ptp(iou) > 0:
            print(f"\nSpearman rank correlation of the share with the mean IoU: "
                  f"{np.corrcoef(ranks(share), ranks(iou))[0, 1]:+.2f}")
        levels[name] = warning_level(iou, share)
        print(f"warning level: {levels[name]}")
    if args.record:
        import json

        from electroseg.models.pretrained import FOLDER

        registry_path = FOLDER / "models.json"
        registry = json.loads(registry_path.read_text())
        for name, level in levels.items():
            registry["models"][name]["low_confidence_warning"] = level
        registry_path.write_text(json.dumps(registry, indent=2) + "\n")
        print(f"recorded in {registry_path}")


if __name__ == "__main__":
    main()

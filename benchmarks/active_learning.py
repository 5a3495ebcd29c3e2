"""Does labelling the slices `electroseg suggest` picks beat labelling evenly spaced slices?

For each generated volume (the demo preset, drift off, dense truth known), two labelling
strategies grow the hand-labelled set two slices at a time:

- **even**: K slices evenly spaced along Z (K = 2, 4, 6);
- **suggested**: the same 2 evenly spaced slices to start, then, after each training, the 2
  slices ``electroseg suggest`` picks from that model's uncertainty, with each spread rule of
  ``suggest_slices`` (``coverage``, the default, and ``gap``).

The control, ``--random R``: R random sets of ``--random-count`` slices per volume, trained the
same way. The best of them is chosen with hindsight on the truth, so it bounds what any rule for
picking that many slices could gain over even spacing on these volumes.

After each step a small 2.5-D model (the demo's recipe: ``multichannel2d`` [8, 16, 32], 64 × 64
patches, pseudo-labels of the classical route plus the hand labels) is trained for at most
``--epochs`` epochs from the same seed, and scored by mean IoU against the whole volume's truth.
Both curves are printed, per volume and on average.

    .venv/bin/python benchmarks/active_learning.py [--seeds 10 11 12] [--epochs 60] [--random 5]
        [--no-pseudo-labels]   # hand labels only, as the napari widget trains
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _training_accuracy import mean_iou  # noqa: E402

from electroseg.config import compose_command  # noqa: E402
from electroseg.inference import load_checkpoint  # noqa: E402
from electroseg.inference.predict import predict_volume  # noqa: E402
from electroseg.inference.suggest import slice_uncertainty, suggest_slices  # noqa: E402
from electroseg.io import write_tiff  # noqa: E402
from electroseg.synthetic import load_preset, make_sample  # noqa: E402
from electroseg.training import train  # noqa: E402

COUNTS = (2, 4, 6)
STEP = 2


def _even(n_z: int, k: int) -> list[int]:
    return sorted({int(round((i + 1) * n_z / (k + 1))) for i in range(k)})


def _train(folder: Path, image_path: Path, truth: np.ndarray, slices: list[int], args) -> object:
    """Train on the truth of ``slices`` (255 elsewhere) plus pseudo-labels; return the model."""
    hand = np.full_like(truth, 255)
    hand[slices] = truth[slices]
    folder.mkdir(parents=True, exist_ok=True)
    write_tiff(folder / "hand.tif", hand, voxel_size=(0.1, 0.05, 0.05))
    (folder / "data").mkdir(exist_ok=True)
    config = {"name": "al", "root": str(folder), "phases": ["pore", "cbd", "am"], "voxel_size": None,
              "depth_axis": 1, "channels": ["bse"], "ignore_value": 255, "label_values": None,
              "pseudo_labels": not args.no_pseudo_labels, "classical": {}, "preprocess": [],
              "volumes": [{"images": {"bse": str(image_path)}, "hand_labels": "hand.tif", "split": "train"}]}
    (folder / "data" / "al.yaml").write_text(yaml.safe_dump(config))
    cfg = compose_command("train", [
        "data=al", "model=multichannel2d", "model.channels=[8,16,32]", "model.patch_size=[64,64]",
        "trainer=fast", f"trainer.max_epochs={args.epochs}", "trainer.max_time=null", "trainer.limit_train_batches=16",
        "trainer.limit_val_batches=4", "trainer.precision=32-true", "trainer.enable_progress_bar=false",
        "loader.samples_per_epoch=32", "loader.val_patches=8", "loader.batch_size=8", "optimizer.lr=0.01",
        "callbacks.early_stopping_patience=20", f"seed={args.seed}", f"out={folder / 'run'}",
        f"cache_dir={folder / 'cache'}"], config_dir=folder)
    train(cfg)
    return load_checkpoint(folder / "run" / "checkpoints" / "best.ckpt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[10, 11, 12])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--random", type=int, default=5, help="random slice sets per volume (the control)")
    parser.add_argument("--random-count", type=int, default=4, help="slices in each random set")
    parser.add_argument("--spreads", nargs="*", default=["coverage", "gap"], help="suggest_slices spread rules")
    parser.add_argument("--no-pseudo-labels", action="store_true", help="hand labels only (no classical pseudo-labels)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="active_learning_"))
    preset = {**load_preset("demo"), "drift_step_px": 0.0}
    start = time.perf_counter()
    results = {}
    for seed in args.seeds:
        sample = make_sample(preset, seed=seed)
        image = next(iter(sample.images.values())).astype(np.float32)
        truth = np.asarray(sample.labels)
        image_path = write_tiff(work / f"v{seed}" / "image.tif", image, voxel_size=sample.voxel_size)
        curves = {"even": {}}
        for k in COUNTS:
            model = _train(work / f"v{seed}" / f"even{k}", image_path, truth, _even(truth.shape[0], k), args)
            curves["even"][k] = mean_iou(predict_volume(model, image).labels, truth, 3)
        for spread in args.spreads:
            key = f"suggested_{spread}"
            chosen = _even(truth.shape[0], COUNTS[0])
            curves[key] = {COUNTS[0]: curves["even"][COUNTS[0]]}
            model = load_checkpoint(work / f"v{seed}" / f"even{COUNTS[0]}" / "run" / "checkpoints" / "best.ckpt")
            for k in COUNTS[1:]:
                chosen = sorted(chosen + suggest_slices(slice_uncertainty(model, image), STEP, labelled=chosen,
                                                        spread=spread))
                model = _train(work / f"v{seed}" / f"{key}{k}", image_path, truth, chosen, args)
                curves[key][k] = mean_iou(predict_volume(model, image).labels, truth, 3)
            curves[f"{key}_slices"] = chosen
        rng = np.random.default_rng(seed)
        curves["random"] = []
        for r in range(args.random):
            picked = sorted(int(z) for z in rng.choice(truth.shape[0], args.random_count, replace=False))
            model = _train(work / f"v{seed}" / f"random{r}", image_path, truth, picked, args)
            curves["random"].append({"slices": picked, "iou": mean_iou(predict_volume(model, image).labels, truth, 3)})
        results[seed] = curves
        print(f"volume seed {seed}: " + "; ".join(f"{k} {v}" for k, v in curves.items() if k != "random"), flush=True)
    print(f"\n{len(args.seeds)} volumes, {time.perf_counter() - start:.0f} s\n")
    print(f"{'labelled slices':<18}{'even':>10}" + "".join(f"{'suggested, ' + s:>24}{'difference':>12}"
                                                         for s in args.spreads))
    for k in COUNTS:
        even = np.mean([r["even"][k] for r in results.values()])
        row = f"{k:<18}{even:>10.4f}"
        for spread in args.spreads:
            suggested = np.mean([r[f"suggested_{spread}"][k] for r in results.values()])
            row += f"{suggested:>24.4f}{suggested - even:>+12.4f}"
        print(row)
    if args.random:
        k = args.random_count
        even = [r["even"].get(k) for r in results.values()]
        print(f"\ncontrol: {args.random} random sets of {k} slices per volume (best chosen on the truth)")
        print(f"{'volume':<10}{'even':>10}{'random mean':>13}{'random best':>13}{'best - even':>13}")
        for (seed, r), e in zip(results.items(), even):
            ious = [x["iou"] for x in r["random"]]
            print(f"{seed:<10}{e if e is not None else float('nan'):>10.4f}{np.mean(ious):>13.4f}{max(ious):>13.4f}"
                  f"{(max(ious) - e) if e is not None else float('nan'):>+13.4f}")
        if all(e is not None for e in even):
            best = np.mean([max(x["iou"] for x in r["random"]) for r in results.values()])
            print(f"{'mean':<10}{np.mean(even):>10.4f}{np.mean([np.mean([x['iou'] for x in r['random']]) for r in results.values()]):>13.4f}"
                  f"{best:>13.4f}{best - np.mean(even):>+13.4f}")
    (work / "active_learning.json").write_text(json.dumps({str(k): v for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()

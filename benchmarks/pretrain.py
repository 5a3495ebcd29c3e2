"""Train (and with --install, ship) the pretrained electrode models from domain-randomised data.

Reproduces ``electroseg/models/pretrained/NAME.ckpt`` and its entry in ``models.json``:

1. ``electroseg.synthetic.randomize.make_pretraining_set`` writes ``--volumes`` randomised
   volumes (random microstructure, random FIB-SEM / CT / cross-section acquisition, random grey
   order and tone curve; dense labels) into ``--cache``;
2. ``electroseg train`` fits a 2-D U-Net (``multichannel2d``, no context slices, one channel,
   images normalised by their own percentiles) for ``--epochs`` epochs with strong intensity
   augmentation: a budget in epochs, so the same seed and machine kind give the same weights;
3. with ``--install``, the best checkpoint without optimizer state is copied into the package and
   ``models.json`` gets its sha256, size, phases, recipe and the training images' feature size
   (90th percentile of their autocorrelation lengths: ``predict scale=auto`` shrinks larger ones).
   A new model has no low-confidence warning level until ``benchmarks/confidence_flag.py
   --record`` measures it.

``--val-volumes N`` (default 2, as shipped) makes the last N volumes the validation split that
picks ``best.ckpt`` and fits its probability temperature.

    .venv/bin/python benchmarks/pretrain.py --model electrode-3phase [--epochs 60] [--volumes 48] [--install]
    .venv/bin/python benchmarks/pretrain.py --model electrode-2phase --volumes 40 --val-volumes 8 --epochs 120 --install

(``models.json`` records each shipped model's exact command under ``recipe``.)

``--blur-px LOW HIGH`` draws the image blur (Gaussian sigma, pixels) from that range for every
acquisition instead of the randomiser's 0.3-1.5 (CT) and 0.3-1.8 (FIB-SEM); the shipped models
use the default (docs/pretrained.md has what 0.3-5 gave). On a CPU the precision is ``auto``:
bf16-mixed where the CPU has bf16 instructions (how the shipped models were trained), else float32.

On 2 CPU cores the shipped 3-phase budget (120 epochs) takes 23 minutes on an Ice Lake Xeon
without bf16 instructions; ``--device cuda`` on a GPU minutes. ``benchmarks/pretrained.py``
scores the installed models on real data (``--candidate`` a new checkpoint before it ships).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODELS = {
    "electrode-3phase": {"two_phase": False, "phases": ["pore", "cbd", "am"],
                         "summary": "pore / carbon-binder / active material in any FIB-SEM, SEM or CT grey "
                                    "image, 2-D slice by slice"},
    "electrode-2phase": {"two_phase": True, "phases": ["pore", "solid"],
                         "summary": "pore / solid in any FIB-SEM, SEM or CT grey image, 2-D slice by slice"},
}


def training_feature_length(data_dir: Path) -> float | None:
    """90th percentile of the autocorrelation lengths of the training images in ``data_dir``
    (``vNNN/image.tif``): what ``predict scale=auto`` shrinks larger images to. None without images."""
    from electroseg.inference.scale import feature_length
    from electroseg.io import read_volume

    lengths = [feature_length(read_volume(path).numpy()) for path in sorted(Path(data_dir).glob("v*/image.tif"))]
    return round(float(np.percentile(lengths, 90)), 1) if lengths else None


def train_overrides(args, data_dir: Path, run: Path) -> list[str]:
    name = f"pretrain_{'2phase' if MODELS[args.model]['two_phase'] else '3phase'}"
    return [
        "train", "--config-dir", str(data_dir), f"data={name}", "model=multichannel2d",
        "model.context_slices=0", f"model.channels={args.channels}", "model.patch_size=[128,128]",
        "normalization.method=percentile", f"trainer.max_epochs={args.epochs}", "trainer.max_time=null",
        f"trainer.precision={'auto' if args.device == 'cpu' else '16-mixed'}",
        f"trainer.accelerator={'cpu' if args.device == 'cpu' else 'gpu'}",
        "trainer.enable_progress_bar=false", "loader.samples_per_epoch=256", "loader.val_patches=16",
        "augment.prob=0.5", "augment.noise_std=0.08", "augment.blur_sigma=1.5", "augment.contrast_gamma=[0.5,2.0]",
        "augment.scale=0.25", "augment.shift=0.2", "callbacks.early_stopping_patience=1000",
        f"seed={args.seed}", f"out={run}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="electrode-3phase")
    parser.add_argument("--volumes", type=int, default=48)
    parser.add_argument("--shape", type=int, nargs=3, default=[12, 192, 192])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--channels", default="[16,32,64,128]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--blur-px", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                        help="image blur range in pixels for every acquisition (default: the randomiser's, "
                             "0.3-1.5 CT, 0.3-1.8 FIB-SEM)")
    parser.add_argument("--val-volumes", type=int, default=2,
                        help="the last N volumes are the validation split, which picks best.ckpt and fits its "
                             "probability temperature (default 2, as the shipped models)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "pretrain")
    parser.add_argument("--install", action="store_true", help="copy the weights into the package")
    parser.add_argument("--reuse", action="store_true", help="install a finished training of the same settings")
    args = parser.parse_args()

    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    from electroseg.cli import main as cli
    from electroseg.synthetic.randomize import VERSION, make_pretraining_set

    spec = MODELS[args.model]
    blur = "" if args.blur_px is None else f"-blur{args.blur_px[0]:g}-{args.blur_px[1]:g}"
    val = "" if args.val_volumes == 2 else f"-val{args.val_volumes}"
    data_dir = args.cache / (f"{args.model}-v{VERSION}{blur}{val}-seed{args.seed}-"
                             f"{args.volumes}x{'x'.join(map(str, args.shape))}")
    start = time.perf_counter()
    make_pretraining_set(data_dir, n_volumes=args.volumes, shape=tuple(args.shape), seed=args.seed,
                         two_phase=spec["two_phase"], blur_px=None if args.blur_px is None else tuple(args.blur_px),
                         val_volumes=args.val_volumes)
    generated = time.perf_counter() - start
    run = data_dir / f"run-{args.epochs}ep"
    if args.reuse:
        if not (run / "train_metrics.json").is_file():  # never delete a run that may still be going
            raise SystemExit(f"--reuse: {run} holds no finished training (no train_metrics.json)")
        print(f"reusing the finished training in {run}")
    else:
        if run.exists():
            shutil.rmtree(run)
        status = cli(train_overrides(args, data_dir, run))
        if status != 0:
            raise SystemExit(status)
    trained = time.perf_counter() - start - generated
    metrics = json.loads((run / "train_metrics.json").read_text())
    print(f"{args.model}: data {generated:.0f} s, training {trained:.0f} s, {metrics['global_step']} steps, "
          f"val mean IoU {metrics.get('val/mean_iou', float('nan')):.4f}")
    if not args.install:
        print(f"checkpoint: {run / 'checkpoints' / 'best.ckpt'} (--install ships it)")
        return
    from electroseg.models.export import slim_checkpoint
    from electroseg.models.pretrained import FOLDER

    import torch

    target = FOLDER / f"{args.model}.ckpt"
    best_step = int(torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)["global_step"])
    slim_checkpoint(str(run / "checkpoints" / "best.ckpt"), target)
    shipped = torch.load(target, map_location="cpu", weights_only=True)
    shipped["electroseg"]["voxel_size"] = None  # trained on 0.03-0.12 µm pixels: no one voxel size
    torch.save(shipped, target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    registry_path = FOLDER / "models.json"
    registry = json.loads(registry_path.read_text()) if registry_path.is_file() else {"models": {}}
    registry["models"][args.model] = {
        "file": target.name, "phases": spec["phases"], "channels": ["image"],
        "network": f"multichannel2d {args.channels}, 2-D", "summary": spec["summary"],
        "sha256": digest, "size_bytes": target.stat().st_size,
        # the training images' feature size, 90th percentile: predict scale=auto shrinks larger ones
        "feature_length_px": training_feature_length(data_dir),
        "recipe": {"command": " ".join(["benchmarks/pretrain.py", "--model", args.model, "--volumes", str(args.volumes),
                                        "--shape", *map(str, args.shape), "--epochs", str(args.epochs),
                                        "--channels", args.channels, "--seed", str(args.seed),
                                        *([] if args.blur_px is None else ["--blur-px", *map(str, args.blur_px)]),
                                        *([] if args.val_volumes == 2 else ["--val-volumes", str(args.val_volumes)])]),
                   "steps": metrics["global_step"], "val_mean_iou": metrics.get("val/mean_iou"),
                   # what ships: best.ckpt, the step the validation split picked and its score there
                   "shipped_step": best_step, "shipped_val_score": metrics.get("best_score"),
                   "randomization_version": VERSION,
                   "device": args.device}}
    registry_path.write_text(json.dumps(registry, indent=2) + "\n")
    print(f"installed {target} ({target.stat().st_size / 1e6:.2f} MB, sha256 {digest}); its low-confidence "
          "warning level is unmeasured: run benchmarks/confidence_flag.py --record")


if __name__ == "__main__":
    main()

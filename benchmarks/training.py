"""Training speed and accuracy of the learned segmenters.

    .venv/bin/python benchmarks/training.py [--quick] [--accuracy DATA ...] [--epochs E] [--seed N]
        [--device cpu|cuda] [--tta]

Part 1 (always): time of one optimisation step (forward + backward + AdamW) of the default
models on CPU (or ``--device cuda``), fp32 and bf16 autocast
(``torch.autocast(device, dtype=torch.bfloat16)``), each channels-first and channels-last; the
peer is fp32, ratio = fp32 time / bf16 time. On the CPU the header says whether it has bf16
instructions: without them torch emulates bf16, and ``trainer.precision: auto`` trains in fp32.
On a GPU, fp32 convolutions run as PyTorch leaves them by default (TF32 through cuDNN).
Part 2 (``--accuracy nmc_fibsem kintsugi_2ch segmentpy nrel_nmc1cal nrel_nmc1cal_fixed``; all names
in ``_training_accuracy.RUNS``): train with the real
``electroseg train`` config for at most ``--epochs`` epochs (early stopping may end it sooner; no
wall-clock limit) and score against the reference (see
``benchmarks/_training_accuracy.py``).
"""

from __future__ import annotations

import argparse
import time

import torch

from electroseg.config import builtin_config
from electroseg.models import build_model, count_parameters
from electroseg.training.dataset_config import DatasetConfig, VolumeEntry
from electroseg.training.losses import segmentation_loss
from electroseg.training.train import make_spec

MODELS = {  # model config -> (batch size, detectors)
    "unet3d": (2, 1),
    "multichannel2d": (8, 1),
}


def _spec(name: str, quick: bool):
    model = builtin_config(f"model/{name}.yaml")
    if quick:
        model["patch_size"] = [8, 64, 64] if model["name"] == "unet3d" else [64, 64]
    dataset = DatasetConfig(name="bench", phases=("pore", "cbd", "am"), channels=("bse",),
                            volumes=(VolumeEntry(images={"bse": None}, split="train"),))
    return make_spec(model, dataset, voxel_size=(0.05, 0.025, 0.025),
                     normalization={"method": "percentile", "lower": 0.5, "upper": 99.5})


def step_time(name: str, *, bf16: bool, batch: int, quick: bool, repeats: int,
              channels_last: bool = False, device: str = "cpu") -> tuple[float, int, tuple]:
    """Median seconds of one training step, parameter count and the input shape."""
    torch.manual_seed(0)
    spec = _spec(name, quick)
    net = build_model(spec).train().to(device)
    shape = (batch, spec.kwargs["in_channels"], *spec.patch_size)
    x = torch.rand(shape, device=device)
    if channels_last:
        layout = torch.channels_last_3d if len(shape) == 5 else torch.channels_last
        net, x = net.to(memory_format=layout), x.contiguous(memory_format=layout)
    y = torch.randint(0, 3, (batch, *spec.patch_size), device=device)
    w = torch.ones(batch, *spec.patch_size, device=device)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    sync = torch.cuda.synchronize if device != "cpu" else (lambda: None)
    warm = 1 if device == "cpu" else 3  # the first steps build kernels (and cuDNN's algorithm choice)
    times = []
    for i in range(repeats + warm):
        sync()
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            logits = net(x)
        loss = segmentation_loss(logits, y, w)
        loss.backward()
        opt.step()
        sync()  # a GPU step has finished only when its queue has
        if i >= warm:
            times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2], count_parameters(net), shape


def speed_table(quick: bool, device: str = "cpu") -> None:
    repeats = 3 if quick else 5 if device == "cpu" else 20
    where = torch.cuda.get_device_name() if device != "cpu" else f"{torch.get_num_threads()} threads"
    if device == "cpu":
        from electroseg.inference.windows import cpu_has_bf16

        where += f", bf16 instructions: {'yes' if cpu_has_bf16() else 'no'}"
    print(f"torch {torch.__version__}, {where} (machine shared: timings noisy)")
    print("columns: s/step fp32 (peer), fp32 + channels-last, bf16 autocast, bf16 + channels-last;"
          " ratios = fp32 / other.\nThe training default (precision auto) is bf16 + channels-last on"
          " a CPU with bf16 instructions or a GPU, fp32 on a CPU without them")
    print(f"{'model':<16}{'input (N,C,...)':<24}{'params':>10}{'fp32':>8}{'fp32+CL':>9}{'bf16':>8}{'bf16+CL':>9}"
          f"{'fp32/bf16':>10}{'fp32/bf16+CL':>13}")
    for name, (batch, _) in MODELS.items():
        run = dict(batch=batch, quick=quick, repeats=repeats, device=device)
        fp32, params, shape = step_time(name, bf16=False, **run)
        fp32_cl, _, _ = step_time(name, bf16=False, channels_last=True, **run)
        bf16, _, _ = step_time(name, bf16=True, **run)
        best, _, _ = step_time(name, bf16=True, channels_last=True, **run)
        print(f"{name:<16}{str(shape):<24}{params:>10,}{fp32:>8.3f}{fp32_cl:>9.3f}{bf16:>8.3f}{best:>9.3f}"
              f"{fp32 / bf16:>10.2f}{fp32 / best:>13.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller patches, fewer repeats")
    parser.add_argument("--accuracy", nargs="*", default=[], help="datasets to train and score")
    parser.add_argument("--epochs", type=int, default=200, help="training budget per dataset in epochs (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="training seed of the accuracy runs")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--tta", action="store_true",
                        help="also score the learned labels averaged over the four in-plane flips")
    parser.add_argument("--device", default="cpu", help="cpu or cuda: where the step times are taken (default: cpu)")
    args = parser.parse_args()
    if args.device != "cpu" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: torch {torch.__version__} sees no GPU")
    if not args.skip_speed:
        speed_table(args.quick, args.device)
    if args.accuracy:
        from _training_accuracy import accuracy_table

        accuracy_table(args.accuracy, epochs=args.epochs, quick=args.quick, seed=args.seed, tta=args.tta)


if __name__ == "__main__":
    main()

"""Inference throughput and peak memory: electroseg's engine against plain MONAI sliding windows.

Runs the default ``unet3d`` model config (read from configs/model/unet3d.yaml: channels and patch,
planned for a 0.05 x 0.025 x 0.025 µm FIB-SEM voxel) with random weights on a random
uint16 volume, each case in its own subprocess so that peak memory (max RSS) is per case:

- ``monai_fp32``: normalize_intensity + MONAI ``sliding_window_inference`` (Gaussian, same patch,
  overlap and windows per batch) in float32 under ``torch.inference_mode`` + argmax: the peer;
- ``electroseg_fp32`` / ``electroseg_bf16``: :func:`electroseg.inference.predict_volume`;
- ``fast_bf16``: the same with overlap 0 and a 32x128x128 patch (fewer, larger windows);
- ``chunked_bf16``: :func:`electroseg.inference.predict_chunked` from a memory-mapped TIFF to Zarr
  on a larger volume; ``chunked_tif_bf16`` (only with ``--cases``): the same to an OME BigTIFF.

Each case first runs once, untimed, on a small volume (oneDNN's per-shape kernel set-up), so the
figures are steady-state throughput. Usage:
``.venv/bin/python benchmarks/inference.py [--quick] [--threads N] [--cases a,b] [--overlap F] [--patch Z Y X]
[--repeats N] [--device cpu|cuda] [--batch N] [--volume Z Y X]``. On ``--device cuda`` every case
runs on the GPU (the peer too, in float32 with PyTorch's defaults, and ``monai_bf16`` under the
same autocast as ours), the table adds the GPU's peak allocated memory, and a bigger ``--volume``
and ``--batch`` suit a GPU better than the CPU defaults. With ``--repeats N`` the cases run N interleaved rounds and the ratios use each
case's median run. Prints a table and the
ratios, by wall-clock time and by process CPU time (all threads; less disturbed when other work
shares the machine). "Mvox/s" is output voxels per wall-clock second, windows' overlap included.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from _worker import run_worker  # benchmarks/ is sys.path[0] when a script here runs

from electroseg.config import builtin_config

BATCH = 2  # windows per forward pass (--batch)
DEVICE = "cpu"  # --device
VOXEL = (0.05, 0.025, 0.025)


_MODEL = builtin_config("model/unet3d.yaml")  # the default unet3d: channels, patch size, min_size
CHANNELS, TRAIN_PATCH, MIN_SIZE = list(_MODEL["channels"]), tuple(_MODEL["patch_size"]), int(_MODEL["min_size"])
NORM = str(_MODEL["norm"])  # batch: the default of new models (instance only for old checkpoints)
PATCH = TRAIN_PATCH  # inference window of every case but fast_bf16 (--patch)
OVERLAP = float(builtin_config("predict.yaml")["overlap"])  # the `electroseg predict` default
CASES = ("monai_fp32", "electroseg_fp32", "electroseg_bf16", "fast_bf16", "chunked_bf16")
# on request (--cases): chunked with labels to an OME BigTIFF; the peer under bf16 autocast;
# ours under fp16 autocast
EXTRA_CASES = ("chunked_tif_bf16", "monai_bf16", "electroseg_fp16")  # fp16: CUDA only
FAST_PATCH = (32, 128, 128)  # no overlap and a patch that tiles 512 exactly: the fastest setting


def _spec():
    from electroseg.models import ModelSpec, plan_unet

    plan = plan_unet(VOXEL, TRAIN_PATCH, max_levels=len(CHANNELS), min_size=MIN_SIZE)
    kwargs = dict(in_channels=1, out_channels=3, channels=CHANNELS, norm=NORM, **plan.to_dict())
    return ModelSpec(name="unet3d", kwargs=kwargs, phases=("pore", "cbd", "am"), channels=("bse",),
                     voxel_size=VOXEL, patch_size=TRAIN_PATCH)


def _loaded():
    import torch

    from electroseg.models import LoadedModel, build_model

    torch.manual_seed(0)
    spec = _spec()
    return LoadedModel(network=build_model(spec).eval(), spec=spec)


def _volume(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(1000, 60000, size=shape, dtype=np.uint16)


def _case_monai(shape, bf16=False):
    import torch
    from monai.inferers import sliding_window_inference

    from electroseg.models import normalize_intensity

    loaded, volume = _loaded(), _volume(shape)
    network = loaded.network.to(DEVICE)
    start, cpu = time.perf_counter(), time.process_time()
    with torch.inference_mode(), torch.autocast(torch.device(DEVICE).type, dtype=torch.bfloat16, enabled=bf16):
        x = torch.from_numpy(normalize_intensity(volume, loaded.spec.normalization))[None, None].to(DEVICE)
        logits = sliding_window_inference(x, PATCH, BATCH, network, overlap=OVERLAP, mode="gaussian")
        labels = logits[0].argmax(0).to(torch.uint8).cpu().numpy()  # on a GPU, .cpu() waits for the work
    return time.perf_counter() - start, time.process_time() - cpu, labels


def _case_ours(shape, precision, *, fast=False):
    from electroseg.inference import predict_volume

    loaded, volume = _loaded(), _volume(shape)
    options = dict(overlap=0.0, patch_size=FAST_PATCH) if fast else dict(overlap=OVERLAP, patch_size=PATCH)
    start, cpu = time.perf_counter(), time.process_time()
    labels = predict_volume(loaded, volume, batch_size=BATCH, precision=precision, device=DEVICE,
                            **options).labels
    return time.perf_counter() - start, time.process_time() - cpu, labels


def _case_chunked(shape, suffix=".zarr"):
    import tifffile

    from electroseg.inference import predict_chunked

    loaded = _loaded()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scan.tif"
        out = tifffile.memmap(path, shape=shape, dtype=np.uint16, bigtiff=True)
        for z in range(0, shape[0], 16):  # written slab by slab: the full volume never in RAM
            out[z:z + 16] = _volume((min(16, shape[0] - z), *shape[1:]), seed=z)
        out.flush()
        del out
        start, cpu = time.perf_counter(), time.process_time()
        predict_chunked(loaded, path, Path(tmp) / f"labels{suffix}", overlap=OVERLAP, patch_size=PATCH, batch_size=BATCH,
                        precision="bf16", device=DEVICE)
        return time.perf_counter() - start, time.process_time() - cpu, None


def _warm_up(case: str) -> None:
    """Run the case once on a small volume, untimed: oneDNN builds its kernels for each new
    input shape on first use (1-3 s here), a one-off cost per process that a batch of many
    scans pays once. Every case gets the same treatment, the peer included."""
    patch = FAST_PATCH if case == "fast_bf16" else PATCH
    small = (patch[0], 2 * patch[1], 2 * patch[2])
    if case.startswith("monai"):
        _case_monai(small, bf16=case == "monai_bf16")
    else:
        _case_ours(small, case.split("_")[1] if case.startswith("electroseg") else "bf16", fast=case == "fast_bf16")


def _worker(case: str, shape: tuple[int, ...], threads: int) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)
    _warm_up(case)
    if DEVICE != "cpu":
        torch.cuda.reset_peak_memory_stats()
    if case.startswith("monai"):
        seconds, cpu_seconds, labels = _case_monai(shape, bf16=case == "monai_bf16")
    elif case == "fast_bf16":
        seconds, cpu_seconds, labels = _case_ours(shape, "bf16", fast=True)
    elif case == "chunked_bf16":
        seconds, cpu_seconds, labels = _case_chunked(shape)
    elif case == "chunked_tif_bf16":
        seconds, cpu_seconds, labels = _case_chunked(shape, ".tif")
    else:
        seconds, cpu_seconds, labels = _case_ours(shape, case.split("_")[1])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    digest = None if labels is None else np.bincount(labels.ravel(), minlength=3).tolist()
    gpu_peak = torch.cuda.max_memory_allocated() if DEVICE != "cpu" else 0
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_bytes": usage.ru_maxrss * 1024,
                      "gpu_peak_bytes": gpu_peak, "label_counts": digest}))


def _run(case: str, shape, threads: int) -> dict:
    result = run_worker(__file__, case, "--threads", threads, "--overlap", OVERLAP, "--patch", *PATCH,
                        "--device", DEVICE, "--batch", BATCH, "--shape", *shape)
    result.update(case=case, shape=shape, mvox_s=np.prod(shape) / result["seconds"] / 1e6)
    return result


def main() -> None:
    global OVERLAP, PATCH, DEVICE, BATCH
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small volumes (a smoke run)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated, among {','.join(CASES + EXTRA_CASES)} (default: {','.join(CASES)})")
    parser.add_argument("--overlap", type=float, default=OVERLAP,
                        help=f"window overlap of every case (default: the predict config's, {OVERLAP})")
    parser.add_argument("--patch", type=int, nargs=3, default=PATCH,
                        help=f"window (z, y, x) of every case but fast_bf16 (default: the model's, {PATCH})")
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds over all cases, interleaved; each row is the round with the median time")
    parser.add_argument("--device", default=DEVICE, help="cpu or cuda: where every case runs (default: cpu)")
    parser.add_argument("--batch", type=int, default=BATCH, help=f"windows per forward pass (default: {BATCH})")
    parser.add_argument("--volume", type=int, nargs=3,
                        help="shape (z, y, x) of the in-memory cases (default: 128 512 512; 32 192 192 with --quick)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--shape", type=int, nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    OVERLAP, PATCH, DEVICE, BATCH = args.overlap, tuple(args.patch), args.device, args.batch
    if args.worker:
        return _worker(args.worker, tuple(args.shape), args.threads)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if DEVICE != "cpu" and not torch.cuda.is_available():
        parser.error(f"--device {DEVICE}: torch {torch.__version__} sees no GPU")
    shape = tuple(args.volume) if args.volume else (32, 192, 192) if args.quick else (128, 512, 512)
    big = (40, 192, 256) if args.quick else (300, 768, 1024)
    cases = [(c, big if c.startswith("chunked") else shape) for c in args.cases.split(",")]
    unknown = sorted(set(c for c, _ in cases) - set(CASES + EXTRA_CASES))
    if unknown:
        parser.error(f"--cases: unknown {unknown}; choose among {', '.join(CASES + EXTRA_CASES)}")
    where = torch.cuda.get_device_name() if DEVICE != "cpu" else f"{torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}; patch {PATCH}, overlap {OVERLAP}, "
          f"{BATCH} windows per batch, channels {CHANNELS}")
    print(f"{'case':<20} {'shape':<16} {'seconds':>8} {'cpu s':>7} {'Mvox/s':>7} {'peak GB':>8} {'GPU GB':>7}",
          flush=True)
    runs: dict[str, list[dict]] = {case: [] for case, _ in cases}
    for round_ in range(max(1, args.repeats)):  # interleaved, so slow spells of the machine hit every case
        for case, case_shape in cases:  # each row printed as soon as it is measured
            r = _run(case, case_shape, args.threads)
            runs[case].append(r)
            label = case if args.repeats <= 1 else f"{case} #{round_ + 1}"
            print(f"{label:<20} {'x'.join(map(str, case_shape)):<16} {r['seconds']:8.1f} {r['cpu_seconds']:7.1f} "
                  f"{r['mvox_s']:7.2f} {r['peak_bytes'] / 1e9:8.2f} {r['gpu_peak_bytes'] / 1e9:7.2f}", flush=True)
    rows = {case: sorted(rs, key=lambda r: r["seconds"])[(len(rs) - 1) // 2] for case, rs in runs.items()}
    if args.repeats > 1:
        print(f"median of {args.repeats} rounds:")
    _ratios(rows, shape)


def _ratios(rows: dict, shape) -> None:
    peer = rows.get("monai_fp32")
    for case in ("electroseg_fp32", "electroseg_bf16", "electroseg_fp16", "fast_bf16", "monai_bf16"):
        r = rows.get(case)
        if peer is None or r is None:
            continue
        same = np.sum(np.abs(np.subtract(r["label_counts"], peer["label_counts"]))) / 2 / np.prod(shape)
        print(f"{case} / monai_fp32 throughput: {r['mvox_s'] / peer['mvox_s']:.2f}x wall-clock, "
              f"{peer['cpu_seconds'] / r['cpu_seconds']:.2f}x CPU time "
              f"(label-count difference {same:.4f} of voxels)")


if __name__ == "__main__":
    main()

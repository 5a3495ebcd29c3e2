"""``train(cfg)``: compose data, model and Lightning trainer from a Hydra config and fit."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf, open_dict

from electroseg.errors import InputError
from electroseg.io import write_json
from electroseg.models import ModelSpec, build_model, count_parameters, plan_unet
from electroseg.models.export import size_divisor
from electroseg.training.checkpoint import check_compatible, read_checkpoint
from electroseg.training.dataset_config import DatasetConfig, parse_dataset_config
from electroseg.training.datamodule import ElectrodeDataModule
from electroseg.training.module import SegmentationModule
from electroseg.training.holdout import hold_out_labels
from electroseg.training.scores import labelled_slice_scores
from electroseg.training.volumes import LabelOptions, load_split

__all__ = ["train", "make_spec", "MONITOR"]

logger = logging.getLogger(__name__)
PATCH_SHARE = 7 / 8  # the training patch spans at most this share of the median image, per axis
MONITOR = "val/score"  # val/mean_iou, ties broken by the held-out loss (module.LOSS_TIE_BREAK)
MODEL_KEYS = {"name", "channels", "patch_size", "context_slices", "min_size", "norm", "batch_size",
              "samples_per_epoch"}


def make_spec(model: Mapping[str, Any], dataset: DatasetConfig, *, voxel_size: Sequence[float] | None,
              normalization: Mapping[str, Any]) -> ModelSpec:
    """Resolve a model config (``configs/model/*.yaml``) against a dataset into a ModelSpec.

    Kernel sizes and strides are planned from the voxel size (isotropic when unknown) and the
    patch size with :func:`electroseg.models.plan_unet`, one level per entry of ``channels``.
    """
    unknown = set(model) - MODEL_KEYS
    if unknown:
        raise InputError(f"model: unknown keys {sorted(unknown)}; expected among {sorted(MODEL_KEYS)}")
    name, patch = str(model["name"]), tuple(int(p) for p in model["patch_size"])
    context = int(model.get("context_slices", 0))
    dims = 3 if name == "unet3d" else 2
    if len(patch) != dims:
        raise InputError(f"model {name}: patch_size needs {dims} values, got {list(patch)}")
    spacing = tuple(voxel_size[-dims:]) if voxel_size is not None else (1.0,) * dims
    channels = [int(c) for c in model["channels"]]
    plan = plan_unet(spacing, patch, max_levels=len(channels), min_size=int(model.get("min_size", 4)))
    if plan.num_levels < len(channels):
        logger.warning("model %s: patch %s allows only %d levels; using channels %s",
                       name, patch, plan.num_levels, channels[: plan.num_levels])
        channels = channels[: plan.num_levels]
    kwargs = dict(in_channels=len(dataset.channels) * (2 * context + 1), out_channels=len(dataset.phases),
                  channels=channels, **plan.to_dict(), norm=str(model.get("norm", "batch")))
    return ModelSpec(name=name, kwargs=kwargs, phases=dataset.phases, channels=dataset.channels,
                     voxel_size=None if voxel_size is None else tuple(voxel_size), patch_size=patch,
                     context_slices=context, normalization=dict(normalization),
                     preprocess=tuple(dataset.preprocess))


def _init_checkpoint(cfg: DictConfig, dataset: DatasetConfig) -> tuple[dict, ModelSpec] | None:
    """``init=`` (a checkpoint or ``pretrained:NAME``): its weights and spec, checked against the
    dataset before any computing; the training volumes then get its intensity normalisation."""
    if not cfg.get("init"):
        return None
    from electroseg.models import read_checkpoint, spec_from_checkpoint

    checkpoint = read_checkpoint(str(cfg.init))
    spec = spec_from_checkpoint(checkpoint, source=str(cfg.init))
    inputs = len(dataset.channels) * (2 * spec.context_slices + 1)
    if inputs != spec.kwargs["in_channels"]:
        raise InputError(f"init={cfg.init}: the network takes {spec.kwargs['in_channels']} input channels "
                         f"({len(spec.channels)} detector(s) {list(spec.channels)}, {spec.context_slices} context "
                         f"slices), the dataset gives {len(dataset.channels)} ({list(dataset.channels)})")
    from electroseg.config import builtin_config

    model = {**builtin_config(f"model/{spec.name}.yaml"), "channels": list(spec.kwargs["channels"]),
             "patch_size": list(spec.patch_size), "context_slices": spec.context_slices,
             "norm": spec.kwargs.get("norm", "batch")}
    with open_dict(cfg):
        cfg.normalization = dict(spec.normalization)
        if cfg.get("model") is None or cfg.model.get("name") != spec.name:
            cfg.model = model  # the loader follows the starting network's config (batch, patches)
    logger.info("init=%s: %s %s, phases %s -> %s; intensity normalisation %s", cfg.init, spec.name,
                spec.kwargs["channels"], list(spec.phases), list(dataset.phases), dict(spec.normalization))
    return checkpoint, spec


def fit_patch_to_images(spec: ModelSpec, volumes: Sequence[Any]) -> ModelSpec:
    """The training patch cut, axis by axis, to 7/8 of the median extent of the training images
    (nnU-Net keeps its patch within the median image too), rounded down to a multiple of the
    network's downsampling; the network itself is unchanged. An eighth is left so that the patch
    still moves over the image. A patch larger than the image is mostly edge padding, which batch
    norm then learns its statistics from. NREL nmc1cal (75 x 75 slices), held-out slice 33, three
    seeds: fine-tuning the earlier ``electrode-2phase`` with 128 x 128 patches agreed with 93.6-96.1 %, with
    64 x 64 (the cut) 96.7-98.4 %; from scratch 92.2 % (one seed) against 96.7-98.6 %
    (docs/learned.md)."""
    if not volumes:
        return spec
    dims = len(spec.patch_size)
    extent = [float(np.median([v.image.shape[-dims + a] for v in volumes])) for a in range(dims)]
    divisor = size_divisor(spec.kwargs, dims)
    limit = [int(PATCH_SHARE * e) // d * d for e, d in zip(extent, divisor)]
    patch = tuple(p if p <= m or m < d else m for p, m, d in zip(spec.patch_size, limit, divisor))
    if patch == tuple(spec.patch_size):
        return spec
    logger.info("model %s: training patch %s -> %s, to fit the training images (median extent %s; at most "
                "%.3g of it, multiples of %s)", spec.name, list(spec.patch_size), list(patch),
                [int(e) for e in extent], PATCH_SHARE, divisor)
    from dataclasses import replace

    return replace(spec, patch_size=patch)


def _fine_tune_spec(start: ModelSpec, dataset: DatasetConfig, voxel_size) -> ModelSpec:
    """The starting network's architecture with the dataset's phases (a new output head when
    they differ), channels, voxel size and preprocessing."""
    from dataclasses import replace

    kwargs = {**start.kwargs, "out_channels": len(dataset.phases)}
    return replace(start, kwargs=kwargs, phases=dataset.phases, channels=dataset.channels,
                   voxel_size=None if voxel_size is None else tuple(voxel_size),
                   preprocess=tuple(dataset.preprocess), logit_bias=None, temperature=None)


def _load_init_weights(net: torch.nn.Module, start: tuple[dict, ModelSpec], *, source: str) -> None:
    """Copy every weight whose shape fits; the output head is new when the phase count differs."""
    from electroseg.models.spec import network_weights

    checkpoint, spec = start
    weights = network_weights(checkpoint, source=source)
    own = net.state_dict()
    fitting = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    fresh = sorted(set(own) - set(fitting))
    net.load_state_dict(fitting, strict=False)
    if len(fitting) < len(own) // 2:
        raise InputError(f"init={source}: only {len(fitting)} of {len(own)} weights fit the network")
    logger.info("init=%s: %d weights copied%s", source, len(fitting),
                f", {len(fresh)} new (output head for phases differing from {list(spec.phases)})" if fresh else "")


def _dataset(cfg: DictConfig) -> DatasetConfig:
    data = OmegaConf.to_container(cfg.data, resolve=True)
    root = data.get("root")
    if root is None:
        raise InputError(f"data {data.get('name')!r}: 'root' is not set; give data.root=FOLDER holding its files")
    return parse_dataset_config(data, root=Path(str(root)).expanduser(), name=f"data {data.get('name')!r}")


def _volumes(cfg: DictConfig, dataset: DatasetConfig) -> tuple[list, list, Any, dict, Any]:
    """Train and val volumes, voxel size, the normalisation (with the training bounds) and the
    hold-out (None when the dataset has a val split or nothing could be held out)."""
    options = LabelOptions(**_options(cfg, "labels", LabelOptions))
    norm = OmegaConf.to_container(cfg.normalization, resolve=True)
    cache = Path(cfg.cache_dir) if cfg.get("cache_dir") else None
    train_volumes, voxel_size, norm = load_split(dataset, "train", normalization=norm, label_options=options,
                                                 use_pseudo=dataset.pseudo_labels, cache_dir=cache)
    val_volumes, _, _ = load_split(dataset, "val", normalization=norm, label_options=options, use_pseudo=False)
    _resolve_auto_model(cfg, train_volumes + val_volumes)
    if cfg.model.name == "unet3d" and any(v.image.shape[1] == 1 for v in train_volumes + val_volumes):
        raise InputError(f"data {dataset.name}: 2-D images need model=multichannel2d, not unet3d")
    held = None
    if not val_volumes:
        held = hold_out_labels(train_volumes, fraction=float(cfg.get("holdout_fraction", 0.2)))
        if held is None:
            logger.warning("data %s: no split: val volume and nothing to hold out; validating on "
                           "training patches (the validation score means nothing)", dataset.name)
        else:
            logger.info("data %s: no split: val volume; held out for validation (not trained on): %s",
                        dataset.name, held.describe())
    return train_volumes, val_volumes, voxel_size, norm, held


def _callbacks(cfg: DictConfig, out: Path, *, has_val: bool = True) -> list:
    """Best/last checkpoints, and early stopping when there are validation labels (a val split
    or labels held out by :func:`hold_out_labels`).

    Without any, validation would score training patches: sparse interior scribbles reach IoU
    1.0 within an epoch, so early stopping would end the run before boundaries are learnt and
    "best" would be that first epoch. Then there is no early stopping and best = latest.
    """
    ckpt_dir = out / "checkpoints"
    # no val split: nothing to judge "best" by, so best.ckpt is the latest epoch's model
    best = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=MONITOR if has_val else None,
                           mode="max", save_top_k=1, auto_insert_metric_name=False,
                           enable_version_counter=False)
    last = ModelCheckpoint(dirpath=ckpt_dir, save_last=True, save_top_k=0,
                           every_n_train_steps=int(cfg.callbacks.checkpoint_every_n_steps) or None)
    if not has_val:
        logger.info("no val split: no early stopping; training runs to trainer.max_epochs / max_time")
        return [best, last, EpochLog()]
    stop = EarlyStopping(monitor=MONITOR, mode="max", patience=int(cfg.callbacks.early_stopping_patience),
                         strict=False, check_on_train_epoch_end=False)
    return [best, last, stop, EpochLog()]


class EpochLog(L.Callback):
    """One log line per epoch (at most one per `EVERY_S` seconds, and the last): epoch, step,
    training loss, held-out mean IoU and the best so far. Lightning's progress bar leaves a
    single line when the output goes to a file; this says that training is moving."""

    EVERY_S = 10.0

    def __init__(self) -> None:
        self._last = -float("inf")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        import time

        now = time.monotonic()
        last_epoch = trainer.max_epochs is not None and trainer.current_epoch + 1 >= trainer.max_epochs
        if now - self._last < self.EVERY_S and not last_epoch:
            return
        self._last = now
        metrics = trainer.callback_metrics
        parts = [f"epoch {trainer.current_epoch + 1}" + (f"/{trainer.max_epochs}" if trainer.max_epochs else ""),
                 f"step {trainer.global_step}"]
        for key, label in (("train/loss", "train loss"), ("val/mean_iou", "held-out mean IoU")):
            if key in metrics:
                parts.append(f"{label} {float(metrics[key]):.4f}")
        best = trainer.checkpoint_callback
        if best is not None and best.best_model_score is not None:
            parts.append(f"best val/score {float(best.best_model_score):.4f}")
        logger.info("train: %s", ", ".join(parts))


def _resume_path(cfg: DictConfig, out: Path, spec: ModelSpec) -> str | None:
    wanted = cfg.get("ckpt_path")
    if wanted is None:
        return None
    path = out / "checkpoints" / "last.ckpt" if wanted == "last" else Path(str(wanted))
    if wanted == "last" and not path.is_file():
        logger.info("ckpt_path=last: no %s yet, starting fresh", path)
        return None
    stored = ModelSpec.from_dict(read_checkpoint(path)["electroseg"], source=str(path))
    check_compatible(stored, spec, source=str(path))
    logger.info("resuming from %s", path)
    return str(path)


_DATAMODULE_ARGUMENTS = ("train_volumes", "val_volumes", "patch_size", "num_classes", "context_slices",
                         "augment", "seed")


def _options(cfg: DictConfig, key: str, target: Any, *, given: Sequence[str] = ()) -> dict[str, Any]:
    """``cfg[key]`` as keyword arguments of ``target``; an unknown key is an InputError naming it.

    ``given`` names the arguments that `train` passes itself (not configurable under ``key``).
    """
    import inspect

    options = OmegaConf.to_container(cfg[key], resolve=True)
    accepted = set(inspect.signature(target).parameters) - {"self", *given}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise InputError(f"{key}.{unknown[0]}: unknown option; {key} takes {', '.join(sorted(accepted))}")
    return options


def train(cfg: DictConfig, *, callbacks: Sequence[L.Callback] = ()) -> dict[str, Any]:
    """Train a segmentation model as configured by ``configs/train.yaml``; return final metrics.

    Writes ``<out>/checkpoints/best.ckpt`` and ``last.ckpt``, CSV and TensorBoard logs under
    ``<out>/logs`` and ``<out>/train_metrics.json``. ``callbacks``: extra Lightning callbacks
    (the napari widget's progress and cancel), after the checkpoint and early-stopping ones.
    """
    out = Path(cfg.out)
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    dataset = _dataset(cfg)
    start_from = _init_checkpoint(cfg, dataset)  # before the volumes: it sets their normalisation
    all_train, val_volumes, voxel_size, normalization, held = _volumes(cfg, dataset)
    _warn_sparse_slices_3d(cfg, all_train)
    train_volumes = all_train if held is None else held.train
    fit_val = val_volumes if held is None else held.val
    spec = make_spec(OmegaConf.to_container(cfg.model, resolve=True), dataset, voxel_size=voxel_size,
                     normalization=normalization)
    if start_from is not None:
        spec = _fine_tune_spec(start_from[1], dataset, voxel_size)
    spec = fit_patch_to_images(spec, train_volumes)
    net = build_model(spec)
    if start_from is not None:
        _load_init_weights(net, start_from, source=str(cfg.init))
    logger.info("model %s: %d trainable parameters, plan %s", spec.name, count_parameters(net), spec.kwargs)
    resume = _resume_path(cfg, out, spec)
    datamodule = ElectrodeDataModule(
        train_volumes, fit_val, patch_size=spec.patch_size, num_classes=len(spec.phases),
        context_slices=None if spec.name == "unet3d" else spec.context_slices,
        augment=OmegaConf.to_container(cfg.augment, resolve=True), seed=int(cfg.seed),
        **_options(cfg, "loader", ElectrodeDataModule, given=_DATAMODULE_ARGUMENTS))
    module = SegmentationModule(net, spec=spec, optimizer=instantiate(cfg.optimizer),
                                scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
                                dice_weight=float(cfg.loss.dice_weight),
                                channels_last=bool(cfg.get("channels_last", False)))
    loggers = [CSVLogger(out / "logs", name="csv"), TensorBoardLogger(out / "logs", name="tensorboard")]
    asked = cfg.trainer.get("precision", "auto")
    precision = trainer_precision(asked, cfg.trainer.get("accelerator", "auto"))
    if str(asked) == "auto":
        logger.info("trainer.precision=auto: training in %s%s", precision,
                    " (this CPU has no bf16 instructions)" if precision == "32-true" and not torch.cuda.is_available()
                    else "")
    trainer = instantiate(cfg.trainer, callbacks=[*_callbacks(cfg, out, has_val=bool(fit_val)), *callbacks],
                          logger=loggers, default_root_dir=str(out), precision=precision,
                          **_short_budget(cfg, datamodule, has_val=bool(fit_val)))
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
    seconds = time.perf_counter() - start
    calibration = _calibrate(trainer, out, dataset, all_train, seed=int(cfg.seed))
    scores = _scores(trainer, out, all_train, val_volumes, held, depth_axis=dataset.depth_axis)
    validation = ("held-out labels: " + held.describe()) if held is not None else (
        "split: val volumes" if val_volumes else "training patches (no val split, nothing to hold out)")
    metrics = _report(trainer, out, spec, count_parameters(net), seconds, calibration, scores, validation)
    if trainer.is_global_zero:
        temperature = (scores or {}).get("temperature")
        _record(out, training_record(dataset, metrics, seed=int(cfg.seed)),
                temperature=None if temperature is None else temperature["temperature"],
                slice_errors=(scores or {}).get("slice_errors"))
    return metrics


def _short_budget(cfg: DictConfig, datamodule: Any, *, has_val: bool) -> dict[str, Any]:
    """``val_check_interval`` when ``trainer.max_steps`` ends training inside the first epoch.

    Validation runs at the end of each epoch; a step budget shorter than one epoch would stop
    training before any, leaving no best.ckpt, no held-out scores and no per-slice agreement in
    train_metrics.json. Validating once at the last step gives them.
    """
    max_steps = int(cfg.trainer.get("max_steps", -1) or -1)
    per_epoch = int(datamodule.samples_per_epoch) // int(datamodule.batch_size)  # drop_last batches
    limit = cfg.trainer.get("limit_train_batches")
    if isinstance(limit, int) and not isinstance(limit, bool):
        per_epoch = min(per_epoch, limit)
    elif isinstance(limit, float):
        per_epoch = int(per_epoch * limit)
    if not has_val or max_steps <= 0 or max_steps >= per_epoch or cfg.trainer.get("val_check_interval") is not None:
        return {}
    return {"val_check_interval": max_steps}


def training_record(dataset: DatasetConfig, metrics: dict[str, Any], *, seed: int) -> dict[str, Any]:
    """What a checkpoint says about how it was made (``checkpoint["electroseg_record"]``):
    package versions, the dataset (name, files, splits), the seed, the budget spent and the
    scores on held-out labels. ``electroseg inspect`` prints it; exports carry it."""
    import lightning
    import monai

    from electroseg import __version__

    held = metrics.get("held_out") or {}
    return {
        "versions": {"electroseg": str(__version__), "torch": str(torch.__version__),  # plain str:
                     "lightning": str(lightning.__version__), "monai": str(monai.__version__)},  # weights_only loads
        "data": {"name": dataset.name, "phases": list(dataset.phases), "channels": list(dataset.channels),
                 "volumes": [{"images": {k: Path(p).name for k, p in v.images.items()}, "split": v.split,
                              "labels": v.labels and Path(v.labels).name,
                              "hand_labels": v.hand_labels and Path(v.hand_labels).name} for v in dataset.volumes]},
        "seed": seed, "machine": metrics.get("machine"), "precision": metrics.get("precision"),
        "global_step": metrics.get("global_step"), "epochs": metrics.get("epochs"),
        "stopped_by": metrics.get("stopped_by"), "validation": metrics.get("validation"),
        "held_out": {k: held[k] for k in ("mean_iou", "iou") if k in held},
    }


def trainer_precision(precision: Any, accelerator: Any = "auto") -> Any:
    """Lightning's ``precision`` for ``trainer.precision``; ``auto`` picks it for the machine.

    ``auto`` is ``bf16-mixed`` (bfloat16 autocast) on a GPU that supports bf16 and on a CPU with
    bfloat16 instructions (AVX512-BF16 or AMX), and ``32-true`` elsewhere. On a CPU without
    them torch emulates bf16 and a step is slower than in float32: one step of the default
    unet3d (2 x 16 x 96 x 96, channels-last) took 0.735 s in bf16 against 0.446 s in float32 on
    an Ice Lake Xeon with 2 threads (``benchmarks/training.py``). Any other value is Lightning's.
    """
    if str(precision) != "auto":
        return precision
    from electroseg.inference.windows import cpu_has_bf16

    name = str(accelerator)
    if name in ("gpu", "cuda") or (name == "auto" and torch.cuda.is_available()):
        return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32-true"
    return "bf16-mixed" if cpu_has_bf16() else "32-true"


def machine_record(device: torch.device | str = "cpu") -> dict[str, Any]:
    """What the arithmetic of a training run depends on besides seed, data and code: the
    processor, the vector instructions torch's CPU kernels use, whether it has bfloat16
    instructions (without them bf16 arithmetic is emulated, with other rounding), the threads,
    and the GPU.

    The same seed, data and step budget give the same checkpoint on one machine. Two machines
    sold as the same kind gave different ones (the NREL scribble model: solid 0.382 against
    0.394, docs/learned.md), so the record names the machine a checkpoint came from.
    """
    import platform

    from electroseg.inference.windows import cpu_has_bf16

    processor = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            processor = next((line.split(":", 1)[1].strip() for line in info
                              if line.startswith("model name")), processor)
    except OSError:  # not Linux
        pass
    device = torch.device(device)
    return {"processor": processor, "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
            "bf16_instructions": cpu_has_bf16(), "threads": int(torch.get_num_threads()), "device": device.type,
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}


def _record(out: Path, record: dict[str, Any], *, temperature: float | None = None,
            slice_errors: dict | None = None) -> None:
    """Store ``record`` in best.ckpt and last.ckpt, and in best.ckpt the probability temperature
    fitted on its held-out labels and the metric errors on its held-out slices
    (``checkpoint["electroseg_slice_errors"]``), atomically; weights unchanged."""
    for path in (out / "checkpoints" / "best.ckpt", out / "checkpoints" / "last.ckpt"):
        if not path.is_file():
            continue
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        checkpoint["electroseg_record"] = record
        if temperature is not None and path.name == "best.ckpt":
            checkpoint["electroseg"] = {**checkpoint["electroseg"], "temperature": float(temperature)}
        if slice_errors is not None and path.name == "best.ckpt":
            checkpoint["electroseg_slice_errors"] = slice_errors
        partial = path.with_name(path.name + ".partial")
        torch.save(checkpoint, partial)
        os.replace(partial, path)


def _separate_slices(volumes: list) -> list[int] | None:
    """The labelled slices when labels (pseudo-labels included) sit on at most 8 slices none of
    which has a labelled neighbour, else None."""
    from electroseg.training.holdout import labelled_units

    slices = [z for _, z in labelled_units(volumes, use_pseudo=True)]  # any label, pseudo-labels included
    isolated = [z for z in slices if z - 1 not in slices and z + 1 not in slices]
    return slices if slices and len(isolated) == len(slices) and len(slices) <= 8 else None


def _resolve_auto_model(cfg: DictConfig, volumes: list) -> None:
    """``model=auto`` (the default): the 2.5-D ``multichannel2d`` for 2-D images and for labels on
    a few separate slices only, else the 3-D ``unet3d``; ``cfg.model`` becomes that model's config.

    On NREL nmc1cal (scribbles on slices 0, 33 and 74, nothing else) the unet3d agreed with 57 %
    of the held-out slice 33, the 2.5-D model with 98.7 % (docs/learned.md). Synthetic samples
    with dense pseudo-labels keep the unet3d.
    """
    if cfg.model.get("name") != "auto":
        return
    from electroseg.config import builtin_config

    separate = _separate_slices(volumes)
    if any(v.image.shape[1] == 1 for v in volumes):
        choice, why = "multichannel2d", "2-D images"
    elif separate is not None:
        choice, why = "multichannel2d", f"labels on {len(separate)} separate slices only ({separate})"
    else:
        choice, why = "unet3d", "labelled volumes"
    with open_dict(cfg):
        cfg.model = builtin_config(f"model/{choice}.yaml")
    logger.info("model=auto: %s (%s)", choice, why)


def _warn_sparse_slices_3d(cfg: DictConfig, volumes: list) -> None:
    """A 3-D network taught on a few isolated labelled slices learns what those slices look like
    inside its window (at the volume's faces, a face): on NREL nmc1cal (slices 0, 33, 74) the
    unet3d agreed with 57 % of the held-out slice 33, the 2.5-D model with 98.7 %."""
    if cfg.model.name != "unet3d":
        return
    slices = _separate_slices(volumes)
    if slices is not None:
        logger.warning("labels on %d separate slices only (%s): a 3-D network learns them poorly between "
                       "them; model=multichannel2d (each slice with its neighbours) suits slice labels better",
                       len(slices), slices)


def _scores(trainer: L.Trainer, out: Path, train_volumes: list, val_volumes: list, held: Any,
            *, depth_axis: int = 1) -> dict[str, Any] | None:
    """Agreement of best.ckpt with every labelled slice, IoU on the held-out / val labels."""
    best = out / "checkpoints" / "best.ckpt"
    if not trainer.is_global_zero or not best.is_file():
        return None
    masks = held.masks if held is not None else [np.zeros(v.target.labels.shape, bool) for v in train_volumes]
    pairs = [*zip(train_volumes, masks), *((v, None) for v in val_volumes)]
    return labelled_slice_scores(best, [(v, m) for v, m in pairs if v.target.human is not None],
                                 depth_axis=depth_axis)


def _stopped_by(trainer: L.Trainer) -> str:
    """What ended training: early_stopping, max_steps, max_epochs, or max_time (the safety cap)."""
    from lightning.pytorch.callbacks import Timer

    for callback in trainer.callbacks:
        if isinstance(callback, EarlyStopping) and callback.stopped_epoch > 0:
            return "early_stopping"
        if isinstance(callback, Timer) and callback.time_remaining("train") is not None \
                and callback.time_remaining("train") <= 0:
            return "max_time"
    if trainer.max_steps is not None and 0 < trainer.max_steps <= trainer.global_step:
        return "max_steps"
    return "max_epochs"


def _calibrate(trainer: L.Trainer, out: Path, dataset: DatasetConfig, volumes: list,
               *, seed: int) -> dict[str, Any] | None:
    """Fit volume-fraction offsets into best.ckpt and last.ckpt when the dataset names fractions."""
    if dataset.volume_fractions is None or not trainer.is_global_zero:
        return None
    from electroseg.training.calibrate import calibrate_checkpoint, same_weights

    images = [v.image for v in volumes]
    best, last = (out / "checkpoints" / f"{name}.ckpt" for name in ("best", "last"))
    if best.is_file() and last.is_file() and same_weights(best, last):  # e.g. no val split: fit once
        report = calibrate_checkpoint(best, images, dataset.volume_fractions, seed=seed, also=[last])
        return {"best": report, "last": report}
    return {path.stem: calibrate_checkpoint(path, images, dataset.volume_fractions, seed=seed)
            for path in (best, last) if path.is_file()}


def _report(trainer: L.Trainer, out: Path, spec: ModelSpec, parameters: int, seconds: float,
            calibration: dict[str, Any] | None = None, scores: dict[str, Any] | None = None,
            validation: str = "") -> dict[str, Any]:
    metrics: dict[str, Any] = {k: float(v) for k, v in trainer.callback_metrics.items()}
    best = trainer.checkpoint_callback
    metrics.update(
        model=spec.name, parameters=parameters, global_step=int(trainer.global_step),
        epochs=int(trainer.current_epoch), train_seconds=round(seconds, 2), interrupted=bool(trainer.interrupted),
        best_checkpoint=str(best.best_model_path) if best is not None and best.best_model_path else None,
        best_score=float(best.best_model_score) if best is not None and best.best_model_score is not None else None,
    )
    metrics["stopped_by"] = _stopped_by(trainer)
    if metrics["stopped_by"] == "max_time":
        logger.warning("training stopped on trainer.max_time (the wall-clock safety cap) after %d steps: "
                       "this checkpoint depends on the machine's speed and load; give a step or epoch "
                       "budget that fits (trainer.max_steps / trainer.max_epochs)", trainer.global_step)
    metrics["validation"] = validation
    metrics["machine"] = machine_record(trainer.strategy.root_device)
    metrics["precision"] = str(trainer.precision)
    if calibration is not None:
        metrics["calibration"] = calibration
    if scores is not None:
        metrics.update({k: v for k, v in scores.items() if k != "slice_errors"})
        errors = scores.get("slice_errors")  # the counts themselves go into best.ckpt
        metrics["slice_errors"] = None if errors is None else {
            "held_out_slices": len(errors["planes"]), "tiles": len(errors["voxel_joint"]),
            "voxels": int(np.sum(errors["voxel_joint"]))}
    if out.is_dir() and trainer.is_global_zero:
        write_json(out / "train_metrics.json", metrics)
    return metrics

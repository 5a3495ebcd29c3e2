"""``electroseg run``: the whole chain on one dataset (or the pristine/cycled study), with a report."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from electroseg.config import plain as _plain
from electroseg.errors import InputError

HELP = "the whole chain on one dataset, with a report (report.html in out)"

logger = logging.getLogger(__name__)


# train.yaml keys that the run sets itself (make_trainer): a train override of them would be lost
_RUN_OWNED = ("data", "model", "trainer", "seed", "cache_dir", "out")


def check_train_overrides(overrides) -> None:
    """Refuse train overrides of keys the run replaces: they would be dropped without a word."""
    for item in _plain(overrides) or []:
        override = str(item).lstrip("~+")
        key = override.partition("=")[0]
        owner = key.split(".")[0]
        if owner in _RUN_OWNED:
            raise InputError(f"train_overrides: {item!r} would be replaced by the run's own {owner}; "
                             f"set {key} on the run command instead (e.g. electroseg run {override})")


def make_trainer(cfg: DictConfig):
    """``train_model(folder, dataset) -> checkpoint`` from configs/train.yaml + the run's choices.

    The train config is composed here, once, before any stage runs, so a bad train override
    fails at once; each call fills in its folder and dataset.
    """
    from electroseg.config import compose_command

    base = compose_command("train", ["out=unset", *_plain(cfg.train_overrides)])
    with open_dict(base):
        base.model = cfg.model
        base.trainer = cfg.trainer
        base.seed = cfg.seed

    def train_model(folder: Path, dataset: dict) -> Path:
        from electroseg.pipeline import best_checkpoint
        from electroseg.training import train

        train_cfg = base.copy()
        with open_dict(train_cfg):
            train_cfg.out = str(folder)
            train_cfg.data = OmegaConf.create(dataset)
            train_cfg.cache_dir = str(folder / "cache")
        OmegaConf.save(train_cfg, folder / "train_config.yaml")
        train(train_cfg)
        return best_checkpoint(folder)

    return train_model


def _options(cfg: DictConfig) -> dict[str, Any]:
    dataset = _plain(cfg.data)
    classical = {**(dataset.get("classical") or {}), **_plain(cfg.segmenter)}
    if cfg.phase_order is not None:
        classical["phase_order"] = list(_plain(cfg.phase_order))
    predict = {k: v for k, v in _plain(cfg.predict).items() if v is not None}
    return dict(preprocess_steps=dataset.get("preprocess") or [], classical=classical,
                train_model=make_trainer(cfg) if cfg.learned and not cfg.checkpoint else None,
                checkpoint=cfg.checkpoint, predict_options=predict,
                train_settings={"model": _plain(cfg.model), "trainer": _plain(cfg.trainer),
                                "train_overrides": _plain(cfg.train_overrides), "seed": cfg.seed},
                analysis_options=_plain(cfg.analysis),
                blocks_per_axis=int(cfg.compare.blocks_per_axis), redo=list(_plain(cfg.redo)))


def _cycling(cfg: DictConfig, options: dict) -> Any:
    from electroseg.pipeline import run_cycling
    from electroseg.synthetic import load_preset

    block = _plain(cfg.cycling)
    dataset = _plain(cfg.data)
    if not dataset.get("synthetic"):
        raise InputError(f"experiment=cycling: data {dataset.get('name')!r} is not synthetic; "
                         "expected a dataset with a 'synthetic' block (e.g. data=nmc_fibsem)")
    if block.get("shape") is not None:
        dataset["synthetic"]["shape"] = list(block["shape"])
    changes = block.get("preset_changes") or {}
    pairs = {"sparse_pairs": True} if block.get("sparse_pairs") else {}
    presets = {name: _plain(OmegaConf.merge(load_preset(str(block[name])), pairs, changes.get(name) or {}))
               for name in ("pristine", "cycled")}
    return run_cycling(cfg.out, dataset=dataset, presets=presets,
                       shared_model=bool(block.get("shared_model", True)),
                       tolerance=float(block.get("tolerance", 0.03)), **options)


def _check_model_fits_images(cfg: DictConfig) -> None:
    """One line before any stage when the run would train a 3-D network on 2-D images."""
    if not cfg.learned or cfg.checkpoint or cfg.model.name != "unet3d" or cfg.get("data") is None:
        return
    dataset = _plain(cfg.data)
    if dataset.get("synthetic") or not dataset.get("root") or not dataset.get("volumes"):
        return
    from electroseg.io import read_volume

    first = Path(dataset["root"]) / str(next(iter(dict(dataset["volumes"][0]["images"]).values())))
    if first.exists() and read_volume(first, lazy=True).ndim_spatial == 2:
        raise InputError(f"data {dataset.get('name')}: {first} is a 2-D image, and model=unet3d needs "
                         "volumes; give model=multichannel2d")


def run(cfg: DictConfig) -> int:
    """Compose the stage options, run the pipeline, print the path of report.html."""
    from electroseg.config import save_composed
    from electroseg.pipeline import run_pipeline

    check_train_overrides(cfg.train_overrides)
    if cfg.get("data") is not None:
        _plain(cfg.data)  # an unset ${data_dir:...} fails here, before out exists
    options = _options(cfg)  # composes the train config: a bad train override fails before out exists
    _check_model_fits_images(cfg)
    if cfg.learned:  # a bad predict.precision (device, overlap, batch size) stops here, not after training
        from electroseg.inference.engine import check_window_options

        predict = options["predict_options"]
        check_window_options(overlap=predict.get("overlap", 0.25), batch_size=predict.get("batch_size"),
                             device=predict.get("device"), precision=predict.get("precision", "auto"))
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    save_composed(cfg)  # the report embeds the composed config
    if cfg.get("cycling"):
        result = _cycling(cfg, options)
    else:
        preset = _plain(cfg.preset) if cfg.get("preset") else None
        result = run_pipeline(cfg.out, dataset=_plain(cfg.data), preset=preset,
                              report=bool(cfg.report), **options)
    for line in result.summary.get("lines", []):
        logger.info("%s", line)
    if result.report is not None:
        print(result.report)
    return 0

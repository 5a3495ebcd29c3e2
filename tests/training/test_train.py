import json
from pathlib import Path

import numpy as np
import pytest
import torch

from electroseg.cli import main
from electroseg.errors import InputError
from electroseg.models import model_from_checkpoint
from electroseg.training import SegmentationModule, train


def test_fast_dev_run_with_composed_config(train_config):
    metrics = train(train_config("+trainer.fast_dev_run=true"))
    assert metrics["global_step"] == 1
    assert 0.0 <= metrics["val/mean_iou"] <= 1.0
    assert set(metrics) >= {"val/iou_pore", "val/iou_cbd", "val/iou_am", "train/loss"}
    # best/early stopping follow val/score: the mean IoU, ties broken by the held-out loss
    loss = min(metrics["val/loss"], 1.0)
    assert metrics["val/score"] == pytest.approx(metrics["val/mean_iou"] - 0.005 * loss, abs=1e-6)


def test_checkpoints_follow_the_contract(train_config, tmp_path):
    metrics = train(train_config("trainer.max_epochs=1"))
    ckpt_dir = tmp_path / "run" / "checkpoints"
    assert metrics["best_checkpoint"] == str(ckpt_dir / "best.ckpt")
    for name in ("best.ckpt", "last.ckpt"):
        checkpoint = torch.load(ckpt_dir / name, map_location="cpu", weights_only=True)
        assert all(k.startswith("net.") for k in checkpoint["state_dict"])
        loaded = model_from_checkpoint(checkpoint, source=name)
        assert loaded.spec.phases == ("pore", "cbd", "am") and loaded.spec.channels == ("bse",)
        # tiny preset voxels are 0.1 x 0.05 x 0.05 um: first downsampling in-plane only
        assert loaded.spec.voxel_size == pytest.approx((0.1, 0.05, 0.05))
        assert loaded.spec.kwargs["strides"][1] == [1, 2, 2]
        assert loaded.network(torch.rand(1, 1, 16, 16, 16)).shape == (1, 3, 16, 16, 16)
    saved = json.loads((tmp_path / "run" / "train_metrics.json").read_text())
    assert saved["global_step"] == metrics["global_step"] == 4
    # each checkpoint says how it was made: versions, dataset, budget, held-out scores
    record = torch.load(ckpt_dir / "best.ckpt", map_location="cpu", weights_only=True)["electroseg_record"]
    assert set(record["versions"]) == {"electroseg", "torch", "lightning", "monai"}
    assert record["versions"]["torch"] == torch.__version__
    assert record["data"]["phases"] == ["pore", "cbd", "am"] and record["data"]["volumes"]
    assert record["global_step"] == 4 and record["seed"] == 0 and record["validation"] == saved["validation"]
    # and the machine whose arithmetic it is: processor, torch's CPU kernels, threads, device
    assert record["machine"] == saved["machine"]
    assert record["machine"]["threads"] == torch.get_num_threads() and record["machine"]["device"] == "cpu"
    assert record["machine"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    # and the precision it trained in, chosen for the machine by trainer.precision=auto
    from electroseg.inference.windows import cpu_has_bf16

    assert record["machine"]["bf16_instructions"] == cpu_has_bf16()
    assert record["precision"] == saved["precision"]


@pytest.mark.slow
def test_killed_mid_epoch_then_resumed_completes(train_config, tmp_path, monkeypatch):
    original = SegmentationModule.training_step

    def killed_at_step_7(self, batch, batch_idx):
        if self.global_step == 7:
            raise RuntimeError("simulated kill")
        return original(self, batch, batch_idx)

    monkeypatch.setattr(SegmentationModule, "training_step", killed_at_step_7)
    overrides = ("trainer.max_epochs=3", "callbacks.checkpoint_every_n_steps=2")
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(train_config(*overrides))
    stored = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=True)
    assert stored["global_step"] == 6  # mid-epoch checkpoint (4 batches per epoch)
    monkeypatch.setattr(SegmentationModule, "training_step", original)
    metrics = train(train_config(*overrides, "ckpt_path=last"))
    assert metrics["epochs"] == 3 and not metrics["interrupted"]
    assert metrics["global_step"] >= 12
    rows = (tmp_path / "run/logs/csv/version_1/metrics.csv").read_text().splitlines()
    assert int(rows[1].split(",")[1]) >= 6  # the rerun continued, it did not start at step 0


def test_resume_from_other_network_is_refused(train_config):
    train(train_config("trainer.max_steps=1", "trainer.max_epochs=1"))
    with pytest.raises(InputError, match="network settings"):
        train(train_config("model.channels=[8,8]", "ckpt_path=last"))


def test_corrupt_checkpoint_gives_one_line_error(train_config, tmp_path, tiny_cache, capsys):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(InputError, match="bad.ckpt: not a readable checkpoint"):
        train(train_config(f"ckpt_path={bad}"))
    status = main(["train", "data=nmc_fibsem", "data.synthetic.preset=tiny", "model=unet3d_tiny",
                   f"cache_dir={tiny_cache}", f"out={tmp_path / 'cli'}", f"ckpt_path={bad}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and "not a readable checkpoint" in err[-1] and "Traceback" not in "".join(err)


def test_without_a_val_split_there_is_no_early_stopping_and_best_is_latest(tmp_path):
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from omegaconf import OmegaConf

    from electroseg.training.train import _callbacks

    cfg = OmegaConf.create({"callbacks": {"checkpoint_every_n_steps": 0, "early_stopping_patience": 5}})
    with_val = _callbacks(cfg, tmp_path, has_val=True)
    assert any(isinstance(c, EarlyStopping) for c in with_val)
    without = _callbacks(cfg, tmp_path, has_val=False)
    assert not any(isinstance(c, EarlyStopping) for c in without)
    best = next(c for c in without if isinstance(c, ModelCheckpoint) and c.filename == "best")
    assert best.monitor is None


def test_without_a_val_split_labelled_slices_are_held_out_and_every_one_is_scored(train_config, tmp_path):
    from omegaconf import open_dict

    cfg = train_config("trainer.max_epochs=2")
    with open_dict(cfg):
        cfg.data.volumes = [v for v in cfg.data.volumes if v.split == "train"]
    metrics = train(cfg)
    saved = json.loads((tmp_path / "run" / "train_metrics.json").read_text())
    # the tiny sample's hand labels sit on three slices: the middle one is held out, never trained on
    assert saved["validation"].startswith("held-out labels: ") and "slice 8" in saved["validation"]
    rows = [(r["slice"], r["held_out"]) for r in saved["labelled_slices"]]
    assert rows == [(4, "no"), (8, "all"), (12, "no")]
    assert all(0 <= r["agreement"] <= 1 and set(r["per_phase"]) <= {"pore", "cbd", "am"}
               for r in saved["labelled_slices"])
    assert saved["held_out"]["voxels"] == saved["labelled_slices"][1]["voxels"]
    assert saved["stopped_by"] in ("max_epochs", "early_stopping")
    # the probabilities' temperature, fitted on those held-out labels, is in best.ckpt
    fitted = saved["temperature"]
    assert fitted["voxels"] == saved["held_out"]["voxels"] and fitted["nll_after"] <= fitted["nll_before"]
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    assert best["electroseg"]["temperature"] == pytest.approx(fitted["temperature"])
    assert "val/mean_iou" in metrics
    # and the metric errors on that held-out slice, which predict turns into uncertainty.segmentation
    from electroseg.analysis.segmentation_error import SliceErrors

    errors = SliceErrors.from_dict(best["electroseg_slice_errors"])
    assert errors.planes == (8,) and errors.labelled_voxels == saved["held_out"]["voxels"]
    assert saved["slice_errors"] == {"held_out_slices": 1, "tiles": errors.n_tiles, "voxels": errors.labelled_voxels}
    assert model_from_checkpoint(best, source="best.ckpt").slice_errors == best["electroseg_slice_errors"]


def test_training_stops_on_steps_and_says_so(train_config):
    cfg = train_config("trainer.max_epochs=50", "trainer.max_steps=3", "trainer.limit_train_batches=4")
    metrics = train(cfg)
    assert metrics["global_step"] == 3 and metrics["stopped_by"] == "max_steps"
    # a budget inside the first epoch still validates once, at its last step: best.ckpt and the scores
    assert "val/mean_iou" in metrics and Path(metrics["best_checkpoint"]).name == "best.ckpt"
    assert (Path(cfg.out) / "checkpoints" / "best.ckpt").is_file()


def test_unet3d_on_a_few_labelled_slices_suggests_the_2d_model(train_config, caplog):
    from electroseg.training.train import _dataset, _volumes, _warn_sparse_slices_3d

    for pseudo, warned in (("true", False), ("false", True)):  # pseudo-labels fill the volume
        cfg = train_config(f"data.pseudo_labels={pseudo}")
        caplog.clear()
        with caplog.at_level("WARNING"):
            _warn_sparse_slices_3d(cfg, _volumes(cfg, _dataset(cfg))[0])
        assert ("model=multichannel2d" in caplog.text and "[4, 8, 12]" in caplog.text) == warned


@pytest.mark.parametrize("model,batch,samples", [("multichannel2d", 8, 512), ("unet3d", 2, 128)])
def test_loader_follows_the_model_configs_batch(model, batch, samples):
    from electroseg.config import compose_command

    cfg = compose_command("train", ["data=nmc_fibsem", f"model={model}", "out=x"])
    assert (cfg.loader.batch_size, cfg.loader.samples_per_epoch) == (batch, samples)
    cfg = compose_command("train", ["data=nmc_fibsem", f"model={model}", "out=x", "loader.batch_size=4"])
    assert cfg.loader.batch_size == 4


def test_training_logs_a_line_per_epoch(train_config, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="electroseg.training.train"):
        train(train_config("trainer.max_epochs=2"))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("train: epoch")]
    assert lines and lines[-1].startswith("train: epoch 2/2, step ")
    assert "train loss" in lines[-1]


def test_temperature_fit_makes_confidence_match_accuracy():
    from electroseg.training.scores import fit_temperature

    # known answer: probabilities right 60 % of the time at confidence 0.99 need softening
    p = np.repeat(np.array([[0.99] * 6 + [0.01] * 4, [0.01] * 6 + [0.99] * 4]), 60, axis=1)
    truth = np.repeat(np.r_[0, 0, 0, 0, 1, 1, 0, 0, 1, 1], 60)
    fit = fit_temperature(p, truth)
    z = np.log(p) / fit["temperature"]
    softened = np.exp(z) / np.exp(z).sum(0)
    assert softened.max(0).mean() == pytest.approx(0.6, abs=0.02)  # confidence now matches accuracy
    assert fit_temperature(p[:, :10], truth[:10]) is None  # too few voxels to fit on


def test_model_auto_picks_the_2d_model_for_separate_labelled_slices(shared_data, tmp_path, caplog):
    # NREL's scribbles sit on slices 0, 33 and 74 only: the 3-D network agreed with 57 % of the
    # held-out slice, the 2.5-D one with 98.7 % (docs/learned.md)
    import logging

    from electroseg.config import compose_command

    cfg = compose_command("train", ["data=nrel_nmc1cal", f"data.root={shared_data / 'nrel_expertsegmentation'}",
                                    f"out={tmp_path / 'run'}", "trainer.max_steps=1", "trainer.enable_progress_bar=false",
                                    "loader.samples_per_epoch=8", "loader.val_patches=2"])
    assert cfg.model.name == "auto"
    with caplog.at_level(logging.INFO, logger="electroseg.training.train"):
        metrics = train(cfg)
    assert metrics["model"] == "multichannel2d"
    assert "model=auto: multichannel2d (labels on 3 separate slices only ([0, 33, 74]))" in caplog.text


def test_model_auto_keeps_the_3d_model_with_dense_pseudo_labels(train_config, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="electroseg.training.train"):
        metrics = train(train_config("model=auto", "trainer.max_steps=1"))
    assert metrics["model"] == "unet3d" and "model=auto: unet3d (labelled volumes)" in caplog.text


def test_training_patch_is_cut_to_fit_the_images():
    from types import SimpleNamespace

    from electroseg.models import ModelSpec
    from electroseg.training.train import fit_patch_to_images

    spec = ModelSpec(name="multichannel2d", phases=("pore", "am"), channels=("xct",),
                     kwargs=dict(in_channels=3, out_channels=2, channels=[4, 8, 16, 32],
                                 strides=[[1, 1], [2, 2], [2, 2], [2, 2]], kernel_sizes=[[3, 3]] * 4),
                     voxel_size=None, patch_size=(128, 128), context_slices=1)

    def volumes(*shapes):
        return [SimpleNamespace(image=np.zeros((1, *shape), np.float32)) for shape in shapes]

    # NREL nmc1cal: 75 x 75 slices; 7/8 of 75 is 65.6, the network halves three times -> 64
    assert fit_patch_to_images(spec, volumes((75, 75, 75))).patch_size == (64, 64)
    assert fit_patch_to_images(spec, volumes((75, 75, 75))).kwargs == spec.kwargs   # same network
    # axis by axis, from the median image: (40, 300) and (90, 100) and (60, 500) -> y 60, x 300
    assert fit_patch_to_images(spec, volumes((1, 40, 300), (1, 90, 100), (1, 60, 500))).patch_size == (48, 128)
    # an image barely larger than the patch leaves it no room to move: 130 -> 113.75 -> 112
    assert fit_patch_to_images(spec, volumes((1, 130, 147))).patch_size == (112, 128)
    # images at least as large as the patch, or smaller than the network's downsampling: unchanged
    assert fit_patch_to_images(spec, volumes((1, 500, 572))) is spec
    assert fit_patch_to_images(spec, volumes((1, 6, 6))) is spec   # 7/8 of 6 is below 8
    assert fit_patch_to_images(spec, []) is spec


def test_held_out_volumes_keep_their_own_slice_errors_beside_the_pooled_ones(train_config, tmp_path):
    """Two held-out specimens: best.ckpt stores the pooled errors and each volume's own
    (``by_volume``); a run picks its own dataset's, and without a match uses the pooled ones."""
    import shutil

    from omegaconf import open_dict

    from electroseg.analysis.segmentation_error import SliceErrors
    from electroseg.pipeline.stages import own_slice_errors

    cfg = train_config("trainer.max_epochs=1")
    with open_dict(cfg):
        val = next(v for v in cfg.data.volumes if v.split == "val")
        copy = tmp_path / "copy"
        copy.mkdir()
        twin = {"split": "val", "images": {}, "hand_labels": None}
        for channel, image in val.images.items():
            twin["images"][channel] = str(shutil.copy(Path(cfg.data.root or ".") / image, copy / "image.tif"))
        twin["hand_labels"] = str(shutil.copy(Path(cfg.data.root or ".") / val.hand_labels, copy / "hand.tif"))
        cfg.data.volumes = [*cfg.data.volumes, twin]
    train(cfg)
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    stored = best["electroseg_slice_errors"]
    by_volume = {name: SliceErrors.from_dict(e) for name, e in stored["by_volume"].items()}
    assert len(by_volume) == 2 and any(name.startswith(str(copy)) for name in by_volume)
    pooled = SliceErrors.from_dict(stored)
    assert pooled.n_tiles == sum(e.n_tiles for e in by_volume.values())
    own_name = next(name for name in by_volume if name.startswith(str(copy)))
    own, source = own_slice_errors(stored, [own_name, "/elsewhere/image.tif"])
    assert own == by_volume[own_name].to_dict() and "1 of its 2 held-out volumes" in source
    for names in ((), ["/elsewhere/image.tif"], list(by_volume)):  # no match, or all of them: pooled
        found, source = own_slice_errors(stored, names)
        assert "by_volume" not in found and found == pooled.to_dict() and source == "the checkpoint's held-out slices"

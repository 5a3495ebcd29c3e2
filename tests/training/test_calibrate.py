"""Volume-fraction calibration: exact offsets on hand-made logits, and end to end through training."""

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from electroseg.errors import InputError
from electroseg.inference import load_checkpoint, predict_volume
from electroseg.models import ModelSpec
from electroseg.training import train
from electroseg.training.calibrate import fit_logit_bias, fractions_of, same_weights
from electroseg.training.dataset_config import parse_dataset_config


def test_two_phase_offset_by_hand():
    # margins l0 - l1 are 3, 1, -1, -3: three voxels in phase 1 needs an offset just above 1
    logits = np.array([[0.0, 0.0, 0.0, 0.0], [-3.0, -1.0, 1.0, 3.0]])
    bias = fit_logit_bias(logits, {1: 0.75})
    assert bias[0] == 0 and 1.0 < bias[1] < 1.0 + 1e-6
    assert fractions_of(logits, bias).tolist() == [0.25, 0.75]
    assert fractions_of(logits, fit_logit_bias(logits, {1: 0.25})).tolist() == [0.75, 0.25]


@pytest.mark.parametrize("targets", [{1: 0.1}, {0: 0.5, 2: 0.15}, {0: 0.2, 1: 0.3, 2: 0.5}])
def test_fractions_reached_on_random_logits(targets):
    logits = np.random.default_rng(0).normal(size=(3, 20000)) * [[1.0], [2.0], [0.5]]
    achieved = fractions_of(logits, fit_logit_bias(logits, targets))
    for k, f in targets.items():
        assert achieved[k] == pytest.approx(f, abs=2e-4)


def test_ranking_is_kept():
    # calibration moves the boundary, it does not reorder voxels: phase 1 voxels stay the most confident
    logits = np.random.default_rng(1).normal(size=(2, 5000))
    bias = fit_logit_bias(logits, {1: 0.3})
    chosen = np.argmax(logits + bias[:, None], 0) == 1
    margin = logits[1] - logits[0]
    assert margin[chosen].min() > margin[~chosen].max()


def _dataset(**extra):
    data = {"phases": ["pore", "cbd", "am"], "channels": ["bse"],
            "volumes": [{"images": {"bse": "a.tif"}, "split": "train"}], **extra}
    return parse_dataset_config(data, root=".", name="my.yaml")


@pytest.mark.parametrize("fractions, message", [
    ({"solid": 0.5}, r"\['solid'\] are not phases"),
    ({"am": 1.2}, "between 0 and 1"),
    ({"pore": 0.3, "cbd": 0.3, "am": 0.3}, "must sum to 1, got 0.9000"),
    ({"pore": 0.6, "am": 0.5}, "leaves nothing"),
    ({"am": "half"}, "expected numbers"),
    ([0.5], "expected a mapping"),
])
def test_bad_volume_fractions_are_refused(fractions, message):
    with pytest.raises(InputError, match=f"my.yaml: volume_fractions: .*{message}"):
        _dataset(volume_fractions=fractions)


def test_training_with_known_fractions_calibrates_the_checkpoints(train_config, tmp_path):
    # instance norm: after one epoch a batch-norm network's running statistics are still far from
    # its batches', so in eval mode it gives many tied logits that no offset can split
    cfg = train_config("trainer.max_epochs=1", "+data.volume_fractions={am: 0.3}", "model.norm=instance")
    metrics = train(cfg)
    saved = json.loads((tmp_path / "run" / "train_metrics.json").read_text())
    assert saved["calibration"] == metrics["calibration"]
    for name in ("best", "last"):
        assert metrics["calibration"][name]["fractions_after"]["am"] == pytest.approx(0.3, abs=1e-3)
    # inference (the streaming engine, not the calibration's MONAI windows) applies the offsets
    loaded = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.ckpt")
    assert loaded.spec.logit_bias is not None
    image = tifffile.imread(Path(cfg.data.root) / "seed0" / "image.tif")
    labels = predict_volume(loaded, image).labels
    assert (labels == 2).mean() == pytest.approx(0.3, abs=0.01)
    # one epoch: best and last hold the same weights, so the offsets are fitted once and shared
    best, last = (tmp_path / "run" / "checkpoints" / f"{n}.ckpt" for n in ("best", "last"))
    assert same_weights(best, last)
    assert metrics["calibration"]["best"] == metrics["calibration"]["last"]
    assert load_checkpoint(last).spec.logit_bias == loaded.spec.logit_bias


def test_same_weights_compares_every_tensor(tmp_path):
    spec = ModelSpec(name="unet3d", phases=("pore", "cbd", "am"), channels=("bse",),
                     kwargs=dict(in_channels=1, out_channels=3, channels=[4, 8], strides=[[1, 1, 1], [2, 2, 2]],
                                 kernel_sizes=[[3, 3, 3]] * 2),
                     voxel_size=(0.05, 0.02, 0.02), patch_size=(8, 16, 16))
    a = {"electroseg": spec.to_dict(), "state_dict": {"net.w": torch.ones(3), "net.b": torch.zeros(2)}}
    torch.save(a, tmp_path / "a.ckpt")
    torch.save({**a, "epoch": 7}, tmp_path / "copy.ckpt")
    changed = {"net.w": torch.ones(3), "net.b": torch.tensor([0.0, 1e-6])}
    torch.save({**a, "state_dict": changed}, tmp_path / "changed.ckpt")
    torch.save({**a, "state_dict": {"net.w": torch.ones(3)}}, tmp_path / "fewer.ckpt")
    assert same_weights(tmp_path / "a.ckpt", tmp_path / "copy.ckpt")
    assert not same_weights(tmp_path / "a.ckpt", tmp_path / "changed.ckpt")
    assert not same_weights(tmp_path / "a.ckpt", tmp_path / "fewer.ckpt")

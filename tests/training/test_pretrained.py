"""The shipped pretrained models: listed, verified, used zero-shot, and fine-tuned on tiny data."""

import json
import shutil

import numpy as np
import pytest
import torch

from electroseg.cli import main
from electroseg.errors import InputError
from electroseg.models import model_from_checkpoint, read_checkpoint
from electroseg.models import pretrained
from electroseg.training import train

SHIPPED = ("electrode-3phase", "electrode-2phase")


def test_the_models_ship_with_cards_and_their_recorded_hashes(capsys):
    models = pretrained.available()
    assert set(SHIPPED) <= set(models)
    total = 0
    for name in SHIPPED:
        path = pretrained.resolve_checkpoint(f"pretrained:{name}")  # checks the sha256
        total += path.stat().st_size
        card = pretrained.card_path(name).read_text()
        assert "## Scores" in card and models[name]["sha256"] in card
        spec = model_from_checkpoint(read_checkpoint(f"pretrained:{name}")).spec
        assert list(spec.phases) == models[name]["phases"] and spec.normalization["method"] == "percentile"
    assert total <= 20e6  # the budget for all weights in the package
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(f"pretrained:{name}" in out for name in SHIPPED)


def test_changed_weights_and_unknown_names_are_refused(tmp_path, monkeypatch):
    for name in ("models.json", "electrode-2phase.ckpt"):
        shutil.copy(pretrained.FOLDER / name, tmp_path / name)
    with open(tmp_path / "electrode-2phase.ckpt", "ab") as handle:
        handle.write(b"tampered")
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path)
    pretrained._verified.cache_clear()
    with pytest.raises(InputError, match="sha256"):
        pretrained.resolve_checkpoint("pretrained:electrode-2phase")
    with pytest.raises(InputError, match="no such pretrained model"):
        pretrained.resolve_checkpoint("pretrained:electrode-9phase")
    assert pretrained.resolve_checkpoint("runs/x/best.ckpt").name == "best.ckpt"


def test_zero_shot_prediction_from_the_command_line(tmp_path, capsys):
    from electroseg.io import read_labels, write_tiff
    from electroseg.synthetic import load_preset, make_sample

    sample = make_sample(load_preset("tiny"), seed=3)
    image = next(iter(sample.images.values()))
    write_tiff(tmp_path / "image.tif", image, voxel_size=sample.voxel_size)
    status = main(["predict", "checkpoint=pretrained:electrode-3phase", f"inputs={tmp_path / 'image.tif'}",
                   f"out={tmp_path / 'out'}", "progress=false"])
    assert status == 0, capsys.readouterr().err
    labels = read_labels(tmp_path / "out" / "image" / "labels.tif").numpy()
    truth = np.asarray(sample.labels)
    assert labels.shape == truth.shape
    # no labels at all: the model must still find the solid (pore against the rest)
    pore, solid = labels == 0, labels != 0
    iou_solid = (solid & (truth != 0)).sum() / (solid | (truth != 0)).sum()
    assert iou_solid > 0.6 and pore.any()


def test_fine_tuning_starts_from_the_pretrained_weights(train_config, tmp_path, caplog):
    """2-phase model into a 3-phase dataset: every weight but the new output head is copied."""
    cfg = train_config("init=pretrained:electrode-2phase", "model=multichannel2d", "model.context_slices=0",
                       "trainer.max_epochs=1", "loader.batch_size=2")
    with caplog.at_level("INFO"):
        train(cfg)
    assert any("weights copied" in r.getMessage() and "new" in r.getMessage() for r in caplog.records)
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    start = read_checkpoint("pretrained:electrode-2phase")
    spec = model_from_checkpoint(best).spec
    assert spec.phases == ("pore", "cbd", "am") and spec.kwargs["out_channels"] == 3
    assert spec.kwargs["channels"] == start["electroseg"]["kwargs"]["channels"]
    assert spec.normalization == start["electroseg"]["normalization"]
    saved = json.loads((tmp_path / "run" / "train_metrics.json").read_text())
    assert saved["global_step"] > 0


def test_init_with_other_detectors_is_refused_before_training():
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from electroseg.training.train import _init_checkpoint

    cfg = OmegaConf.create({"init": "pretrained:electrode-3phase", "normalization": {"method": "dataset"}})
    with pytest.raises(InputError, match="input channels"):
        _init_checkpoint(cfg, SimpleNamespace(channels=("bse", "tld"), phases=("pore", "cbd", "am")))
    assert _init_checkpoint(OmegaConf.create({"init": None}), None) is None


def test_whole_chain_with_a_pretrained_model_and_no_training(tmp_path, capsys):
    """`electroseg run checkpoint=pretrained:NAME`: no train stage, the learned route predicts
    with the shipped file, whose hash the predict stage records."""
    out = tmp_path / "run"
    status = main(["run", f"out={out}", "preset=tiny", "data.synthetic.samples={seed0: 0}",
                   "checkpoint=pretrained:electrode-3phase", "analysis.n_blocks=2", "compare.blocks_per_axis=2"])
    assert status == 0, capsys.readouterr().err
    assert not (out / "train").exists() and (out / "predict" / "labels.tif").is_file()
    record = json.loads((out / "predict" / "predict.json").read_text())
    assert record["checkpoint"].endswith("electrode-3phase.ckpt")
    assert (out / "analysis" / "learned" / "metrics.json").is_file()


def test_a_shipped_model_warns_from_the_low_confidence_share_its_card_records(caplog):
    """models.json's ``low_confidence_warning`` reaches the loaded model; a share at or above it
    is logged as a warning naming the input, and the level is recorded beside the share."""
    from types import SimpleNamespace

    from electroseg.inference import load_checkpoint
    from electroseg.inference.batch import _warn_if_unsure

    for name in SHIPPED:
        level = pretrained.available()[name].get("low_confidence_warning")
        assert load_checkpoint(f"pretrained:{name}").low_confidence_warning == level
    model = SimpleNamespace(low_confidence_warning=0.25)
    with caplog.at_level("WARNING"):
        below, at = {"all": 0.249}, {"all": 0.25}
        _warn_if_unsure(model, "quiet", below)
        _warn_if_unsure(model, "unsure", at)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and warned[0].startswith("unsure: 25 % of the voxels are low-confidence")
    assert below["warning_from"] == at["warning_from"] == 0.25
    unmeasured = {"all": 0.9}  # a checkpoint of one's own: no level, nothing recorded or logged
    _warn_if_unsure(SimpleNamespace(low_confidence_warning=None), "own", unmeasured)
    assert unmeasured == {"all": 0.9} and len([r for r in caplog.records if r.levelname == "WARNING"]) == 1

"""inspect and export: a checkpoint says what it is, and travels as a bioimage.io package (issue 27)."""

import json

import numpy as np
import pytest
import torch

from electroseg.cli import main
from electroseg.inference import load_checkpoint, predict_volume
from electroseg.models import ModelSpec, build_model
from electroseg.models.export import export_bioimageio, inspect_checkpoint

PHASES = ("pore", "cbd", "am")


def _checkpoint(path, *, name="unet3d", context=0, normalization=None, record=None, optimizer=False,
                detectors=("bse",)):
    dims = 3 if name == "unet3d" else 2
    kwargs = dict(in_channels=len(detectors) * (2 * context + 1), out_channels=3, channels=[4, 8],
                  strides=[[1] * dims, [2] * dims], kernel_sizes=[[3] * dims] * 2, norm="batch")
    spec = ModelSpec(name=name, kwargs=kwargs, phases=PHASES, channels=tuple(detectors),
                     voxel_size=(0.05, 0.02, 0.02)[-dims:], patch_size=(8, 16, 16)[-dims:] if dims == 3 else (32, 32),
                     context_slices=context,
                     normalization=normalization or {"method": "percentile", "lower": 1, "upper": 99})
    torch.manual_seed(0)
    net = build_model(spec)
    checkpoint = {"electroseg": spec.to_dict(), "epoch": 3, "global_step": 40,
                  "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}
    if optimizer:
        checkpoint["optimizer_states"] = [{"state": {0: {"exp_avg": torch.zeros(1000)}}}]
    if record:
        checkpoint["electroseg_record"] = record
    torch.save(checkpoint, path)
    return path


RECORD = {"versions": {"electroseg": "0.1.0", "torch": "2.13.0"}, "seed": 0, "global_step": 40,
          "stopped_by": "max_epochs", "validation": "held-out labels: a.tif slice 8",
          "data": {"name": "my_cathode", "volumes": [{"split": "train"}, {"split": "train"}, {"split": "val"}]},
          "held_out": {"mean_iou": 0.81, "iou": {"pore": 0.9, "cbd": 0.6, "am": 0.93}},
          "machine": {"processor": "Some CPU @ 2.8GHz", "cpu_capability": "AVX512", "bf16_instructions": False,
                      "threads": 2, "device": "cpu", "gpu": None}, "precision": "32-true"}


def test_inspect_prints_network_phases_data_scores_and_versions(tmp_path, capsys):
    path = _checkpoint(tmp_path / "m.ckpt", record=RECORD, optimizer=True)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    for text in ("unet3d", "0 = pore, 1 = cbd, 2 = am", "bse", "[0.05, 0.02, 0.02] um", "my_cathode: 2 train, 1 val",
                 "held-out IoU    mean 0.810", "torch 2.13.0", "with optimizer state",
                 "machine         Some CPU @ 2.8GHz, AVX512, no bf16 instructions, 2 threads, cpu; trained in 32-true"):
        assert text in out, text
    assert main(["inspect", str(path), "json=true"]) == 0
    assert json.loads(capsys.readouterr().out)["record"]["data"]["name"] == "my_cathode"


def test_inspect_of_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope.ckpt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.ckpt" in err[0] and "checkpoint not found" in err[0]


def test_export_checkpoint_drops_optimizer_state_and_predicts_alike(tmp_path):
    path = _checkpoint(tmp_path / "m.ckpt", record=RECORD, optimizer=True)
    assert main(["export", f"checkpoint={path}", "format=checkpoint", f"out={tmp_path / 'slim.ckpt'}"]) == 0
    slim = torch.load(tmp_path / "slim.ckpt", map_location="cpu", weights_only=True)
    assert "optimizer_states" not in slim and slim["electroseg_record"] == RECORD
    assert not inspect_checkpoint(tmp_path / "slim.ckpt")["optimizer_state"]
    volume = np.random.default_rng(0).random((12, 20, 20)).astype(np.float32)
    np.testing.assert_array_equal(predict_volume(load_checkpoint(path), volume).labels,
                                  predict_volume(load_checkpoint(tmp_path / "slim.ckpt"), volume).labels)
    # an existing output is refused before anything is written
    assert main(["export", f"checkpoint={path}", "format=checkpoint", f"out={tmp_path / 'slim.ckpt'}"]) == 2


@pytest.mark.parametrize("name,context,normalization,detectors", [
    ("unet3d", 0, None, ("bse",)),
    ("multichannel2d", 1, {"method": "auto", "lower": 0.5, "upper": 99.5, "bounds": [[1000.0, 60000.0]]}, ("bse",)),
    # two detectors at different windows: each 2.5-D channel takes its detector's window
    ("multichannel2d", 1, {"method": "auto", "lower": 0.5, "upper": 99.5,
                           "bounds": [[1000.0, 60000.0], [10.0, 200.0]]}, ("cbs", "tld")),
])
def test_bioimageio_package_validates_and_runs(tmp_path, name, context, normalization, detectors):
    from bioimageio.core import test_model
    from bioimageio.spec import load_description

    path = _checkpoint(tmp_path / "m.ckpt", name=name, context=context, normalization=normalization, record=RECORD,
                       detectors=detectors)
    package = export_bioimageio(path, tmp_path / "pkg", authors=["A. Tester"])
    descr = load_description(package / "rdf.yaml")
    assert descr.validation_summary.status in ("valid-format", "passed"), descr.validation_summary.format()
    axes = [str(a.id) for a in descr.inputs[0].axes]
    assert axes == ["batch", "channel", *"zyx"[-(3 if name == "unet3d" else 2):]]
    space = [a for a in descr.outputs[0].axes if str(a.id) in "zyx"]
    assert [a.scale for a in space] == pytest.approx([0.05, 0.02, 0.02][-len(space):])
    assert [str(c) for c in descr.outputs[0].axes[1].channel_names] == list(PHASES)
    summary = test_model(package / "rdf.yaml")  # bioimageio.core runs the test input through its own pipeline
    assert summary.status == "passed", summary.format()
    # the package's test output is electroseg's own probabilities for the test input
    test_in, test_out = np.load(package / "test_input.npy"), np.load(package / "test_output.npy")
    assert test_out.shape == (1, 3, *test_in.shape[2:]) and np.allclose(test_out.sum(1), 1, atol=1e-5)


def test_export_refuses_a_full_folder_and_an_unknown_format(tmp_path, capsys):
    path = _checkpoint(tmp_path / "m.ckpt")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    assert main(["export", f"checkpoint={path}", f"out={tmp_path / 'full'}"]) == 2
    assert (tmp_path / "full" / "x").read_text() == "keep me"
    assert main(["export", f"checkpoint={path}", "format=onnx", f"out={tmp_path / 'o'}"]) == 2
    err = capsys.readouterr().err
    assert "exists" in err and "format: expected bioimageio or checkpoint" in err

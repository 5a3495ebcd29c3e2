import numpy as np
import pytest
import torch

from electroseg.errors import InputError
from electroseg.models import (
    ModelSpec, build_model, model_from_checkpoint, normalize_intensity, stack_context,
)

KWARGS_3D = dict(in_channels=1, out_channels=3, channels=[4, 8],
                 strides=[[1, 1, 1], [1, 2, 2]], kernel_sizes=[[1, 3, 3], [3, 3, 3]])


def _spec(**changes):
    fields = dict(name="unet3d", kwargs=KWARGS_3D, phases=("pore", "cbd", "am"),
                  channels=("bse",), voxel_size=(0.05, 0.025, 0.025), patch_size=(16, 16, 16))
    fields.update(changes)
    return ModelSpec(**fields)


def test_round_trip_through_plain_dict_and_weights_only_load(tmp_path):
    spec = _spec()
    net = build_model(spec)
    path = tmp_path / "model.ckpt"
    torch.save({"electroseg": spec.to_dict(),
                "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, path)
    loaded = model_from_checkpoint(torch.load(path, weights_only=True), source=str(path))
    assert loaded.spec == spec
    x = torch.rand(1, 1, 16, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded.network(x), net.eval()(x))


def test_unknown_model_name_is_input_error():
    data = _spec().to_dict()
    data["name"] = "os.system"
    with pytest.raises(InputError, match="unknown model name 'os.system'"):
        ModelSpec.from_dict(data)


def test_channel_count_mismatch_is_input_error():
    with pytest.raises(InputError, match="in_channels=1 does not match 2 detector"):
        _spec(channels=("cbs", "tld"))


def test_2_5d_in_channels_is_detectors_times_slices():
    kwargs = dict(in_channels=6, out_channels=3, channels=[4, 8],
                  strides=[[1, 1], [2, 2]], kernel_sizes=[[3, 3], [3, 3]])
    spec = _spec(name="multichannel2d", kwargs=kwargs, channels=("cbs", "tld"),
                 context_slices=1, patch_size=(16, 16))
    assert build_model(spec)(torch.rand(1, 6, 16, 16)).shape == (1, 3, 16, 16)


def test_checkpoint_without_spec_or_with_wrong_weights():
    with pytest.raises(InputError, match="not an electroseg checkpoint"):
        model_from_checkpoint({"state_dict": {}}, source="x.ckpt")
    other = build_model(_spec(kwargs={**KWARGS_3D, "channels": [8, 8]}))
    ckpt = {"electroseg": _spec().to_dict(),
            "state_dict": {f"net.{k}": v for k, v in other.state_dict().items()}}
    with pytest.raises(InputError, match="x.ckpt: weights do not fit"):
        model_from_checkpoint(ckpt, source="x.ckpt")


def test_normalize_percentile_maps_to_unit_interval():
    data = np.arange(1001, dtype=np.uint16)  # percentile p of 0..1000 is 10 p
    out = normalize_intensity(data, {"method": "percentile", "lower": 1, "upper": 99})
    assert out.dtype == np.float32
    assert out[10] == pytest.approx(0.0) and out[990] == pytest.approx(1.0)
    assert out[500] == pytest.approx(0.5) and out.min() == 0 and out.max() == 1
    with pytest.raises(InputError, match="normalization"):
        normalize_intensity(data, {"method": "zscore"})


def test_stack_context_orders_detector_major():
    vol = np.zeros((2, 4, 1, 1), np.float32)
    vol[0, :, 0, 0] = [0, 1, 2, 3]
    vol[1, :, 0, 0] = [10, 11, 12, 13]
    out = stack_context(vol, context_slices=1)
    assert out.shape == (4, 6, 1, 1)
    assert out[0, :, 0, 0].tolist() == [0, 0, 1, 10, 10, 11]
    assert out[3, :, 0, 0].tolist() == [2, 3, 3, 12, 13, 13]


def test_logit_bias_round_trips_and_is_added_before_the_argmax(tmp_path):
    spec = _spec(logit_bias=(0.0, 0.0, 50.0))
    net = build_model(spec)
    checkpoint = {"electroseg": spec.to_dict(), "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}
    torch.save(checkpoint, tmp_path / "m.ckpt")
    loaded = model_from_checkpoint(torch.load(tmp_path / "m.ckpt", weights_only=True), source="m.ckpt")
    assert loaded.spec.logit_bias == (0.0, 0.0, 50.0)
    x = torch.rand(1, 1, 16, 16, 16)
    with torch.no_grad():
        raw, biased = net.eval()(x), loaded.network(x)
    torch.testing.assert_close(biased - raw, torch.tensor([0.0, 0.0, 50.0]).view(1, 3, 1, 1, 1).expand_as(raw))
    assert (biased.argmax(1) == 2).all()


def test_logit_bias_needs_one_value_per_phase():
    with pytest.raises(InputError, match="logit_bias .* one value per phase"):
        _spec(logit_bias=(0.0, 1.0))

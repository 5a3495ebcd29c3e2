"""Resuming: the checkpoint round trip and refusing another model's checkpoint.

Missing, corrupt, foreign and pickle-carrying files are tested once, for the one reader shared
by training and inference (electroseg.models.read_checkpoint), in tests/inference/test_checkpoint.py.
"""

import pytest
import torch

from electroseg.errors import InputError
from electroseg.models import ModelSpec, build_model
from electroseg.training import check_compatible, read_checkpoint

KWARGS = dict(in_channels=1, out_channels=3, channels=[4, 8],
              strides=[[1, 1, 1], [1, 2, 2]], kernel_sizes=[[1, 3, 3], [3, 3, 3]])


def _spec(**changes):
    fields = dict(name="unet3d", kwargs=KWARGS, phases=("pore", "cbd", "am"), channels=("bse",),
                  voxel_size=(0.05, 0.025, 0.025), patch_size=(16, 16, 16))
    return ModelSpec(**{**fields, **changes})


@pytest.fixture
def saved(tmp_path):
    spec = _spec()
    path = tmp_path / "good.ckpt"
    torch.save({"electroseg": spec.to_dict(), "state_dict": {
        f"net.{k}": v for k, v in build_model(spec).state_dict().items()}}, path)
    return path


def test_read_checkpoint_round_trip(saved):
    assert ModelSpec.from_dict(read_checkpoint(saved)["electroseg"]) == _spec()


def test_other_phase_set_or_channel_count_refused():
    two_phase = _spec(phases=("pore", "am"), kwargs={**KWARGS, "out_channels": 2})
    with pytest.raises(InputError, match=r"trained with phases \('pore', 'cbd', 'am'\)"):
        check_compatible(_spec(), two_phase, source="x.ckpt")
    two_detectors = _spec(channels=("cbs", "tld"), kwargs={**KWARGS, "in_channels": 2})
    with pytest.raises(InputError, match="detector channels"):
        check_compatible(_spec(), two_detectors, source="x.ckpt")
    check_compatible(_spec(), _spec(), source="x.ckpt")

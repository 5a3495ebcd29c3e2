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


def test_truncated_missing_and_foreign_files(saved, tmp_path):
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    with pytest.raises(InputError, match="truncated.ckpt: not a readable checkpoint"):
        read_checkpoint(truncated)
    with pytest.raises(InputError, match="missing.ckpt: no such checkpoint file"):
        read_checkpoint(tmp_path / "missing.ckpt")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(InputError, match="foreign.ckpt: not an electroseg checkpoint"):
        read_checkpoint(foreign)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "pickle.ckpt"
    torch.save({"electroseg": _spec().to_dict(), "payload": object()}, path)
    with pytest.raises(InputError, match="not a readable checkpoint"):
        read_checkpoint(path)  # weights_only=True refuses arbitrary objects


def test_other_phase_set_or_channel_count_refused():
    two_phase = _spec(phases=("pore", "am"), kwargs={**KWARGS, "out_channels": 2})
    with pytest.raises(InputError, match=r"trained with phases \('pore', 'cbd', 'am'\)"):
        check_compatible(_spec(), two_phase, source="x.ckpt")
    two_detectors = _spec(channels=("cbs", "tld"), kwargs={**KWARGS, "in_channels": 2})
    with pytest.raises(InputError, match="detector channels"):
        check_compatible(_spec(), two_detectors, source="x.ckpt")
    check_compatible(_spec(), _spec(), source="x.ckpt")

"""Loading checkpoints: the round trip, and clear errors for files that are not checkpoints."""

import numpy as np
import pytest
import torch

from electroseg.errors import InputError
from electroseg.inference import load_checkpoint


def test_round_trip_rebuilds_network_and_spec(tmp_path, kit):
    spec = kit.tiny_spec()
    path = kit.save_checkpoint(tmp_path / "m.ckpt", spec, seed=3)
    loaded = load_checkpoint(path)
    assert loaded.spec == spec and not loaded.network.training
    torch.manual_seed(3)
    from electroseg.models import build_model

    reference = build_model(spec).eval()
    x = torch.rand(1, 1, 8, 16, 16)
    with torch.inference_mode():
        np.testing.assert_allclose(loaded.network(x).numpy(), reference(x).numpy(), atol=1e-6)


def test_missing_corrupt_and_foreign_files_are_input_errors(tmp_path, kit):
    with pytest.raises(InputError, match="nope.ckpt: checkpoint not found"):
        load_checkpoint(tmp_path / "nope.ckpt")
    good = kit.save_checkpoint(tmp_path / "m.ckpt", kit.tiny_spec())
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputError, match="truncated.ckpt: not a readable checkpoint"):
        load_checkpoint(truncated)
    text = tmp_path / "notes.ckpt"
    text.write_text("hello")
    with pytest.raises(InputError, match="notes.ckpt: not a readable checkpoint"):
        load_checkpoint(text)
    plain = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {}}, plain)
    with pytest.raises(InputError, match="plain.ckpt: not an electroseg checkpoint"):
        load_checkpoint(plain)


def test_pickled_objects_are_refused_without_running_them(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"electroseg": object()}, path)  # needs unpickling an arbitrary class
    with pytest.raises(InputError, match="evil.ckpt: not a readable checkpoint"):
        load_checkpoint(path)

"""Tortuosity through TauFactor: straight channels (tau = 1) and the published TauFactor value."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from electroseg.analysis.tortuosity import tortuosity_factor
from electroseg.errors import InputError

taufactor = pytest.importorskip("taufactor", reason="optional extra electroseg[tortuosity]")


def _channel_volume():
    labels = np.full((20, 10, 10), 2, dtype=np.uint8)  # AM everywhere ...
    labels[:, 3:6, 3:6] = 0  # ... but a straight 3x3 pore channel along axis 0
    return labels


def test_straight_channel_has_tau_one():
    r = tortuosity_factor(_channel_volume(), phase="pore", axis=0, device="cpu")
    assert r.tau == pytest.approx(1.0, abs=1e-3)
    assert r.volume_fraction == pytest.approx(9 / 100)
    assert r.relative_diffusivity == pytest.approx(0.09, abs=1e-4)
    assert r.converged and r.axis == 0 and r.phase == "pore"


def test_straight_channel_along_another_axis_and_in_2d():
    labels = np.moveaxis(_channel_volume(), 0, 1)  # channel now along axis 1
    assert tortuosity_factor(labels, axis=1, device="cpu").tau == pytest.approx(1.0, abs=1e-3)
    plane = np.full((12, 16), 1, dtype=np.uint8)
    plane[:, 5:9] = 0
    r = tortuosity_factor(plane, axis=0, device="cpu")
    assert r.tau == pytest.approx(1.0, abs=1e-3) and r.volume_fraction == 0.25


def test_anisotropic_voxels_keep_a_straight_channel_at_one():
    # TauFactor 1.2's AnisotropicSolver drops the flux when (d_axis/d_other)^2 > 1.5 (tau = inf);
    # electroseg's corrected solver must still read a straight channel as tau = 1.
    r = tortuosity_factor(_channel_volume(), axis=0, voxel_size=(0.05, 0.02, 0.02), device="cpu")
    assert r.tau == pytest.approx(1.0, abs=1e-3)


def test_anisotropic_zigzag_matches_the_resampled_isotropic_volume():
    labels = np.full((16, 12, 4), 2, dtype=np.uint8)
    labels[:9, 2:5] = 0
    labels[7:, 7:10] = 0
    labels[7:9, 2:10] = 0  # a pore channel that steps sideways half-way down axis 0
    isotropic = tortuosity_factor(labels, axis=0, device="cpu").tau
    stretched = tortuosity_factor(labels, axis=0, voxel_size=(1.0, 2.0, 1.0), device="cpu").tau
    resampled = tortuosity_factor(np.repeat(labels, 2, axis=1), axis=0, device="cpu").tau
    assert stretched > isotropic  # the sideways step is twice as long in µm
    assert stretched == pytest.approx(resampled, rel=0.05)  # same geometry, finer grid


def test_phase_that_does_not_span_is_infinite_without_solving():
    labels = _channel_volume()
    labels[10] = 2  # block the channel
    r = tortuosity_factor(labels, axis=0, device="cpu")
    assert math.isinf(r.tau) and r.relative_diffusivity == 0.0 and r.iterations == 0
    assert r.to_dict()["tau"] is None


def test_bad_input():
    with pytest.raises(InputError, match="no voxel"):
        tortuosity_factor(np.full((4, 4, 4), 2, dtype=np.uint8), phase="pore")
    with pytest.raises(InputError, match="phase"):
        tortuosity_factor(_channel_volume(), phase="electrolyte")
    with pytest.raises(InputError, match="device"):
        tortuosity_factor(_channel_volume(), device="tpu")


def test_missing_taufactor_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "taufactor", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'electroseg\[tortuosity\]'"):
        tortuosity_factor(_channel_volume())


def test_module_import_does_not_import_torch():
    code = ("import sys, electroseg.analysis.tortuosity, electroseg.analysis.uncertainty, "
            "electroseg.analysis.sample_comparison, electroseg.analysis.channel_stats; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_published_pore_tortuosity(shared_data):
    # 256³ voxels: ~6 min on 2 idle CPU cores (12 min under load), seconds on a GPU.
    import torch

    if not (torch.cuda.is_available() or os.environ.get("ELECTROSEG_RUN_SLOW_TAU") == "1"):
        pytest.skip("256^3 TauFactor solve takes minutes on CPU: needs a GPU or "
                    "ELECTROSEG_RUN_SLOW_TAU=1")
    import tifffile

    raw = tifffile.imread(shared_data / "taufactor" / "electrode.tiff")
    labels = np.select([raw == 0, raw == 170, raw == 85], [0, 1, 2], 255).astype(np.uint8)
    r = tortuosity_factor(labels, phase="pore", axis=0)
    assert r.volume_fraction == pytest.approx(0.449917, abs=1e-6)  # published pore fraction
    assert r.tau == pytest.approx(2.0776, abs=5e-3)  # TauFactor documentation, first axis


def test_analyze_command_writes_the_tortuosity_it_was_asked_for(tmp_path, capsys):
    pytest.importorskip("taufactor")
    import json

    from electroseg.analysis.tortuosity import tortuosity_factor
    from electroseg.cli import main
    from electroseg.io import write_tiff

    rng = np.random.default_rng(0)
    labels = (rng.random((12, 16, 16)) < 0.6).astype(np.uint8) * 2  # pore 0, am 2
    write_tiff(tmp_path / "l.tif", labels, voxel_size=(1.0, 1.0, 1.0))
    assert main(["analyze", f"input={tmp_path / 'l.tif'}", f"out={tmp_path / 'a'}", "tortuosity=[pore]",
                 "uncertainty=false", "figures=false"]) == 0
    written = json.loads((tmp_path / "a" / "metrics.json").read_text())["tortuosity"]["pore"]
    direct = tortuosity_factor(labels, phase="pore", axis=1, voxel_size=(1.0, 1.0, 1.0))
    assert written["axis"] == 1 and written["tau"] == pytest.approx(direct.tau, rel=1e-6)
    assert main(["analyze", f"input={tmp_path / 'l.tif'}", f"out={tmp_path / 'b'}", "tortuosity=[void]"]) == 2
    assert "tortuosity: expected phases among" in capsys.readouterr().err


def test_analyze_tortuosity_true_solves_every_phase_along_every_axis_after_an_estimate(tmp_path, caplog):
    pytest.importorskip("taufactor")
    import json
    import logging

    from electroseg.analysis.tortuosity import tortuosity_factor
    from electroseg.cli import main
    from electroseg.io import write_tiff

    rng = np.random.default_rng(1)
    labels = rng.choice(np.array([0, 1, 2], np.uint8), size=(10, 12, 12), p=[0.5, 0.1, 0.4])
    write_tiff(tmp_path / "l.tif", labels, voxel_size=(1.0, 1.0, 1.0))
    with caplog.at_level(logging.INFO):
        assert main(["analyze", f"input={tmp_path / 'l.tif'}", f"out={tmp_path / 'a'}", "tortuosity=true",
                     "tortuosity_axes=all", "uncertainty=false", "figures=false"]) == 0
    estimate = [r.getMessage() for r in caplog.records if "tortuosity: 9 solve(s)" in r.getMessage()]
    assert estimate and ("estimated about" in estimate[0] or "on the GPU" in estimate[0])
    written = json.loads((tmp_path / "a" / "metrics.json").read_text())["tortuosity"]
    assert set(written) == {"pore", "cbd", "am"}
    for phase in written:
        assert set(written[phase]["by_axis"]) == {"0", "1", "2"} and written[phase]["axis"] == 1
    direct = tortuosity_factor(labels, phase="pore", axis=2, voxel_size=(1.0, 1.0, 1.0))
    assert written["pore"]["by_axis"]["2"]["tau"] == pytest.approx(direct.tau, rel=1e-6)

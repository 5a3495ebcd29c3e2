"""The front door: ``import electroseg as es`` is fast, reaches every subpackage, and analysis stays torch-free."""

import subprocess
import sys

import numpy as np
import pytest


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_import_is_fast_and_loads_no_subpackage():
    out = _run("import time, sys; t = time.perf_counter(); import electroseg as es; "
               "print(time.perf_counter() - t); print(sorted(m for m in sys.modules if m.startswith('electroseg.')))")
    seconds, loaded = out.splitlines()
    assert float(seconds) < 0.5 and loaded == "[]"


def test_subpackages_are_reached_lazily_and_analysis_never_imports_torch():
    out = _run("import sys, electroseg as es; es.analysis.analyze_labels; es.io.read_volume; "
               "es.classical.segment_volume; print('torch' in sys.modules)")
    assert out.strip() == "False"
    import electroseg as es

    assert es.inference.Predictor is not None and "analysis" in dir(es)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        es.nope  # noqa: B018


def test_predictor_predicts_as_the_functions_do(tmp_path):
    import electroseg as es
    from electroseg.models import ModelSpec, build_model
    import torch

    kwargs = dict(in_channels=1, out_channels=3, channels=[4, 8], strides=[[1, 1, 1], [2, 2, 2]],
                  kernel_sizes=[[3, 3, 3]] * 2, norm="batch")
    spec = ModelSpec(name="unet3d", kwargs=kwargs, phases=("pore", "cbd", "am"), channels=("bse",),
                     voxel_size=(0.05, 0.02, 0.02), patch_size=(8, 16, 16),
                     normalization={"method": "percentile", "lower": 1, "upper": 99})
    torch.manual_seed(0)
    net = build_model(spec)
    torch.save({"electroseg": spec.to_dict(), "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}},
               tmp_path / "m.ckpt")
    volume = np.random.default_rng(0).random((12, 20, 20)).astype(np.float32)
    predictor = es.inference.Predictor(tmp_path / "m.ckpt", overlap=0.5)
    expected = es.inference.predict_volume(es.inference.load_checkpoint(tmp_path / "m.ckpt"), volume,
                                           overlap=0.5).labels
    np.testing.assert_array_equal(predictor.predict(volume).labels, expected)
    es.io.write_tiff(tmp_path / "scan.tif", volume, voxel_size=(0.05, 0.02, 0.02))
    predictor.predict_to(tmp_path / "scan.tif", tmp_path / "labels.zarr", slab_size=5)
    np.testing.assert_array_equal(es.io.read_volume(tmp_path / "labels.zarr").numpy(), expected)
    result = predictor.predict_many([tmp_path / "scan.tif"], tmp_path / "out")
    np.testing.assert_array_equal(es.io.read_volume(tmp_path / "out" / "scan" / "labels.tif").numpy(), expected)
    assert predictor.phases == ("pore", "cbd", "am") and "unet3d" in repr(predictor)
    assert result.failed == 0 and [r.status for r in result.results] == ["ok"]
    from electroseg.errors import InputError

    with pytest.raises(InputError, match="precision: expected one of"):  # at once, not at .predict
        es.inference.Predictor(tmp_path / "m.ckpt", precision="fp8")

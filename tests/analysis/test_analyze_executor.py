"""``electroseg analyze executor=dask`` gives the same metrics.json as the in-memory path."""

from __future__ import annotations

import json

import numpy as np
from scipy import ndimage as ndi

from electroseg.cli import main
from electroseg.io import write_zarr


def _metrics(folder):
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics.pop("source", None)
    return metrics


def test_dask_executor_equals_local(tmp_path):
    rng = np.random.default_rng(1)
    field = ndi.gaussian_filter(rng.random((16, 40, 32)), 2)
    labels = np.digitize(field, np.quantile(field, [0.45, 0.75])).astype(np.uint8)
    path = write_zarr(tmp_path / "l.zarr", labels, voxel_size=(0.05, 0.025, 0.025), chunks=(4, 40, 32))
    # block-wise analysis counts connected clusters (split=none); the particle split is in memory
    common = [f"input={path}", "figures=false", "n_blocks=2", "split=none"]
    assert main(["analyze", *common, f"out={tmp_path / 'local'}"]) == 0
    assert main(["analyze", *common, f"out={tmp_path / 'dask'}", "executor=dask",
                 "dask.processes=false", "dask.n_workers=1"]) == 0
    local, dask = _metrics(tmp_path / "local"), _metrics(tmp_path / "dask")
    assert local["particles"]["count"] > 1
    assert dask == local


def test_unknown_executor_is_one_line_error(tmp_path, capsys):
    path = write_zarr(tmp_path / "l.zarr", np.zeros((2, 4, 4), np.uint8), voxel_size=(1, 1, 1))
    assert main(["analyze", f"input={path}", f"out={tmp_path / 'o'}", "executor=spark"]) == 2
    assert "executor: expected local or dask, got 'spark'" in capsys.readouterr().err


def test_dask_executor_with_the_particle_split_says_it_runs_in_memory(tmp_path, capsys):
    path = write_zarr(tmp_path / "l.zarr", np.zeros((4, 8, 8), np.uint8), voxel_size=(1, 1, 1))
    assert main(["analyze", f"input={path}", f"out={tmp_path / 'o'}", "executor=dask"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the particle split runs in memory only" in err[0]
    assert "split=none" in err[0] and "Traceback" not in err[0]


def test_compressed_tiff_is_sent_to_dask_worker_processes(tmp_path):
    # tifffile's Zarr store over a compressed TIFF holds an open file and its lock, which do not
    # pickle: worker processes failed with "cannot pickle '_thread.RLock' object"
    import pickle

    import tifffile

    from electroseg.io import read_volume

    rng = np.random.default_rng(2)
    field = ndi.gaussian_filter(rng.random((12, 32, 32)), 2)
    labels = np.digitize(field, np.quantile(field, [0.45, 0.75])).astype(np.uint8)
    path = tmp_path / "l.tif"
    tifffile.imwrite(path, labels, compression="zlib")
    lazy = read_volume(path, lazy=True).data
    assert not isinstance(lazy, np.ndarray)  # the chunk-by-chunk route, not a memory map
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(lazy))[2:5], labels[2:5])
    common = [f"input={path}", "figures=false", "n_blocks=2", "split=none", "voxel_size=[0.05,0.025,0.025]"]
    assert main(["analyze", *common, f"out={tmp_path / 'local'}"]) == 0
    assert main(["analyze", *common, f"out={tmp_path / 'dask'}", "executor=dask", "dask.n_workers=1"]) == 0
    assert _metrics(tmp_path / "dask") == _metrics(tmp_path / "local")

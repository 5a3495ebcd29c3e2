"""``predict executor=dask``: Z slabs on a Dask cluster give the labels of the local path."""

import numpy as np
import pytest
import zarr

from electroseg.cli import main
from electroseg.inference import load_checkpoint, predict_volume
from electroseg.io import read_volume, write_zarr

VOXEL = (0.05, 0.02, 0.02)


@pytest.mark.parametrize("fractions", [None, {"am": 0.3}])
def test_dask_executor_equals_local_for_a_2_5d_model(tmp_path, kit, fractions):
    spec = kit.tiny_spec(name="multichannel2d", context_slices=1, patch_size=(16, 16))
    ckpt = kit.save_checkpoint(tmp_path / "m.ckpt", spec)
    scan = write_zarr(tmp_path / "scan.zarr", kit.grains((20, 24, 18), seed=3), voxel_size=VOXEL,
                      chunks=(5, 24, 18))
    extra = [] if fractions is None else ["volume_fractions={am: 0.3}"]
    status = main(["predict", f"checkpoint={ckpt}", f"inputs=[{scan}]", f"out={tmp_path / 'out'}",
                   "executor=dask", "slab_size=6", "dask.processes=false", "dask.n_workers=1",
                   "precision=fp32", "progress=false", *extra])
    assert status == 0
    got = zarr.open_array(str(tmp_path / "out" / "scan" / "labels.zarr") + "/0", mode="r")[...]
    expected = predict_volume(load_checkpoint(ckpt), read_volume(scan), precision="fp32",
                              volume_fractions=fractions).labels
    assert got.shape == (20, 24, 18)
    np.testing.assert_array_equal(got, expected)
    if fractions:  # the offsets were fitted on the whole volume, once, not per slab
        assert (got == 2).mean() == pytest.approx(0.3, abs=1e-3)


def test_probabilities_are_refused_with_dask(tmp_path, kit, capsys):
    ckpt = kit.save_checkpoint(tmp_path / "m.ckpt", kit.tiny_spec(patch_size=(8, 16, 16)))
    scan = write_zarr(tmp_path / "scan.zarr", kit.grains((8, 16, 16)), voxel_size=VOXEL)
    status = main(["predict", f"checkpoint={ckpt}", f"inputs=[{scan}]", f"out={tmp_path / 'out'}",
                   "executor=dask", "dask.processes=false", "dask.n_workers=1", "save_probabilities=true",
                   "progress=false"])
    assert status == 1
    assert not (tmp_path / "out" / "scan" / "prediction.json").exists()

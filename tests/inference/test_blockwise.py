"""Block-wise (Dask, Z slabs with halos) prediction against the in-memory prediction."""

import dask
import numpy as np
import pytest
import zarr

from electroseg.parallel import dask_client
from electroseg.errors import InputError
from electroseg.inference import load_checkpoint, predict_volume
from electroseg.inference.blockwise import predict_blockwise
from electroseg.io import read_volume


@pytest.fixture(autouse=True)
def _synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def _zarr(path, array, chunks):
    store = zarr.open_array(str(path), mode="w", shape=array.shape, dtype=array.dtype, chunks=chunks)
    store[...] = array
    store.attrs["voxel_size_um"] = [0.05, 0.02, 0.02]
    return path


def test_pointwise_network_gives_the_exact_argmax(tmp_path, kit):
    rng = np.random.default_rng(0)
    volume = rng.uniform(-2, 3, size=(13, 20, 18)).astype(np.float32)
    path = _zarr(tmp_path / "in.zarr", volume, (5, 20, 18))
    result = predict_blockwise(kit.PlusOne(), path, tmp_path / "out.zarr", slab_size=4, halo=2,
                               patch_size=(4, 8, 8), precision="fp32")
    labels = zarr.open_array(str(result.labels_path) + "/0", mode="r")
    expected = kit.plus_one_logits(volume).argmax(0)  # x < -0.5: 2, x < 1: 0, else 1
    assert set(np.unique(expected)) == {0, 1, 2}
    np.testing.assert_array_equal(labels[...], expected)
    assert labels.chunks[0] == 4
    assert read_volume(result.labels_path).voxel_size == pytest.approx((0.05, 0.02, 0.02))  # OME-Zarr scale


def test_2_5d_model_equals_in_memory_exactly(tmp_path, kit):
    spec = kit.tiny_spec(name="multichannel2d", channels=("cbs", "tld"), context_slices=1,
                         patch_size=(16, 16))
    checkpoint = kit.save_checkpoint(tmp_path / "m2.ckpt", spec)
    volume = np.stack([kit.grains((11, 20, 24), seed=3), kit.grains((11, 20, 24), seed=4)])
    path = _zarr(tmp_path / "in.zarr", volume, (1, 4, 20, 24))
    expected = predict_volume(load_checkpoint(checkpoint), volume, batch_size=5,
                              precision="fp32").labels
    # a (C, Z, Y, X) store is passed opened: read_volume reads channels from OME-Zarr only
    result = predict_blockwise(checkpoint, zarr.open_array(str(path), mode="r"),
                               tmp_path / "out.zarr", slab_size=3, batch_size=5, precision="fp32")
    assert len(np.unique(expected)) > 1
    np.testing.assert_array_equal(zarr.open_array(str(result.labels_path) + "/0")[...], expected)


def test_unet3d_on_a_thread_cluster_agrees_with_in_memory(tmp_path, kit):
    checkpoint = kit.save_checkpoint(tmp_path / "m.ckpt", kit.tiny_spec(patch_size=(8, 16, 16)))
    volume = kit.grains((24, 30, 26), seed=1)
    path = _zarr(tmp_path / "in.zarr", volume, (8, 30, 26))
    expected = predict_volume(load_checkpoint(checkpoint), volume, overlap=0.5,
                              precision="fp32").labels
    # threads share the test process, whose memory (torch, numba) a limit would count and pause on
    with dask_client(n_workers=2, processes=False, memory_limit=0) as client:
        result = predict_blockwise(checkpoint, path, tmp_path / "out.zarr", slab_size=8,
                                   overlap=0.5, precision="fp32", torch_threads=1,
                                   client=client)
    labels = zarr.open_array(str(result.labels_path) + "/0")[...]
    assert labels.shape == volume.shape and result.shape == volume.shape
    # Interior slabs are exact up to the window grid: agreement, not identity, for unet3d.
    assert np.mean(labels == expected) > 0.97
    np.testing.assert_array_equal(labels[:8], expected[:8])


def test_bad_options_are_input_errors(tmp_path, kit):
    spec = kit.tiny_spec(name="multichannel2d", channels=("bse",), context_slices=2,
                         patch_size=(16, 16))
    checkpoint = kit.save_checkpoint(tmp_path / "m.ckpt", spec)
    volume = kit.grains((6, 16, 16))
    with pytest.raises(InputError, match="expected halo >= 2, got 1"):
        predict_blockwise(checkpoint, volume, tmp_path / "o.zarr", halo=1)
    with pytest.raises(InputError, match="block-wise prediction is for \\(Z, Y, X\\) volumes"):
        predict_blockwise(checkpoint, volume[0], tmp_path / "o.zarr")
    with pytest.raises(InputError, match="slab_size: expected a positive integer, got 0"):
        predict_blockwise(checkpoint, volume, tmp_path / "o.zarr", slab_size=0)
    assert not (tmp_path / "o.zarr").exists()


def test_checkpoint_with_preprocess_steps_is_refused(tmp_path, kit):
    import dataclasses

    spec = kit.tiny_spec(name="multichannel2d", channels=("bse",), patch_size=(16, 16))
    spec = dataclasses.replace(spec, preprocess=({"step": "denoise"},))
    loaded = load_checkpoint(kit.save_checkpoint(tmp_path / "m.ckpt", spec))
    with pytest.raises(InputError, match="preprocess steps .* need the whole volume"):
        predict_blockwise(loaded, kit.grains((4, 16, 16)), tmp_path / "o.zarr")
    assert not (tmp_path / "o.zarr").exists()


@pytest.mark.slow
def test_two_worker_processes_load_the_checkpoint_themselves(tmp_path, kit):
    spec = kit.tiny_spec(name="multichannel2d", channels=("bse",), context_slices=1,
                         patch_size=(16, 16))
    checkpoint = kit.save_checkpoint(tmp_path / "m.ckpt", spec)
    volume = kit.grains((10, 20, 20), seed=7)
    path = _zarr(tmp_path / "in.zarr", volume, (5, 20, 20))
    expected = predict_volume(load_checkpoint(checkpoint), volume, precision="fp32").labels
    with dask_client(n_workers=2, memory_limit="2GB") as client:
        result = predict_blockwise(checkpoint, path, tmp_path / "out.zarr", slab_size=5,
                                   precision="fp32", torch_threads=1, client=client)
    np.testing.assert_array_equal(zarr.open_array(str(result.labels_path) + "/0")[...], expected)

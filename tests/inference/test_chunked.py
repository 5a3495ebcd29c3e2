"""Chunked (lazy input, Zarr output) prediction gives exactly the in-memory labels."""

import numpy as np
import pytest
import zarr

from electroseg.errors import InputError
from electroseg.inference import load_checkpoint, predict_chunked, predict_volume
from electroseg.io import read_volume, write_tiff
from electroseg.io.ngff import ngff_phases


@pytest.fixture()
def unet(tmp_path, kit):
    return load_checkpoint(kit.save_checkpoint(tmp_path / "m.ckpt", kit.tiny_spec(patch_size=(8, 16, 16))))


@pytest.mark.parametrize("slab_size, precision", [(5, "fp32"), (64, "bf16")])
def test_chunked_equals_in_memory_from_a_memory_mapped_tiff(tmp_path, kit, unet, slab_size, precision):
    volume = kit.grains((21, 30, 26), seed=1)
    write_tiff(tmp_path / "scan.tif", volume, voxel_size=(0.05, 0.02, 0.02))
    lazy = read_volume(tmp_path / "scan.tif", lazy=True)
    assert isinstance(lazy.data, np.memmap)
    options = dict(overlap=0.5, batch_size=3, precision=precision)
    in_memory = predict_volume(unet, volume, probabilities="uint8", **options)
    result = predict_chunked(unet, tmp_path / "scan.tif", tmp_path / "labels.zarr", slab_size=slab_size,
                             probabilities_path=tmp_path / "p.zarr", probabilities="uint8", **options)
    labels = zarr.open_array(str(result.labels_path) + "/0", mode="r")
    assert labels.chunks[0] == min(slab_size, 21)
    np.testing.assert_array_equal(labels[...], in_memory.labels)
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "p.zarr") + "/0")[...], in_memory.probabilities)
    assert read_volume(result.labels_path).voxel_size == pytest.approx((0.05, 0.02, 0.02))  # OME-Zarr scale
    assert ngff_phases(result.labels_path) == tuple(unet.spec.phases)
    probabilities = read_volume(tmp_path / "p.zarr", allow_channels=True)
    assert probabilities.channels == tuple(unet.spec.phases) and probabilities.voxel_size == pytest.approx((0.05, 0.02, 0.02))
    assert len(np.unique(in_memory.labels)) > 1  # a random network still gives a non-trivial map


def test_chunked_to_bigtiff_equals_in_memory_and_keeps_the_voxel_size(tmp_path, kit, unet):
    import tifffile

    volume = kit.grains((13, 22, 19), seed=3)
    expected = predict_volume(unet, volume, precision="fp32").labels
    result = predict_chunked(unet, volume, tmp_path / "labels.tif", slab_size=4, precision="fp32",
                             voxel_size=(0.05, 0.02, 0.02))
    with tifffile.TiffFile(result.labels_path) as tif:
        assert tif.is_bigtiff and tif.is_ome and tif.pages[0].compression == 1  # uncompressed
    back = read_volume(result.labels_path)
    np.testing.assert_array_equal(back.numpy(), expected)
    assert back.voxel_size == pytest.approx((0.05, 0.02, 0.02))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left
    with pytest.raises(InputError):
        predict_chunked(unet, volume[0], tmp_path / "bad.tif")
    assert not (tmp_path / "bad.tif").exists()


def test_chunked_reads_a_compressed_tiff_lazily(tmp_path, kit, unet):
    import tifffile

    volume = kit.grains((12, 20, 18), seed=5)
    tifffile.imwrite(tmp_path / "packed.tif", volume, compression="zlib")
    assert not isinstance(read_volume(tmp_path / "packed.tif", lazy=True).data, np.ndarray)  # chunk by chunk
    result = predict_chunked(unet, tmp_path / "packed.tif", tmp_path / "out.zarr", slab_size=4, precision="fp32")
    expected = predict_volume(unet, volume, precision="fp32").labels
    np.testing.assert_array_equal(zarr.open_array(str(result.labels_path) + "/0")[...], expected)


def test_chunked_reads_zarr_and_refuses_2d(tmp_path, kit, unet):
    volume = kit.grains((10, 17, 33), seed=2)
    store = zarr.open_array(str(tmp_path / "in.zarr"), mode="w", shape=volume.shape, dtype=volume.dtype,
                            chunks=(3, 17, 33))
    store[...] = volume
    result = predict_chunked(unet, store, tmp_path / "out.zarr", slab_size=4, precision="fp32")
    expected = predict_volume(unet, volume, precision="fp32").labels
    np.testing.assert_array_equal(zarr.open_array(str(result.labels_path) + "/0")[...], expected)
    with pytest.raises(InputError, match="unet3d model needs a \\(Z, Y, X\\) volume"):
        predict_chunked(unet, volume[0], tmp_path / "x.zarr")
    assert not (tmp_path / "x.zarr").exists()  # failed run leaves no output


def test_2_5d_model_chunked_equals_in_memory(tmp_path, kit):
    spec = kit.tiny_spec(name="multichannel2d", channels=("cbs", "tld"), context_slices=1, patch_size=(16, 16))
    loaded = load_checkpoint(kit.save_checkpoint(tmp_path / "m2.ckpt", spec))
    volume = np.stack([kit.grains((9, 20, 24), seed=3), kit.grains((9, 20, 24), seed=4)])
    expected = predict_volume(loaded, volume, batch_size=5, precision="fp32").labels
    result = predict_chunked(loaded, volume, tmp_path / "o.zarr", batch_size=5, slab_size=2, precision="fp32")
    np.testing.assert_array_equal(zarr.open_array(str(result.labels_path) + "/0")[...], expected)


def test_wrong_channel_count_is_refused(tmp_path, kit):
    spec = kit.tiny_spec(name="multichannel2d", channels=("cbs", "tld"), patch_size=(16, 16))
    loaded = load_checkpoint(kit.save_checkpoint(tmp_path / "m2.ckpt", spec))
    with pytest.raises(InputError, match="expects 2 channel\\(s\\) \\['cbs', 'tld'\\].*got shape \\(3, 16, 16\\)"):
        predict_volume(loaded, np.zeros((3, 16, 16)))


def test_checkpoint_preprocess_steps_run_before_prediction(tmp_path, kit):
    plain = kit.tiny_spec()
    steps = ({"step": "crop", "roi": [[1, 9], [2, 18], [None, None]]},)
    from dataclasses import replace

    with_crop = load_checkpoint(kit.save_checkpoint(tmp_path / "c.ckpt", replace(plain, preprocess=steps)))
    without = load_checkpoint(kit.save_checkpoint(tmp_path / "p.ckpt", plain))
    volume = kit.grains((10, 20, 24), seed=7)
    got = predict_volume(with_crop, volume, precision="fp32").labels
    assert got.shape == (8, 16, 24)
    np.testing.assert_array_equal(got, predict_volume(without, volume[1:9, 2:18], precision="fp32").labels)
    with pytest.raises(InputError, match="preprocess steps \\['crop'\\] need the whole volume"):
        predict_chunked(with_crop, volume, tmp_path / "o.zarr")


def test_checkpoint_registration_on_a_named_detector(tmp_path, kit):
    """A checkpoint whose preprocessing registers on its second detector by name: predict reads
    the drift from that channel (the first is featureless) and moves both channels by it."""
    from dataclasses import replace

    from scipy import ndimage as ndi

    spec = kit.tiny_spec(name="multichannel2d", channels=("cbs", "tld"), patch_size=(16, 16))
    steps = ({"step": "register_slices", "channel": "tld", "highpass_sigma": 4},)
    registered = load_checkpoint(kit.save_checkpoint(tmp_path / "r.ckpt", replace(spec, preprocess=steps)))
    plain = load_checkpoint(kit.save_checkpoint(tmp_path / "p.ckpt", spec))
    base = ndi.gaussian_filter(np.random.default_rng(3).random((48, 48)), 2).astype(np.float32)
    drifted = np.stack([base, ndi.shift(base, (2.0, -1.0), order=3, mode="wrap")])
    volume = np.stack([np.full_like(drifted, 0.5), drifted])  # (C, Z, Y, X): cbs flat, tld textured
    aligned = np.stack([np.full_like(drifted, 0.5), np.stack([base, base])])
    inner = (slice(None), slice(6, -6), slice(6, -6))
    got = predict_volume(registered, volume, precision="fp32").labels
    want = predict_volume(plain, aligned, precision="fp32").labels
    assert np.mean(got[inner] == want[inner]) > 0.97
    bad = load_checkpoint(kit.save_checkpoint(
        tmp_path / "b.ckpt", replace(spec, preprocess=({"step": "register_slices", "channel": "se"},))))
    with pytest.raises(InputError, match="channel 'se' is not a channel of this image.*\\['cbs', 'tld'\\]"):
        predict_volume(bad, volume)

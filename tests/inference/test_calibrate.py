"""Per-input calibration to known volume fractions at prediction time."""

import dask
import numpy as np
import pandas as pd
import pytest
import zarr

from electroseg.cli import main
from electroseg.errors import InputError
from electroseg.inference import load_checkpoint, predict_batch, predict_chunked, predict_volume
from electroseg.inference.blockwise import predict_blockwise
from electroseg.inference.calibrate import _slabs
from electroseg.io import write_tiff

VOXEL = (0.05, 0.02, 0.02)


@pytest.fixture()
def unet(tmp_path, kit):
    return load_checkpoint(kit.save_checkpoint(tmp_path / "m.ckpt", kit.tiny_spec(patch_size=(8, 16, 16))))


@pytest.mark.parametrize("fractions", [{"am": 0.3}, {"pore": 0.5, "cbd": 0.2}])
def test_predicted_fractions_match_the_known_ones(unet, kit, fractions):
    volume = kit.grains((12, 30, 26), seed=2)  # small: the offsets are fitted on every voxel
    before = predict_volume(unet, volume, precision="fp32").labels
    labels = predict_volume(unet, volume, precision="fp32", volume_fractions=fractions).labels
    for phase, fraction in fractions.items():
        index = unet.spec.phases.index(phase)
        assert (labels == index).mean() == pytest.approx(fraction, abs=2 / labels.size)
        assert abs((before == index).mean() - fraction) > 0.02  # the calibration did something


def test_chunked_equals_in_memory_with_calibration(tmp_path, unet, kit):
    volume = kit.grains((21, 30, 26), seed=1)
    write_tiff(tmp_path / "scan.tif", volume, voxel_size=VOXEL)
    options = dict(overlap=0.5, precision="fp32", volume_fractions={"am": 0.4})
    in_memory = predict_volume(unet, volume, **options)
    result = predict_chunked(unet, tmp_path / "scan.tif", tmp_path / "labels.zarr", slab_size=5, **options)
    np.testing.assert_array_equal(zarr.open_array(str(result.labels_path) + "/0", mode="r")[...], in_memory.labels)
    assert (in_memory.labels == 2).mean() == pytest.approx(0.4, abs=1e-3)


def test_dask_slabs_apply_the_offsets_fitted_on_the_whole_volume(tmp_path, kit):
    spec = kit.tiny_spec(name="multichannel2d", channels=("cbs", "tld"), context_slices=1, patch_size=(16, 16))
    checkpoint = kit.save_checkpoint(tmp_path / "m2.ckpt", spec)
    volume = np.stack([kit.grains((11, 20, 24), seed=3), kit.grains((11, 20, 24), seed=4)])
    store = zarr.open_array(str(tmp_path / "in.zarr"), mode="w", shape=volume.shape, dtype=volume.dtype,
                            chunks=(1, 4, 20, 24))
    store[...] = volume
    options = dict(batch_size=5, precision="fp32", volume_fractions={"cbd": 0.25})
    expected = predict_volume(load_checkpoint(checkpoint), volume, **options).labels
    with dask.config.set(scheduler="synchronous"):
        result = predict_blockwise(checkpoint, zarr.open_array(str(tmp_path / "in.zarr"), mode="r"),
                                   tmp_path / "out.zarr", slab_size=3, **options)
    labels = zarr.open_array(str(result.labels_path) + "/0")[...]
    np.testing.assert_array_equal(labels, expected)  # 2.5D: block-wise equals in memory exactly
    assert (labels == 1).mean() == pytest.approx(0.25, abs=1e-3)


def test_large_inputs_are_fitted_on_evenly_spaced_slabs():
    assert _slabs(100, 10, 1000, 25_000) == [(0, 10), (45, 55), (90, 100)]  # 3 slabs of 10 000 voxels
    assert _slabs(100, 10, 1000, 100_000) == [(0, 100)]                     # fits: the whole volume
    assert _slabs(8, 16, 10**6, 1000) == [(0, 8)]                           # thinner than one slab
    assert _slabs(100, 10, 1000, 10**9 - 1) == [(0, 100)]


def test_bad_fractions_are_refused_in_one_line(unet, kit, tmp_path):
    volume = kit.grains((8, 20, 18), seed=0)
    with pytest.raises(InputError, match=r"volume_fractions: \['solid'\] are not phases"):
        predict_volume(unet, volume, volume_fractions={"solid": 0.5})
    with pytest.raises(InputError, match="volume_fractions: each fraction must lie between 0 and 1"):
        predict_batch(unet, [volume], tmp_path / "out", volume_fractions={"am": 1.5})


def test_predict_command_calibrates_every_input(tmp_path, kit):
    ckpt = kit.save_checkpoint(tmp_path / "m.ckpt", kit.tiny_spec(patch_size=(8, 16, 16)))
    for i, name in enumerate(["a", "b"]):
        write_tiff(tmp_path / "scans" / f"{name}.tif", kit.grains((8, 20, 18), seed=i), voxel_size=VOXEL)
    out = tmp_path / "out"
    status = main(["predict", f"checkpoint={ckpt}", f"inputs={tmp_path}/scans/*.tif", f"out={out}",
                   "progress=false", "volume_fractions={pore: 0.35}"])
    assert status == 0
    summary = pd.read_csv(out / "summary.csv")
    assert summary["fraction_pore"].tolist() == pytest.approx([0.35, 0.35], abs=2e-3)

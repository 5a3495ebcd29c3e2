"""Round trips with voxel size for every format the readers support."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import tifffile
import zarr

from electroseg.errors import InputError
from electroseg.io import read_channels, read_labels, read_volume, write_tiff, write_zarr

VOXEL = (0.05, 0.025, 0.025)


@pytest.fixture
def labels() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 3, size=(5, 7, 9), dtype=np.uint8)


def test_imagej_tiff_round_trip_is_exact(tmp_path, labels):
    path = write_tiff(tmp_path / "labels.tif", labels, voxel_size=VOXEL)
    volume = read_volume(path)
    assert volume.voxel_size == VOXEL
    np.testing.assert_array_equal(volume.numpy(), labels)
    with tifffile.TiffFile(path) as tif:  # what Fiji reads: ImageJ spacing, unit and resolution
        assert tif.is_imagej
        assert tif.imagej_metadata["spacing"] == pytest.approx(0.05)
        assert tif.imagej_metadata["unit"] == "um"


@pytest.mark.parametrize("voxel", [(0.07, 0.035, 0.035), (0.390625,) * 3, (1.0, 0.1, 0.3)])
def test_awkward_voxel_sizes_survive_rational_resolution(tmp_path, labels, voxel):
    path = write_tiff(tmp_path / "v.tif", labels, voxel_size=voxel)
    assert read_volume(path).voxel_size == voxel


def test_2d_tiff_and_float_image(tmp_path):
    image = np.linspace(0, 1, 35, dtype=np.float32).reshape(5, 7)
    path = write_tiff(tmp_path / "slice.tif", image, voxel_size=(0.02, 0.01))
    volume = read_volume(path)
    assert volume.voxel_size == (0.02, 0.01)
    np.testing.assert_array_equal(volume.numpy(), image)


def test_multichannel_hyperstack(tmp_path):
    data = np.arange(2 * 3 * 4 * 5, dtype=np.uint16).reshape(2, 3, 4, 5)
    path = write_tiff(tmp_path / "two.tif", data, voxel_size=VOXEL, channels=("cbs", "tld"))
    volume = read_volume(path)
    assert volume.channels == ("cbs", "tld")
    assert volume.spatial_shape == (3, 4, 5)
    np.testing.assert_array_equal(volume.numpy(), data)


def test_ome_tiff_physical_size(tmp_path, labels):
    path = tmp_path / "ome.ome.tif"
    tifffile.imwrite(path, labels, ome=True, metadata={
        "axes": "ZYX", "PhysicalSizeX": 25.0, "PhysicalSizeXUnit": "nm",
        "PhysicalSizeY": 25.0, "PhysicalSizeYUnit": "nm", "PhysicalSizeZ": 0.05, "PhysicalSizeZUnit": "µm"})
    assert read_volume(path).voxel_size == VOXEL


def test_plain_tiff_has_no_voxel_size_unless_given(tmp_path, labels):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, labels, photometric="minisblack")
    assert read_volume(path).voxel_size is None
    assert read_volume(path, voxel_size=[0.1, 0.2, 0.3]).voxel_size == (0.1, 0.2, 0.3)


def test_zarr_is_lazy_and_keeps_voxel_size(tmp_path, labels):
    path = write_zarr(tmp_path / "l.zarr", labels, voxel_size=VOXEL, chunks=(2, 7, 9))
    volume = read_volume(path, lazy=True)
    assert isinstance(volume.data, zarr.Array)
    assert volume.voxel_size == VOXEL
    np.testing.assert_array_equal(volume.numpy(), labels)


@pytest.mark.parametrize("layout", [dict(), dict(tile=(16, 16))])
def test_compressed_tiff_is_read_lazily_page_by_page(tmp_path, labels, layout):
    path = tmp_path / "packed.tif"
    tifffile.imwrite(path, labels, compression="zlib", **layout)
    volume = read_volume(path, lazy=True)
    from electroseg.io._tiff import LazyTiff

    assert isinstance(volume.data, LazyTiff) and volume.spatial_shape == labels.shape  # chunk by chunk, picklable
    np.testing.assert_array_equal(volume.data[1:3], labels[1:3])
    two_channels = tmp_path / "two.tif"
    tifffile.imwrite(two_channels, np.stack([labels, labels + 1]), compression="zlib", metadata={"axes": "CZYX"})
    np.testing.assert_array_equal(read_volume(two_channels, lazy=True).data[1], labels + 1)


def test_ome_zarr_multiscale(tmp_path, labels):
    root = zarr.open_group(str(tmp_path / "img.ome.zarr"), mode="w")
    root.create_array("0", shape=labels.shape, dtype=labels.dtype)[...] = labels
    root.attrs["multiscales"] = [{
        "axes": [{"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"],
        "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": list(VOXEL)}]}]}]
    volume = read_volume(tmp_path / "img.ome.zarr", lazy=True)
    assert volume.voxel_size == VOXEL
    np.testing.assert_array_equal(volume.numpy(), labels)


def test_hdf5_dataset_path(tmp_path, labels):
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f.create_dataset("/scan/labels", data=labels).attrs["element_size_um"] = VOXEL
    volume = read_volume(f"{tmp_path / 's.h5'}:/scan/labels")
    assert volume.voxel_size == VOXEL
    np.testing.assert_array_equal(volume.numpy(), labels)


def test_npy_and_png(tmp_path, labels):
    np.save(tmp_path / "a.npy", labels)
    np.testing.assert_array_equal(read_volume(tmp_path / "a.npy").numpy(), labels)
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "a.png", labels[0] * 100)
    np.testing.assert_array_equal(read_volume(tmp_path / "a.png").numpy(), labels[0] * 100)


@pytest.mark.parametrize("suffix", [".tif", ".png"])
def test_greyscale_saved_as_rgb_is_grey_and_colour_is_refused(tmp_path, labels, suffix):
    # SEM images often come exported as RGB with R = G = B: read as one channel, TIFF as PNG
    import imageio.v3 as iio

    grey = (labels[0] * 100).astype(np.uint8)
    rgb, colour = np.stack([grey] * 3, -1), np.stack([grey, grey, 255 - grey], -1)
    for name, image in (("rgb", rgb), ("colour", colour)):
        if suffix == ".tif":
            tifffile.imwrite(tmp_path / f"{name}.tif", image, photometric="rgb")
        else:
            iio.imwrite(tmp_path / f"{name}.png", image)
    np.testing.assert_array_equal(read_volume(tmp_path / f"rgb{suffix}").numpy(), grey)
    with pytest.raises(InputError, match=r"colour.*expected a greyscale image, got colour \(RGB\) pixels"):
        read_volume(tmp_path / f"colour{suffix}")


def test_slice_folder_in_natural_order(tmp_path, labels):
    folder = tmp_path / "slices"
    folder.mkdir()
    for i, plane in enumerate(labels):  # slice_2 must come before slice_10
        tifffile.imwrite(folder / f"slice_{i * 8}.tif", plane)
    np.testing.assert_array_equal(read_volume(folder).numpy(), labels)


def test_channels_from_several_files(tmp_path, labels):
    a = write_tiff(tmp_path / "a.tif", labels, voxel_size=VOXEL)
    b = write_tiff(tmp_path / "b.tif", labels * 2, voxel_size=VOXEL)
    volume = read_channels({"cbs": a, "tld": b})
    assert volume.channels == ("cbs", "tld") and volume.shape == (2, *labels.shape)
    np.testing.assert_array_equal(volume.numpy()[1], labels * 2)


def test_label_values_map_to_phase_indices(tmp_path):
    stored = np.array([[0, 85], [170, 255]], dtype=np.uint8)
    path = write_tiff(tmp_path / "s.tif", stored, voxel_size=(1, 1))
    got = read_labels(path, label_values=[0, 85, 170]).numpy()
    np.testing.assert_array_equal(got, [[0, 1], [2, 255]])
    got = read_labels(path, phases=("pore", "am", "cbd"), label_values=[0, 170, 85]).numpy()
    np.testing.assert_array_equal(got, [[0, 2], [1, 255]])


def test_imagej_frames_are_read_as_slices(tmp_path, labels):
    path = tmp_path / "frames.tif"  # ilastik writes label stacks as ImageJ time frames (axes TYX)
    tifffile.imwrite(path, labels, imagej=True, metadata={"axes": "TYX"})
    volume = read_volume(path)
    assert volume.shape == labels.shape
    np.testing.assert_array_equal(volume.numpy(), labels)


def test_every_real_data_file_reads(shared_data):
    shapes = {"taufactor/electrode.tiff": (256, 256, 256), "inpainter/unmasked.tif": (128, 128, 128),
              "nrel_expertsegmentation/nmc1cal_labels.tiff": (75, 75, 75),
              "nrel_expertsegmentation/nmc1cal.tif": (75, 75, 75), "samba_kintsugi/4_phase.tif": (682, 1024),
              "superres/sem_image_half.tif": (628, 758), "superres/large_slice_nmc.tif": (1024, 1024)}
    for name, shape in shapes.items():
        assert read_volume(shared_data / name).shape == shape, name

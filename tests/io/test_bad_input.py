"""Every bad input of the readers gets one InputError naming the file, expected and received."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from electroseg.errors import InputError
from electroseg.io import read_channels, read_labels, read_volume, write_tiff


def _tiff(tmp_path, array, name="x.tif"):
    path = tmp_path / name
    tifffile.imwrite(path, array, photometric="minisblack")
    return path


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_volume(tmp_path / "nope.tif")


def test_empty_file(tmp_path):
    (tmp_path / "e.tif").write_bytes(b"")
    with pytest.raises(InputError, match="e.tif: the file is empty"):
        read_volume(tmp_path / "e.tif")


def test_not_an_image(tmp_path):
    (tmp_path / "notes.tif").write_text("this is text, not a TIFF")
    with pytest.raises(InputError, match="notes.tif: not a readable TIFF"):
        read_volume(tmp_path / "notes.tif")


def test_truncated_tiff(tmp_path):
    path = _tiff(tmp_path, np.zeros((4, 64, 64), np.uint8))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputError, match="x.tif"):
        read_volume(path).numpy()


def test_unsupported_suffix(tmp_path):
    (tmp_path / "a.csv").write_text("1,2")
    with pytest.raises(InputError, match="unsupported file type .csv"):
        read_volume(tmp_path / "a.csv")


def test_wrong_dimensionality(tmp_path):
    np.save(tmp_path / "line.npy", np.zeros(10))
    with pytest.raises(InputError, match=r"expected a 2-D image .* got shape \(10,\)"):
        read_volume(tmp_path / "line.npy")


def test_empty_array(tmp_path):
    np.save(tmp_path / "empty.npy", np.zeros((0, 4, 4)))
    with pytest.raises(InputError, match="empty"):
        read_volume(tmp_path / "empty.npy")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf(tmp_path, bad):
    image = np.ones((4, 4), np.float32)
    image[1, 2] = bad
    with pytest.raises(InputError, match="1 NaN or infinite"):
        read_volume(_tiff(tmp_path, image))


def test_non_integer_labels(tmp_path):
    with pytest.raises(InputError, match="expected integer labels"):
        read_labels(_tiff(tmp_path, np.full((3, 3), 0.5, np.float32)))


def test_label_values_outside_phases(tmp_path):
    with pytest.raises(InputError, match=r"label values \[7\] .*label_values="):
        read_labels(_tiff(tmp_path, np.array([[0, 1], [2, 7]], np.uint8)))


def test_channels_of_different_shapes(tmp_path):
    a = _tiff(tmp_path, np.zeros((4, 4), np.uint8), "a.tif")
    b = _tiff(tmp_path, np.zeros((4, 5), np.uint8), "b.tif")
    with pytest.raises(InputError, match=r"a.tif \(4, 4\), .*b.tif \(4, 5\)"):
        read_channels({"cbs": a, "tld": b})


def test_slice_folder_with_mixed_sizes(tmp_path):
    folder = tmp_path / "slices"
    folder.mkdir()
    _tiff(folder, np.zeros((4, 4), np.uint8), "s1.tif")
    _tiff(folder, np.zeros((4, 5), np.uint8), "s2.tif")
    with pytest.raises(InputError, match=r"s1.tif is \(4, 4\) but s2.tif is \(4, 5\)"):
        read_volume(folder)


@pytest.mark.parametrize("voxel", [(0, 1, 1), (-0.1, 1, 1), (1, 1)])
def test_bad_voxel_size(tmp_path, voxel):
    with pytest.raises(InputError, match="voxel_size"):
        read_volume(_tiff(tmp_path, np.zeros((2, 3, 3), np.uint8)), voxel_size=voxel)


def test_huge_header_is_refused_before_allocating(tmp_path):
    path = _tiff(tmp_path, np.zeros((4, 64, 64), np.uint8))
    with pytest.raises(InputError, match="memory limit"):
        read_volume(path, max_bytes=1000)


def test_voxel_size_required_names_file(tmp_path):
    volume = read_volume(_tiff(tmp_path, np.zeros((3, 3), np.uint8)))
    with pytest.raises(InputError, match="x.tif: particle volumes needs the voxel size"):
        volume.require_voxel_size("particle volumes")


def test_failed_write_leaves_good_file_untouched(tmp_path, monkeypatch):
    good = write_tiff(tmp_path / "labels.tif", np.ones((3, 3), np.uint8), voxel_size=(1, 1))
    before = good.read_bytes()

    def explode(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tifffile, "imwrite", explode)
    with pytest.raises(OSError):
        write_tiff(good, np.zeros((3, 3), np.uint8), voxel_size=(1, 1))
    assert good.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.tif"]

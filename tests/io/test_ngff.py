"""OME-Zarr outputs: other tools read them with their scale and phase names (issue 27)."""

import numpy as np
import pytest
from electroseg.io import read_volume, write_zarr
from electroseg.io.ngff import create_probabilities, ngff_phases

VOXEL = (0.4, 0.1, 0.1)
PHASES = ("pore", "cbd", "am")


@pytest.fixture
def labels():
    return (np.arange(5 * 6 * 7).reshape(5, 6, 7) % 3).astype(np.uint8)


def test_label_image_is_read_by_ome_zarr_py_with_scale_colours_and_phases(tmp_path, labels):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    write_zarr(tmp_path / "labels.zarr", labels, voxel_size=VOXEL, phases=PHASES, chunks=(2, 6, 7))
    (node,) = list(Reader(parse_url(str(tmp_path / "labels.zarr")))())
    assert {type(s).__name__ for s in node.specs} >= {"Label", "Multiscales"}  # napari: a Labels layer
    assert node.metadata["coordinateTransformations"][0] == [{"type": "scale", "scale": list(VOXEL)}]
    assert [a["unit"] for a in node.metadata["axes"]] == ["micrometer"] * 3
    assert node.metadata["properties"] == {i: {"phase": p} for i, p in enumerate(PHASES)}
    assert set(node.metadata["color"]) == {0, 1, 2}
    np.testing.assert_array_equal(np.asarray(node.data[0]), labels)


def test_electroseg_reads_its_own_ome_zarr_back(tmp_path, labels):
    write_zarr(tmp_path / "labels.zarr", labels, voxel_size=VOXEL, phases=PHASES)
    volume = read_volume(tmp_path / "labels.zarr", lazy=True)
    assert volume.voxel_size == pytest.approx(VOXEL)
    np.testing.assert_array_equal(volume.numpy(), labels)
    assert ngff_phases(tmp_path / "labels.zarr") == PHASES


def test_unknown_voxel_size_is_not_invented(tmp_path, labels):
    write_zarr(tmp_path / "labels.zarr", labels, voxel_size=None, phases=PHASES)
    assert read_volume(tmp_path / "labels.zarr").voxel_size is None  # scale 1 without a unit: no voxel size


def test_probabilities_carry_a_channel_axis_named_by_phase(tmp_path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    array = create_probabilities(tmp_path / "p.zarr", (3, 4, 5, 6), chunks=(1, 4, 5, 6), voxel_size=VOXEL,
                                 phases=PHASES, dtype=np.float16)
    array[...] = 1 / 3
    volume = read_volume(tmp_path / "p.zarr", allow_channels=True)
    assert volume.channels == PHASES and volume.voxel_size == pytest.approx(VOXEL)
    (node,) = list(Reader(parse_url(str(tmp_path / "p.zarr")))())
    assert [a["name"] for a in node.metadata["axes"]] == ["c", "z", "y", "x"]
    assert node.metadata["channel_names"] == list(PHASES)  # napari names its channel layers so


def test_label_files_are_read_by_their_phase_names(tmp_path, labels):
    from electroseg.errors import InputError
    from electroseg.io import read_labels, write_tiff

    for path in (tmp_path / "l.tif", tmp_path / "l.zarr"):
        if path.suffix == ".tif":
            write_tiff(path, labels, voxel_size=VOXEL, phases=("pore", "am", "cbd"))
        else:
            write_zarr(path, labels, voxel_size=VOXEL, phases=("pore", "am", "cbd"))
        got = read_labels(path, phases=PHASES).numpy()  # stored 1 = am, 2 = cbd: mapped by name
        np.testing.assert_array_equal(got, np.array([0, 2, 1], np.uint8)[labels])
        with pytest.raises(InputError, match=r"names its phases \['pore', 'am', 'cbd'\]"):
            read_labels(path, phases=("pore", "solid"))
        # label_values / ignore_value given (a command's one setting for all its label files, e.g.
        # hand labels stored 2 = pore, 0 = unlabelled): a file naming its phases is still read by name
        np.testing.assert_array_equal(read_labels(path, phases=PHASES, label_values=[0, 1, 2]).numpy(),
                                      np.array([0, 2, 1], np.uint8)[labels])
        np.testing.assert_array_equal(read_labels(path, phases=PHASES, label_values=[2, 1, 3], ignore_value=0).numpy(),
                                      np.array([0, 2, 1], np.uint8)[labels])
        # a file naming other phases: label_values maps its stored values (the names are not consulted)
        np.testing.assert_array_equal(read_labels(path, phases=("pore", "solid", "x"), label_values=[0, 1, 2]).numpy(),
                                      labels)


def test_ome_bigtiff_labels_name_their_phases(tmp_path, labels, monkeypatch):
    import electroseg.io.writers as writers
    from electroseg.io import BigTiffSlabs, label_phases, read_labels, write_tiff

    slabs = BigTiffSlabs(tmp_path / "s.tif", labels.shape, np.uint8, voxel_size=VOXEL, phases=PHASES)
    slabs[0:5] = labels
    assert label_phases(tmp_path / "s.tif") == PHASES
    assert read_volume(tmp_path / "s.tif").voxel_size == pytest.approx(VOXEL)
    monkeypatch.setattr(writers, "BIGTIFF_BYTES", 10)  # force the OME BigTIFF route of write_tiff
    write_tiff(tmp_path / "b.tif", labels, voxel_size=VOXEL, phases=("am", "pore", "cbd"))
    assert label_phases(tmp_path / "b.tif") == ("am", "pore", "cbd")
    np.testing.assert_array_equal(read_labels(tmp_path / "b.tif", phases=PHASES).numpy(),
                                  np.array([2, 0, 1], np.uint8)[labels])

"""Interface areas from voxel faces (hand-counted, anisotropic) and marching cubes (a ball)."""

from __future__ import annotations

import numpy as np
import pytest

from electroseg.analysis.surfaces import face_areas, interface_areas
from electroseg.errors import InputError


def test_face_areas_anisotropic():
    assert face_areas((1.0, 2.0, 3.0)).tolist() == [6.0, 3.0, 2.0]
    assert face_areas((0.5, 2.0)).tolist() == [2.0, 0.5]


def test_hand_counted_anisotropic():
    labels = np.array([[[0, 2],
                        [1, 2]],
                       [[2, 2],
                        [1, 255]]], dtype=np.uint8)
    # z-pairs (face area y*x = 6): (0,2) pore-am, (2,2), (1,1), (2,255) ignored
    # y-pairs (face area z*x = 3): (0,1) pore-cbd, (2,2), (2,1) cbd-am, (2,255) ignored
    # x-pairs (face area z*y = 2): (0,2) pore-am, (1,2) cbd-am, (2,2), (1,255) ignored
    result = interface_areas(labels, voxel_size=(1.0, 2.0, 3.0))
    assert result.faces == {"pore-cbd": 1, "pore-am": 2, "cbd-am": 2}
    assert result.area_um2 == {"pore-cbd": 3.0, "pore-am": 8.0, "cbd-am": 5.0}
    assert result.volume_um3 == 7 * 6.0
    assert result.per_um["pore-am"] == pytest.approx(8.0 / 42.0)
    assert result.to_dict()["unit"] == "per_um"
    assert result.phase_area_um2("am") == 13.0
    assert list(result.as_table()["pair"]) == ["pore-cbd", "pore-am", "cbd-am"]


def test_2d_interface_lengths():
    labels = np.array([[0, 2], [2, 2]], dtype=np.uint8)
    result = interface_areas(labels, voxel_size=(2.0, 1.0))
    # y-pair (0,2): face length x = 1; x-pair (0,2): face length y = 2
    assert result.area_um2["pore-am"] == 3.0
    assert result.per_um["pore-am"] == pytest.approx(3.0 / 8.0)


def _ball_labels(radius_vox: int, voxel: float) -> np.ndarray:
    n = 2 * radius_vox + 6
    grid = np.indices((n, n, n)) - (n - 1) / 2
    labels = np.zeros((n, n, n), dtype=np.uint8)
    labels[(grid ** 2).sum(axis=0) <= radius_vox ** 2] = 2
    return labels


def test_doubling_voxel_size_areas_times_4_specific_area_halves():
    labels = _ball_labels(6, 1.0)
    one = interface_areas(labels, voxel_size=(0.5, 0.5, 0.5))
    two = interface_areas(labels, voxel_size=(1.0, 1.0, 1.0))
    assert two.area_um2["pore-am"] == pytest.approx(4 * one.area_um2["pore-am"])
    assert two.volume_um3 == pytest.approx(8 * one.volume_um3)
    assert two.per_um["pore-am"] == pytest.approx(one.per_um["pore-am"] / 2)


def test_marching_cubes_ball_area_close_to_sphere():
    radius = 15
    labels = _ball_labels(radius, 1.0)
    smooth = interface_areas(labels, voxel_size=(0.1, 0.1, 0.1), method="marching_cubes")
    sphere = 4 * np.pi * (radius * 0.1) ** 2
    assert smooth.area_um2["pore-am"] == pytest.approx(sphere, rel=0.03)
    assert smooth.area_um2["pore-cbd"] == pytest.approx(0.0, abs=1e-5 * sphere)  # no CBD
    faces = interface_areas(labels, voxel_size=(0.1, 0.1, 0.1))
    # voxel faces overestimate a sphere by about 3/2 (mean |n_x|+|n_y|+|n_z| over a sphere)
    assert faces.area_um2["pore-am"] / sphere == pytest.approx(1.5, rel=0.05)


def test_errors():
    labels = np.zeros((2, 2, 2), np.uint8)
    with pytest.raises(InputError, match="voxel size"):
        interface_areas(labels, voxel_size=None)
    with pytest.raises(InputError, match="3 values"):
        interface_areas(labels, voxel_size=(1, 1))
    with pytest.raises(InputError, match="method"):
        interface_areas(labels, voxel_size=(1, 1, 1), method="mesh")
    labels[0, 0, 0] = 255
    with pytest.raises(InputError, match="ignore_value"):
        interface_areas(labels, voxel_size=(1, 1, 1), method="marching_cubes")

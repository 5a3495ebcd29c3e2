"""PBA by neighbour counting on hand-counted arrays (counts worked out in the comments)."""

from __future__ import annotations

import numpy as np
import pytest

from electroseg.analysis import face_pair_counts, pba_profile, pooled_pba
from electroseg.errors import InputError

# labels[z, y, x]; 255 = ignore.
HAND = np.array(
    [[[2, 1, 0],
      [2, 2, 2],
      [0, 0, 0]],
     [[2, 2, 1],
      [1, 2, 0],
      [2, 255, 1]]], dtype=np.uint8)


def test_face_depth_axis_1_hand_counted():
    # plane y=0 (rows z): x-pairs (2,1)(1,0) / (2,2)(2,1); z-pairs (2,2)(1,2)(0,1): S=3, C=3
    # plane y=1: x-pairs (2,2)(2,2) / (1,2)(2,0); z-pairs (2,1)(2,2)(2,0): S=4, C=2
    # plane y=2: x-pairs (0,0)(0,0) / ignored; z-pairs (0,2)(ignored)(0,1): S=1, C=0
    result = pba_profile(HAND, depth_axis=1)
    assert result.surface.tolist() == [3, 4, 1]
    assert result.contacts.tolist() == [3, 2, 0]
    assert result.per_depth == [1.0, 0.5, 0.0]
    assert result.pooled == pytest.approx(5 / 8)
    assert result.depth_mean == pytest.approx(0.5)


def test_face_depth_axis_0_hand_counted():
    # plane z=0: x-pairs S1 C1; y-pairs x0 (2,2)(2,0)S, x1 (1,2)SC (2,0)S, x2 (0,2)S (2,0)S
    # plane z=1: x-pairs (2,1)SC (1,2)SC (2,0)S; y-pairs (2,1)SC (1,2)SC; rest ignore/none
    result = pba_profile(HAND, depth_axis=0)
    assert result.surface.tolist() == [6, 5]
    assert result.contacts.tolist() == [2, 4]
    assert result.pooled == pytest.approx(6 / 11)


def test_face_depth_axis_2_hand_counted():
    result = pba_profile(HAND, depth_axis=2)
    assert result.surface.tolist() == [5, 3, 3]
    assert result.contacts.tolist() == [3, 2, 0]
    assert result.per_depth == pytest.approx([0.6, 2 / 3, 0.0])
    assert result.pooled == pytest.approx(5 / 11)
    assert pba_profile(HAND, depth_axis=-1).contacts.tolist() == [3, 2, 0]


def test_voxel_method_hand_counted():
    # y=0: AM (z0,x0) touches CBD; (z1,x0) only AM neighbours; (z1,x1) touches CBD: S=2, C=2
    # y=1: (z0,x0) CBD; (z0,x1) all AM; (z0,x2) pore only; (z1,x1) CBD: S=3, C=2
    # y=2: (z1,x0) pore (and an ignored neighbour): S=1, C=0
    result = pba_profile(HAND, depth_axis=1, method="voxel")
    assert result.surface.tolist() == [2, 3, 1]
    assert result.contacts.tolist() == [2, 2, 0]
    assert result.pooled == pytest.approx(4 / 6)
    assert result.method == "voxel"


def test_2d_both_axes_and_methods():
    labels = np.array([[1, 2, 0],
                       [0, 2, 1],
                       [2, 2, 2]], dtype=np.uint8)
    # depth_axis=0: rows are planes, pairs along x.
    rows = pba_profile(labels, depth_axis=0)
    assert rows.surface.tolist() == [2, 2, 0]
    assert rows.contacts.tolist() == [1, 1, 0]
    assert rows.per_depth == [0.5, 0.5, None]
    assert rows.depth_mean == 0.5
    # depth_axis=1: columns are planes, pairs along y: col0 (1,0)(0,2)S; col1 none; col2 (0,1)(1,2)SC
    cols = pba_profile(labels, depth_axis=1)
    assert cols.surface.tolist() == [1, 0, 1]
    assert cols.contacts.tolist() == [0, 0, 1]
    assert cols.pooled == 0.5
    # voxel method, rows: row0 AM (0,1) touches CBD and pore; row1 likewise; row2 no surface
    assert pba_profile(labels, depth_axis=0, method="voxel").surface.tolist() == [1, 1, 0]


def test_voxel_vs_face_differ_when_voxel_has_two_surface_faces():
    # One AM voxel between pore and CBD: 2 surface faces (1 with CBD) but 1 surface voxel.
    labels = np.array([[0, 2, 1]], dtype=np.uint8)
    assert pba_profile(labels, depth_axis=0).pooled == 0.5
    assert pba_profile(labels, depth_axis=0, method="voxel").pooled == 1.0


def test_pair_counts_exclude_ignore_and_give_voxels():
    counts = face_pair_counts(HAND, depth_axis=1)
    assert counts.voxels.sum(axis=0).tolist() == [5, 4, 8]
    assert counts.ignored.tolist() == [0, 0, 1]
    # all valid pairs: 3 axes; pairs touching the one ignored voxel (y2 z1 x1): x 2, y 1, z 1
    total_pairs = 2 * 3 * 2 + 2 * 2 * 3 + 1 * 3 * 3
    assert counts.pairs.sum() == total_pairs - 4


def test_pooling_two_volumes_is_exact():
    a, b = pba_profile(HAND, depth_axis=1), pba_profile(HAND[:, :, ::-1], depth_axis=1)
    assert pooled_pba([a, b]) == pytest.approx((5 + 5) / (8 + 8))


def test_absent_am_gives_null_with_warning(caplog):
    labels = np.zeros((3, 4, 4), dtype=np.uint8)
    labels[1] = 1
    result = pba_profile(labels)
    assert result.pooled is None and result.depth_mean is None
    assert result.per_depth == [None] * 4
    assert "PBA is null" in caplog.text


def test_bad_inputs_raise_input_error():
    with pytest.raises(InputError, match=r"label_values"):
        pba_profile(np.array([[0, 85, 170]], dtype=np.uint8))
    with pytest.raises(InputError, match="method"):
        pba_profile(HAND, method="mesh")
    with pytest.raises(InputError, match="depth_axis"):
        pba_profile(HAND, depth_axis=3)
    with pytest.raises(InputError, match="got shape"):
        pba_profile(np.zeros(5, dtype=np.uint8))


def test_input_not_modified():
    before = HAND.copy()
    pba_profile(HAND, depth_axis=2)
    pba_profile(HAND, depth_axis=1, method="voxel")
    np.testing.assert_array_equal(HAND, before)


def test_voxel_method_depth_axis_0_and_2_hand_counted():
    # z=0 plane: AM (0,0) has CBD to its right -> S,C; (1,0) pore below -> S; (1,1) CBD
    # above -> S,C; (1,2) pore -> S.   z=1 plane: all four AM voxels touch CBD -> S=4, C=4
    by_z = pba_profile(HAND, depth_axis=0, method="voxel")
    assert by_z.surface.tolist() == [4, 4]
    assert by_z.contacts.tolist() == [2, 4]
    assert by_z.pooled == pytest.approx(0.75)
    # x=0: 3 surface voxels all touching CBD; x=1: 2 (one more AM voxel has only AM and
    # ignored neighbours); x=2: one AM voxel surrounded by pore
    by_x = pba_profile(HAND, depth_axis=2, method="voxel")
    assert by_x.surface.tolist() == [3, 2, 1]
    assert by_x.contacts.tolist() == [3, 2, 0]


def test_voxel_method_2d_columns():
    labels = np.array([[1, 2, 0],
                       [0, 2, 1],
                       [2, 2, 2]], dtype=np.uint8)
    cols = pba_profile(labels, depth_axis=1, method="voxel")
    assert cols.surface.tolist() == [1, 0, 1]
    assert cols.contacts.tolist() == [0, 0, 1]
    assert cols.per_depth == [0.0, None, 1.0]

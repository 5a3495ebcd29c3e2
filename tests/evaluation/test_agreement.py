"""Agreement scores on arrays worked out by hand."""

import math

import numpy as np
import pytest

from electroseg.errors import InputError
from electroseg.evaluation.agreement import agreement, boundary_map, boundary_scores

REF = np.array([[0, 1, 2], [2, 2, 1]], dtype=np.uint8)
LAB = np.array([[0, 2, 2], [2, 1, 1]], dtype=np.uint8)


def test_confusion_iou_dice_by_hand():
    # rows reference, columns labels:
    # ref 0 -> lab 0 once; ref 1 -> lab 2 at (0,1), lab 1 at (1,2); ref 2 -> lab 2 twice, lab 1 once
    result = agreement(LAB, REF)
    assert result.confusion == ((1, 0, 0), (0, 1, 1), (0, 1, 2))
    # cbd: TP 1, reference 2, labels 2 -> IoU 1/3, Dice 2/4; am: TP 2, ref 3, lab 3 -> 2/4, 4/6
    assert result.iou == pytest.approx({"pore": 1.0, "cbd": 1 / 3, "am": 0.5})
    assert result.dice == pytest.approx({"pore": 1.0, "cbd": 0.5, "am": 2 / 3})
    assert result.mean_iou == pytest.approx((1 + 1 / 3 + 0.5) / 3)
    assert result.accuracy == pytest.approx(4 / 6)
    assert result.n_voxels == 6


def test_sparse_reference_ignores_255():
    ref = REF.copy()
    ref[1, :] = 255  # only the first row is hand-labelled
    result = agreement(LAB, ref)
    assert result.n_voxels == 3
    assert result.confusion == ((1, 0, 0), (0, 0, 1), (0, 0, 1))
    assert result.iou["cbd"] == 0.0
    assert result.iou["am"] == pytest.approx(0.5)
    assert result.accuracy == pytest.approx(2 / 3)


def test_absent_phase_is_nan_and_left_out_of_mean():
    ref = np.zeros((2, 2), np.uint8)
    lab = np.array([[0, 0], [0, 2]], np.uint8)
    result = agreement(lab, ref)
    assert math.isnan(result.iou["cbd"])
    assert result.iou["pore"] == pytest.approx(0.75)
    assert result.mean_iou == pytest.approx((0.75 + 0.0) / 2)


def test_boundary_map_face_neighbours():
    lab = np.array([[0, 0, 1], [0, 0, 0]], np.uint8)
    assert boundary_map(lab).tolist() == [[False, True, True], [False, False, True]]


def test_boundary_f1_identical_is_one():
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 3, (4, 5, 6)).astype(np.uint8)
    assert agreement(lab, lab).boundary_f1 == 1.0


def _half_split(width: int, cut: int) -> np.ndarray:
    img = np.zeros((4, width), np.uint8)
    img[:, cut:] = 2
    return img


def test_boundary_f1_one_voxel_shift_within_tolerance():
    # boundaries at columns {3, 4} vs {4, 5}: every boundary voxel has a partner within 1 voxel
    assert boundary_scores(_half_split(10, 5), _half_split(10, 4)) == (1.0, 1.0, 1.0)


def test_boundary_f1_two_voxel_shift_is_half():
    # labels boundary {5, 6}, reference {3, 4}: only column 5 (P) and column 4 (R) are matched
    assert boundary_scores(_half_split(10, 6), _half_split(10, 4)) == (0.5, 0.5, 0.5)


def test_to_dict_and_table():
    result = agreement(LAB, REF)
    d = result.to_dict()
    assert d["confusion"]["matrix"] == [[1, 0, 0], [0, 1, 1], [0, 1, 2]]
    table = result.as_table()
    assert table["reference_voxels"].tolist() == [1, 2, 3]
    assert table["label_voxels"].tolist() == [1, 2, 3]


def test_bad_inputs_name_argument():
    with pytest.raises(InputError, match=r"same shape.*\(2, 3\).*\(3, 2\)"):
        agreement(LAB, REF.T.copy())
    with pytest.raises(InputError, match="labels: expected values 0..2"):
        agreement(LAB + 3, REF)
    with pytest.raises(InputError, match="integer"):
        agreement(LAB.astype(float), REF)


def test_evaluation_never_imports_torch():
    import subprocess
    import sys

    code = "import sys, electroseg.evaluation; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

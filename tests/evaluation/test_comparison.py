"""compare_segmentations and `electroseg compare` on a tiny case worked out by hand.

2-D, depth_axis=0 (rows are depth planes), X split into two identical sub-blocks of 4 columns:
  a row = [am, am, cbd, pore] * 2      b row = [am, am, pore, pore] * 2
In-plane (X) pairs per row: a has 3 AM-surface pairs of which 2 touch CBD -> PBA 2/3; b has 3
and none touches CBD -> PBA 0. Each half of a has PBA 1, each half of b 0: the sub-block spread is
0, so any non-zero difference exceeds it.
"""

import json

import numpy as np
import pytest
import tifffile

from electroseg.cli import main
from electroseg.evaluation import compare_segmentations

A = np.array([[2, 2, 1, 0] * 2] * 2, dtype=np.uint8)
B = np.array([[2, 2, 0, 0] * 2] * 2, dtype=np.uint8)


def _by_metric(differences, pair="b − a"):
    return {d["metric"]: d for d in differences if d["pair"] == pair}


def _check_hand_values(result: dict) -> None:
    found = result["agreement"]["b vs a"]
    assert found["confusion"]["matrix"] == [[4, 0, 0], [4, 0, 0], [0, 0, 8]]
    assert found["iou"] == pytest.approx({"pore": 0.5, "cbd": 0.0, "am": 1.0})
    assert found["mean_iou"] == pytest.approx(0.5)
    diff = _by_metric(result["differences"])
    assert diff["pba.pooled"]["a"] == pytest.approx(2 / 3)
    assert diff["pba.pooled"]["b"] == 0.0
    assert diff["pba.pooled"]["difference"] == pytest.approx(-2 / 3)
    assert diff["pba.pooled"]["variability"] == 0.0
    assert diff["pba.pooled"]["exceeds_variability"] is True
    assert diff["volume_fraction.cbd"]["difference"] == pytest.approx(-0.25)
    assert diff["volume_fraction.pore"]["difference"] == pytest.approx(0.25)
    assert diff["volume_fraction.am"]["exceeds_variability"] is False
    assert diff["pba.largest_depth_difference"]["difference"] == pytest.approx(-2 / 3)
    # two 2x2 AM particles in both: identical size distributions
    assert diff["particles.wasserstein_log10_volume"]["difference"] == 0.0
    assert result["pba_per_depth"]["a"] == pytest.approx([2 / 3, 2 / 3])


def test_compare_segmentations_hand_values():
    result = compare_segmentations(A, B, voxel_size=(1.0, 1.0), depth_axis=0, blocks_per_axis=2)
    _check_hand_values(result.to_dict())
    table = result.as_table()
    assert set(table["pair"]) == {"b − a"}


def test_dense_reference_adds_agreement_and_differences():
    result = compare_segmentations(A, B, reference=A, voxel_size=(1.0, 1.0), depth_axis=0,
                                   blocks_per_axis=2, names=("classical", "learned"))
    assert result.agreement["classical vs reference"].mean_iou == 1.0
    assert result.agreement["learned vs reference"].mean_iou == pytest.approx(0.5)
    pairs = {d.pair for d in result.differences}
    assert pairs == {"learned − classical", "classical − reference", "learned − reference"}
    same = [d for d in result.differences if d.pair == "classical − reference"]
    assert all(d.difference == 0 for d in same)


def test_sparse_reference_gives_agreement_only():
    sparse = np.full_like(A, 255)
    sparse[0] = A[0]
    result = compare_segmentations(A, B, reference=sparse, voxel_size=(1.0, 1.0), depth_axis=0)
    assert result.agreement["b vs reference"].n_voxels == 8
    assert {d.pair for d in result.differences} == {"b − a"}


def test_compare_command_writes_json_figures_report(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", A)
    tifffile.imwrite(tmp_path / "b.tif", B)
    out = tmp_path / "cmp"
    status = main(["compare", f"a={tmp_path / 'a.tif'}", f"b={tmp_path / 'b.tif'}",
                   f"out={out}", "voxel_size=[1.0,1.0]", "depth_axis=0", "blocks_per_axis=2"])
    assert status == 0
    _check_hand_values(json.loads((out / "comparison.json").read_text()))
    for name in ("slices.png", "confusion_b_vs_a.png", "pba_depth.png", "size_distribution.png",
                 "report.html", "report.md"):
        assert (out / name).stat().st_size > 0, name


def test_compare_command_with_stored_values_and_ignore_zero(tmp_path):
    # phases stored as 1, 2, 3 and unlabelled as 0 in the reference: read_labels maps 0 to 255,
    # and the comparison must not take 0 (pore's index in memory) as its ignore value
    tifffile.imwrite(tmp_path / "a.tif", A + 1)
    tifffile.imwrite(tmp_path / "b.tif", B + 1)
    reference = A + 1
    reference[0] = 0
    tifffile.imwrite(tmp_path / "ref.tif", reference)
    out = tmp_path / "cmp"
    status = main(["compare", f"a={tmp_path / 'a.tif'}", f"b={tmp_path / 'b.tif'}", f"reference={tmp_path / 'ref.tif'}",
                   f"out={out}", "voxel_size=[1.0,1.0]", "depth_axis=0", "blocks_per_axis=2",
                   "label_values=[1,2,3]", "ignore_value=0", "report=false"])
    assert status == 0
    result = json.loads((out / "comparison.json").read_text())
    _check_hand_values(result)
    assert result["agreement"]["a vs reference"]["n_voxels"] == 8  # the unlabelled row left out


def test_compare_command_mismatched_shapes_is_one_line_error(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "a.tif", A)
    tifffile.imwrite(tmp_path / "b.tif", B[:, :4].copy())
    status = main(["compare", f"a={tmp_path / 'a.tif'}", f"b={tmp_path / 'b.tif'}",
                   f"out={tmp_path / 'o'}", "voxel_size=[1.0,1.0]", "depth_axis=0"])
    assert status == 2
    assert "same shape" in capsys.readouterr().err


def test_two_phase_dataset_without_am_cbd_still_compares():
    # a 2-phase set (e.g. NREL scribbles: solid vs pore) has no PBA and no particles phase "am"
    a = np.array([[0, 1, 1, 0]] * 3, np.uint8)
    b = np.array([[0, 1, 0, 0]] * 3, np.uint8)
    result = compare_segmentations(a, b, voxel_size=(1.0, 1.0), depth_axis=0,
                                   phases=("pore", "solid"))
    diff = {d.metric: d for d in result.differences}
    assert diff["volume_fraction.solid"].difference == pytest.approx(-0.25)
    assert diff["pba.pooled"].difference is None
    assert result.agreement["b vs a"].iou["solid"] == pytest.approx(0.5)


def test_sparse_hand_labels_are_named_so_and_do_not_judge_boundaries():
    import math

    a = np.zeros((4, 12, 12), np.uint8)
    a[:, :, 6:] = 2
    b = a.copy()
    b[:, :, 5] = 2
    scribbles = np.full(a.shape, 255, np.uint8)  # two separate strokes: no boundary between phases
    scribbles[1, 2:4, 1:3] = 0
    scribbles[1, 2:4, 9:11] = 2
    result = compare_segmentations(a, b, reference=scribbles, voxel_size=(1, 1, 1), names=("classical", "learned"),
                                   reference_name="hand labels", blocks_per_axis=1)
    assert result.names == ("classical", "learned", "hand labels")
    judged = result.agreement["learned vs hand labels"]
    assert judged.mean_iou == 1.0 and math.isnan(judged.boundary_f1)  # "not measured", not 0


def test_sparse_hand_labels_correct_each_segmentation_and_say_whether_they_agree(coated_columns):
    """A segmentation missing half the CBD and one with it all: corrected on the labelled slices,
    both land on the hand labels' CBD fraction, and their intervals overlap."""
    from electroseg.analysis import volume_fractions

    truth, missing = coated_columns()
    hand = np.full_like(truth, 255)
    hand[[2, 3]] = truth[[2, 3]]
    result = compare_segmentations(missing, truth, reference=hand, voxel_size=(0.1, 0.05, 0.05),
                                   names=("classical", "learned"), reference_name="hand labels")
    corrected = result.to_dict()["corrected_by_hand_labels"]
    cbd = volume_fractions(truth).fractions["cbd"]
    assert corrected["classical"]["volume_fraction_cbd"]["reported"] == pytest.approx(cbd / 2)
    for name in ("classical", "learned"):
        assert corrected[name]["volume_fraction_cbd"]["estimate"] == pytest.approx(cbd)
    assert corrected["overlap"]["volume_fraction_cbd"] is True
    assert corrected["check"]["labelled"]["slices"] == [2, 3]
    # a dense reference is the truth itself: nothing to correct
    dense = compare_segmentations(missing, truth, reference=truth, voxel_size=(0.1, 0.05, 0.05))
    assert dense.to_dict()["corrected_by_hand_labels"] is None

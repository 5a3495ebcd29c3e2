"""The segmentation's own error from hand-labelled slices: against hand-counted arrays, the
truth itself and generator instances (the truth of the imaged volume is known)."""

import json

import numpy as np
import pytest

from electroseg.analysis import analyze_labels, interface_areas, pba_profile, volume_fractions
from electroseg.analysis.segmentation_error import (
    SliceErrors,
    dense_slices,
    measure_slice_errors,
    segmentation_intervals,
)
from electroseg.errors import InputError

VS = (0.1, 0.05, 0.05)


def test_an_error_the_same_in_every_slice_is_removed_exactly(coated_columns):
    truth, seg = coated_columns()
    hand = np.full_like(truth, 255)
    hand[[2, 3]] = truth[[2, 3]]  # an adjacent pair: the through-slice error is measured too
    result = analyze_labels(seg, voxel_size=VS, hand_labels=hand, collector_connectivity=False,
                            split="none").to_dict()["uncertainty"]
    corrected = result["segmentation"]
    true_fractions = volume_fractions(truth).fractions
    for phase in ("pore", "cbd", "am"):
        assert corrected[f"volume_fraction_{phase}"]["estimate"] == pytest.approx(true_fractions[phase])
    # the reported (uncorrected) values are the segmentation's
    assert corrected["volume_fraction_cbd"]["reported"] == pytest.approx(true_fractions["cbd"] / 2)
    assert corrected["pba_pooled"]["reported"] == pytest.approx(pba_profile(seg, depth_axis=1).pooled)
    assert corrected["pba_pooled"]["estimate"] == pytest.approx(pba_profile(truth, depth_axis=1).pooled)
    areas = interface_areas(truth, voxel_size=VS).per_um
    for pair in ("pore-cbd", "pore-am", "cbd-am"):
        assert corrected[f"surface_{pair}_per_um"]["estimate"] == pytest.approx(areas[pair]), pair
    assert "measured on" in result["segmentation_check"]["through_slice"]
    assert result["segmentation_check"]["labelled"]["slices"] == [2, 3]
    entry = corrected["volume_fraction_cbd"]
    assert entry["ci_low"] <= entry["estimate"] <= entry["ci_high"]
    # the total interval adds the sub-block sampling half width
    total = result["total"]["volume_fraction_cbd"]
    assert total["estimate"] == corrected["volume_fraction_cbd"]["estimate"]
    assert total["ci_low"] <= corrected["volume_fraction_cbd"]["ci_low"]


def test_a_perfect_segmentation_keeps_its_values(coated_columns):
    truth, _ = coated_columns()
    hand = np.full_like(truth, 255)
    hand[1] = truth[1]
    out = analyze_labels(truth, voxel_size=VS, hand_labels=hand, collector_connectivity=False,
                         split="none").to_dict()["uncertainty"]
    for name, entry in out["segmentation"].items():
        if name == "particle_median_diameter_um":
            assert entry["estimate"] is None and "3-D" in entry["note"] and entry["reported"] > 0
            continue
        if entry["reported"] is None:
            continue
        assert entry["estimate"] == pytest.approx(entry["reported"]), name
    # one isolated slice: the through-slice error is not measured, and the check says so
    assert "not measured" in out["segmentation_check"]["through_slice"]


def test_hand_counted_slice_errors():
    seg = np.zeros((3, 4, 8), np.uint8)
    seg[:, :, 4:] = 2
    hand = np.full_like(seg, 255)
    hand[1] = seg[1]
    hand[1, :, 4] = 1  # 4 CBD voxels the segmentation calls AM
    errors = measure_slice_errors(seg, hand, depth_axis=1, tiles_per_slice=2)
    assert errors.planes == (1,) and errors.n_tiles == 2 and errors.labelled_voxels == 32
    assert errors.voxels[0].sum(axis=0).tolist() == [16, 4, 12]
    assert errors.voxels[1].sum(axis=0).tolist() == [16, 0, 16]
    # faces along x (slice axis 1) between pore and CBD in the hand labels: one per row
    assert errors.faces[0][:, 1, 0, 1].sum() == 4 and errors.faces[1][:, 1, 0, 1].sum() == 0
    assert errors.through_pairs == 0
    again = SliceErrors.from_dict(json.loads(json.dumps(errors.to_dict())))
    assert np.array_equal(again.faces, errors.faces) and again.planes == errors.planes
    # what the segmentation called the 4 CBD voxels: AM, voxel by voxel
    assert errors.voxel_joint.sum(axis=0)[2].tolist() == [0, 4, 12]
    with pytest.raises(InputError, match="earlier electroseg"):  # counts kept apart: cannot be shared out
        SliceErrors.from_dict({"phases": ["pore", "cbd", "am"], "depth": 0, "voxels": [], "faces": []})
    out = segmentation_intervals(seg, errors, voxel_size=(1, 1, 1), n_boot=100)
    assert out["segmentation"]["volume_fraction_cbd"]["estimate"] == pytest.approx(4 / 32)
    assert out["segmentation"]["volume_fraction_am"]["estimate"] == pytest.approx(0.5 - 4 / 32)
    assert out["total"] is None  # no sampling intervals given


def test_scribbles_are_not_used_and_the_result_says_why(coated_columns):
    truth, seg = coated_columns()
    hand = np.full_like(truth, 255)
    hand[2, 3:5, 3:5] = truth[2, 3:5, 3:5]  # a scribble: 4 of 192 voxels
    kept, left_out = dense_slices(hand)
    assert left_out == 1 and (kept == 255).all()
    out = analyze_labels(seg, voxel_size=VS, hand_labels=hand, collector_connectivity=False,
                         split="none").to_dict()["uncertainty"]
    assert out["segmentation"] is None and out["total"] is None
    assert "half labelled" in out["segmentation_check"]["note"]


def test_bad_hand_labels_are_refused_before_any_computing(coated_columns):
    truth, seg = coated_columns()
    with pytest.raises(InputError, match="expected the shape"):
        analyze_labels(seg, voxel_size=VS, hand_labels=truth[:, :5], hand_labels_source="h.tif")
    with pytest.raises(InputError, match="depth axis"):
        analyze_labels(seg, voxel_size=VS, depth_axis=0, hand_labels=truth)
    with pytest.raises(InputError, match="h.tif"):
        bad = truth.copy()
        bad[0, 0, 0] = 7
        analyze_labels(seg, voxel_size=VS, hand_labels=bad, hand_labels_source="h.tif")
    errors = measure_slice_errors(seg, truth, depth_axis=1).to_dict()
    with pytest.raises(InputError, match="depth"):
        analyze_labels(seg.transpose(0, 2, 1), voxel_size=VS, depth_axis=2, slice_errors={**errors, "depth": 0},
                       collector_connectivity=False)


def test_errors_measured_elsewhere_apply_to_another_volume(coated_columns):
    """A checkpoint's held-out slices: errors measured on one volume, applied to another."""
    truth, seg = coated_columns()
    hand = np.full_like(truth, 255)
    hand[[1, 2]] = truth[[1, 2]]
    errors = measure_slice_errors(seg, hand, depth_axis=1)
    bigger_truth, bigger_seg = coated_columns(z=10, x=16)
    out = analyze_labels(bigger_seg, voxel_size=VS, slice_errors=errors.to_dict(), collector_connectivity=False,
                         hand_labels_source="the checkpoint's held-out slices", split="none").to_dict()
    corrected = out["uncertainty"]["segmentation"]
    assert corrected["volume_fraction_cbd"]["estimate"] == pytest.approx(volume_fractions(bigger_truth).fractions["cbd"])
    assert out["uncertainty"]["segmentation_check"]["source"] == "the checkpoint's held-out slices"


def test_two_dimensional_images(coated_columns):
    truth, seg = coated_columns()
    out = analyze_labels(seg[0], voxel_size=VS[1:], depth_axis=0, hand_labels=truth[0],
                         collector_connectivity=False, split="none").to_dict()["uncertainty"]
    assert out["segmentation"]["volume_fraction_cbd"]["estimate"] == pytest.approx(
        volume_fractions(truth[0]).fractions["cbd"])
    assert out["segmentation_check"]["through_slice"].startswith("none")


def test_classical_segmentation_of_a_generated_sample_is_corrected_towards_its_truth():
    """A generator instance: the classical route over-counts CBD contacts; three adjacent pairs of
    hand-labelled slices correct PBA and the CBD fraction, and the total intervals hold the truth."""
    from electroseg.classical import segment_volume
    from electroseg.synthetic import load_preset, make_sample

    sample = make_sample(load_preset("nmc_fibsem"), seed=0, shape=[32, 128, 128])
    image = next(iter(sample.images.values())).astype(np.float32)
    seg = np.asarray(segment_volume(image).labels).reshape(image.shape)
    truth = np.asarray(sample.labels)
    hand = np.full_like(truth, 255)
    for z in (6, 7, 15, 16, 24, 25):
        hand[z] = truth[z]
    options = dict(voxel_size=sample.voxel_size, depth_axis=sample.depth_axis, collector_connectivity=False,
                   split="none")
    out = analyze_labels(seg, hand_labels=hand, **options).to_dict()["uncertainty"]
    true = analyze_labels(truth, uncertainty=False, **options).to_dict()
    for metric, value in (("pba_pooled", true["pba"]["pooled"]), ("volume_fraction_cbd", true["volume_fraction"]["cbd"])):
        entry, total = out["segmentation"][metric], out["total"][metric]
        assert abs(entry["estimate"] - value) < abs(entry["reported"] - value), metric
        assert total["ci_low"] <= value <= total["ci_high"], metric


def test_analyze_command_with_hand_labels(tmp_path, capsys, coated_columns):
    from electroseg.cli import main
    from electroseg.io import write_tiff

    truth, seg = coated_columns()
    hand = np.full_like(truth, 255)
    hand[[2, 3]] = truth[[2, 3]]
    seg_path = write_tiff(tmp_path / "seg.tif", seg, voxel_size=VS)
    hand_path = write_tiff(tmp_path / "hand.tif", hand, voxel_size=VS)
    out = tmp_path / "out"
    assert main(["analyze", f"input={seg_path}", f"hand_labels={hand_path}", f"out={out}", "figures=false",
                 "collector_connectivity=false"]) == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    check = metrics["uncertainty"]["segmentation_check"]
    assert check["source"] == str(hand_path) and check["labelled"]["slices"] == [2, 3]
    assert metrics["uncertainty"]["total"]["volume_fraction_cbd"]["estimate"] == pytest.approx(
        volume_fractions(truth).fractions["cbd"])
    # a hand-label file of another shape: one line naming it, nothing written
    short = write_tiff(tmp_path / "short.tif", hand[:, :5], voxel_size=VS)
    assert main(["analyze", f"input={seg_path}", f"hand_labels={short}", f"out={tmp_path / 'bad'}"]) != 0
    err = capsys.readouterr().err
    assert "short.tif" in err and "expected the shape" in err and "Traceback" not in err
    assert not (tmp_path / "bad").exists()


def test_errors_from_other_volumes_give_a_prediction_interval():
    """Six labelled positions where 0, 1, ..., 5 of the 6 rows the segmentation calls CBD are CBD
    (the same in every tile): for another volume (transfer) the interval runs from the smallest
    to the largest single position's correction; for the same volume it is that of the pooled
    counts, narrower."""
    truth = np.full((40, 16, 16), 2, np.uint8)
    truth[:, 12:] = 0
    seg = truth.copy()
    seg[:, :6] = 1                       # everywhere: 6 rows called CBD
    planes = [2, 8, 14, 20, 26, 32]
    for rows, z in enumerate(planes):    # labelled slice k: k of them are CBD
        truth[z, :rows] = 1
    hand = np.full_like(truth, 255)
    hand[planes] = truth[planes]
    errors = measure_slice_errors(seg, hand, depth_axis=1)
    assert np.unique(errors.groups).size == 6
    reported = float((seg == 1).mean())
    shares = np.arange(6) / 6             # P(CBD | called CBD) at each position
    same = segmentation_intervals(seg, errors, voxel_size=VS, n_boot=4000)
    other = segmentation_intervals(seg, errors, voxel_size=VS, n_boot=4000, transfer=True)
    for out in (same, other):
        entry = out["segmentation"]["volume_fraction_cbd"]
        assert entry["reported"] == pytest.approx(reported)
        assert entry["estimate"] == pytest.approx(reported * shares.mean())
    found = other["segmentation"]["volume_fraction_cbd"]
    assert (found["ci_low"], found["ci_high"]) == (pytest.approx(0.0), pytest.approx(reported * shares[-1]))
    mean_only = same["segmentation"]["volume_fraction_cbd"]
    assert found["ci_low"] < mean_only["ci_low"] < mean_only["ci_high"] < found["ci_high"]
    assert other["transfer"] and not same["transfer"] and other["labelled"]["positions"] == 6
    assert other["caution"] is None
    # one labelled pair is one position: the result says the interval cannot show the spread
    few = segmentation_intervals(seg, measure_slice_errors(seg, np.where(np.isin(np.arange(40), [8, 9])[:, None, None],
                                                                         truth, 255).astype(np.uint8)),
                                 voxel_size=VS, n_boot=50)
    assert few["labelled"]["positions"] == 1 and "1 labelled position(s) only" in few["caution"]


def test_without_an_adjacent_pair_the_through_slice_faces_are_read_three_ways():
    """A perfect segmentation of an AM block capped by pore along Z and coated by CBD along X,
    labelled on one isolated slice: two readings of the Z faces (shared out as the X faces; the
    X error per voxel added) are exact, the third (Z PBA equal to X PBA) is not. The estimate is
    their median, the truth; the interval reaches the third."""
    truth = np.zeros((8, 12, 16), np.uint8)
    truth[2:6, 2:10, 2:6] = 2
    truth[2:6, 2:10, 6] = 1                  # the CBD coat: contacts along X only
    hand = np.full_like(truth, 255)
    hand[3] = truth[3]
    out = analyze_labels(truth, voxel_size=VS, hand_labels=hand, collector_connectivity=False,
                         split="none").to_dict()["uncertainty"]
    pba = out["segmentation"]["pba_pooled"]
    true = pba_profile(truth, depth_axis=1).pooled
    # hand-counted: along X, per labelled row one AM|pore and one AM|CBD face (8 rows, 4 slices);
    # along Z, 2 caps of 8 x 4 AM|pore faces
    assert true == pytest.approx(32 / (64 + 64))
    x_only = 0.5
    assert pba["estimate"] == pytest.approx(true)
    assert pba["ci_low"] <= true and pba["ci_high"] == pytest.approx(x_only)
    assert "three ways" in out["segmentation_check"]["through_slice"]


def _separate_balls(shape, count, radii, *, seed):
    """AM (2) balls (spheres or discs) of radius drawn in ``radii``, at least 3 voxels apart, in
    pore (0)."""
    rng = np.random.default_rng(seed)
    truth = np.zeros(shape, np.uint8)
    grid = np.indices(shape)
    balls = []
    while len(balls) < count:
        r = rng.uniform(*radii)
        c = rng.uniform([r + 1] * len(shape), np.array(shape) - r - 1)
        if all(np.linalg.norm(c - c2) > r + r2 + 3 for c2, r2 in balls):
            balls.append((c, r))
            truth[sum((g - ck) ** 2 for g, ck in zip(grid, c)) <= r * r] = 2
    return truth


def _am_moved_by_one(truth, move):
    """The AM boundary moved out ("grown": dilated) or in ("shrunk": its surface voxels to pore)."""
    from scipy import ndimage as ndi

    seg = truth.copy()
    if move == "grown":
        seg[ndi.binary_dilation(truth == 2)] = 2
    else:
        seg[(truth == 2) & ~ndi.binary_erosion(truth == 2)] = 0
    return seg


@pytest.mark.parametrize("move", ["grown", "shrunk"])
def test_the_volume_weighted_median_of_spheres_moved_by_one_voxel_comes_back(move):
    """Separate spheres (r 5-9 voxels, D50 by volume known by counting) segmented one voxel too
    large or too small: the reported D50 is off by about 10 %; six labelled pairs measure the AM
    boundary's displacement, and the corrected D50 comes back within 3 % with its interval."""
    from electroseg.analysis import particle_table, volume_weighted_median

    truth = _separate_balls((40, 72, 72), 14, (5, 9), seed=4)
    counted = particle_table(truth, voxel_size=(1, 1, 1), depth_axis=1)
    assert counted.count == 14
    true_d50 = volume_weighted_median(counted.diameter_um)
    seg = _am_moved_by_one(truth, move)
    hand = np.full_like(truth, 255)
    planes = [z for k in range(1, 7) for z in (k * 40 // 7, k * 40 // 7 + 1)]
    hand[planes] = truth[planes]
    out = analyze_labels(seg, voxel_size=(1, 1, 1), depth_axis=1, hand_labels=hand,
                         collector_connectivity=False).to_dict()["uncertainty"]
    entry = out["segmentation"]["particle_volume_weighted_median_um"]
    assert abs(entry["reported"] / true_d50 - 1) > 0.08
    assert abs(entry["estimate"] / true_d50 - 1) < 0.03
    assert entry["ci_low"] <= true_d50 <= entry["ci_high"]
    total = out["total"]["particle_volume_weighted_median_um"]
    assert total["ci_low"] <= entry["ci_low"] and total["ci_high"] >= entry["ci_high"]
    # the number median keeps no interval, and says where to look
    assert out["segmentation"]["particle_median_diameter_um"]["estimate"] is None
    assert "particle_volume_weighted_median_um" in out["segmentation"]["particle_median_diameter_um"]["note"]


@pytest.mark.parametrize("move", ["grown", "shrunk"])
def test_the_volume_weighted_median_of_discs_moved_by_one_pixel_comes_back(move):
    """The 2-D case: the AM area's ratio gives the diameters' by its square root."""
    from electroseg.analysis import particle_table, volume_weighted_median

    truth = _separate_balls((96, 128), 12, (5, 10), seed=0)
    true_d50 = volume_weighted_median(particle_table(truth, voxel_size=(1, 1), depth_axis=0).diameter_um)
    seg = _am_moved_by_one(truth, move)
    out = analyze_labels(seg, voxel_size=(1, 1), depth_axis=0, hand_labels=truth,
                         collector_connectivity=False).to_dict()["uncertainty"]
    entry = out["segmentation"]["particle_volume_weighted_median_um"]
    assert abs(entry["reported"] / true_d50 - 1) > 0.08
    assert abs(entry["estimate"] / true_d50 - 1) < 0.03

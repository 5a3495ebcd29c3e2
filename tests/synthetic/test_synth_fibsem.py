"""FIB-SEM and CT simulators: exact grey levels with artefacts off, each artefact's effect."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.registration import phase_cross_correlation

from electroseg.errors import InputError
from electroseg.synthetic import narrow_pores, random_drift_shifts, simulate_ct, simulate_fibsem

VOXEL = (0.1, 0.05, 0.05)
OFF = dict(texture=0, shine_through=0, curtaining=0, edge_contrast=0, blur_sigma_um=0, shading=0,
           flicker=0, photons=0, read_noise=0)


def _discs(shape=(12, 64, 64)) -> np.ndarray:
    """Labels constant along Z: AM discs in CBD-coated rings on pore."""
    y, x = np.mgrid[: shape[1], : shape[2]]
    plane = np.zeros(shape[1:], np.uint8)
    for cy, cx, r in [(20, 20, 10), (44, 40, 14), (15, 50, 7)]:
        d = np.hypot(y - cy, x - cx)
        plane[(d <= r + 3) & (plane == 0)] = 1
        plane[d <= r] = 2
    return np.broadcast_to(plane, shape).copy()


def test_all_artefacts_off_gives_exact_phase_levels():
    labels = _discs()
    out = simulate_fibsem(labels, voxel_size=VOXEL, levels=(0.1, 0.5, 0.9), **OFF)
    expected = np.round(np.array([0.1, 0.5, 0.9], np.float32) * 255).astype(np.uint8)[labels]
    assert out.image.dtype == np.uint8 and np.array_equal(out.image, expected)
    assert np.array_equal(out.shifts, np.zeros((labels.shape[0], 2)))


def test_same_seed_same_image_other_seed_differs():
    labels = _discs()
    a = simulate_fibsem(labels, voxel_size=VOXEL, seed=3).image
    b = simulate_fibsem(labels, voxel_size=VOXEL, seed=3).image
    c = simulate_fibsem(labels, voxel_size=VOXEL, seed=4).image
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_drift_shifts_are_recovered_by_registration():
    labels = _discs((8, 64, 64))
    shifts = random_drift_shifts(8, step_px=1.5, seed=2)
    assert np.array_equal(shifts[0], [0.0, 0.0])
    out = simulate_fibsem(labels, voxel_size=VOXEL, shifts=shifts, **OFF)
    assert np.array_equal(out.shifts, shifts)
    ref = out.image[0].astype(float)
    for k in range(1, 8):
        # phase_cross_correlation returns the shift registering moving onto reference = -drift.
        found, _, _ = phase_cross_correlation(ref, out.image[k].astype(float), upsample_factor=20)
        assert np.allclose(-found, shifts[k], atol=0.5), (k, found, shifts[k])


def test_shine_through_fades_with_depth_of_the_pore():
    # One column: pore at z = 0..5, AM wall at z = 6..7.
    labels = np.zeros((8, 4, 4), np.uint8)
    labels[6:] = 2
    out = simulate_fibsem(labels, voxel_size=VOXEL, levels=(0.0, 0.5, 1.0),
                          **{**OFF, "shine_through": 1.0, "shine_through_um": 0.2}).image
    column = out[:, 0, 0].astype(float)
    expected = 255 * np.exp(-(6 - np.arange(6)) * 0.1 / 0.2)
    assert np.allclose(column[:6], np.round(expected), atol=1)
    assert np.all(np.diff(column[:6]) > 0) and column[6] == 255


def test_curtaining_makes_vertical_stripes():
    labels = np.full((6, 64, 64), 2, np.uint8)
    plain = simulate_fibsem(labels, voxel_size=VOXEL, **OFF).image.astype(float)
    striped = simulate_fibsem(labels, voxel_size=VOXEL, **{**OFF, "curtaining": 0.2}).image
    striped = striped.astype(float)
    assert plain.std() == 0
    assert striped.std(axis=2).mean() > 5  # varies along X
    assert striped.std(axis=1).max() < 1e-9  # constant along Y


@pytest.mark.parametrize("artefact", ["texture", "shading", "flicker", "photons", "read_noise",
                                      "edge_contrast", "blur_sigma_um"])
def test_each_artefact_switch_changes_the_image(artefact):
    labels = _discs()
    value = {"texture": 0.1, "shading": 0.2, "flicker": 0.1, "photons": 50.0, "read_noise": 0.05,
             "edge_contrast": 0.5, "blur_sigma_um": 0.1}[artefact]
    off = simulate_fibsem(labels, voxel_size=VOXEL, **OFF).image
    on = simulate_fibsem(labels, voxel_size=VOXEL, **{**OFF, artefact: value}).image
    assert np.mean(on != off) > 0.05


def test_flicker_changes_slice_brightness_only():
    labels = _discs()
    out = simulate_fibsem(labels, voxel_size=VOXEL, **{**OFF, "flicker": 0.1}).image.astype(float)
    means = out.mean(axis=(1, 2))
    assert means.std() > 1.0
    ratio = out / out[0].clip(1)
    assert np.allclose(ratio[:, labels[0] == 2], ratio[:, 20:21, 20], atol=0.02)


def test_bad_inputs_raise_input_error():
    labels = _discs((4, 16, 16))
    with pytest.raises(InputError, match="levels"):
        simulate_fibsem(labels, voxel_size=VOXEL, levels=(0.1, 0.5))
    with pytest.raises(InputError, match="shifts"):
        simulate_fibsem(labels, voxel_size=VOXEL, shifts=np.zeros((3, 2)))
    with pytest.raises(InputError, match="labels"):
        simulate_fibsem(labels[0], voxel_size=VOXEL)
    with pytest.raises(InputError, match="voxel_size"):
        simulate_fibsem(labels, voxel_size=(0.1, 0.05))


def test_ct_without_artefacts_is_exact_and_has_no_drift():
    labels = (_discs((6, 32, 32)) == 2).astype(np.uint8)
    out = simulate_ct(labels, voxel_size=(0.1,) * 3, levels=(0.25, 0.75), blur_sigma_um=0,
                      cupping=0, rings=0, noise_sigma=0)
    assert np.array_equal(out.image, np.where(labels == 1, 191, 64))
    assert not out.shifts.any()
    noisy = simulate_ct(labels, voxel_size=(0.1,) * 3, levels=(0.25, 0.75), seed=1).image
    assert noisy[labels == 1].mean() > noisy[labels == 0].mean() + 50
    assert np.mean(noisy != out.image) > 0.5


def test_grains_vary_only_the_grain_phase():
    labels = _discs()
    off = simulate_fibsem(labels, voxel_size=VOXEL, **OFF).image
    on = simulate_fibsem(labels, voxel_size=VOXEL, **{**OFF, "grain_contrast": 0.2,
                                                      "grain_size_um": 0.3}).image
    assert np.array_equal(on[labels != 2], off[labels != 2])
    am = on[labels == 2].astype(float)
    assert am.std() > 5 and len(np.unique(am)) > 5


def test_noise_seed_changes_noise_but_not_the_specimen():
    labels = _discs()
    specimen = {**OFF, "texture": 0.1, "curtaining": 0.1, "grain_contrast": 0.1}
    a = simulate_fibsem(labels, voxel_size=VOXEL, seed=1, noise_seed=1, **specimen).image
    b = simulate_fibsem(labels, voxel_size=VOXEL, seed=1, noise_seed=2, **specimen).image
    assert np.array_equal(a, b)
    noisy = {**specimen, "read_noise": 0.05}
    a = simulate_fibsem(labels, voxel_size=VOXEL, seed=1, noise_seed=1, **noisy).image
    b = simulate_fibsem(labels, voxel_size=VOXEL, seed=1, noise_seed=2, **noisy).image
    assert not np.array_equal(a, b)


def _slit_and_wide_pore(num_pore_slices: int = 2) -> np.ndarray:
    """AM wall behind ``num_pore_slices`` slices showing a 3-pixel slit (x 1..3) and a wide pore."""
    labels = np.zeros((num_pore_slices + 2, 8, 16), np.uint8)
    labels[num_pore_slices:] = 2
    labels[:num_pore_slices, :, [0, 4]] = 2
    return labels


def test_narrow_slit_shows_little_shine_through():
    options = {**OFF, "shine_through": 1.0, "shine_through_um": 0.2,
               "shine_through_opening_um": 0.2}
    out = simulate_fibsem(_slit_and_wide_pore(), voxel_size=VOXEL, levels=(0.0, 0.5, 1.0),
                          **options).image
    # Wall one slice (0.1 µm) behind; the slit is 3 px = 0.15 µm wide, the open pore counts as
    # fully open: 255 exp(-0.5) (1 - exp(-0.75**2)) = 66, 255 exp(-0.5) = 155.
    fade = 255 * np.exp(-0.1 / 0.2)
    assert np.all(out[1, :, 1:4] == np.round(fade * -np.expm1(-0.75**2)))
    assert np.all(out[1, :, 5:] == np.round(fade))


def test_shine_through_opening_zero_lets_slits_shine_like_open_pores():
    options = {**OFF, "shine_through": 1.0, "shine_through_um": 0.2,
               "shine_through_opening_um": 0.0}
    out = simulate_fibsem(_slit_and_wide_pore(), voxel_size=VOXEL, levels=(0.0, 0.5, 1.0),
                          **options).image
    assert np.all(out[1, :, 1:4] == out[1, :, 5:8])


def test_shine_through_is_limited_by_the_narrowest_opening_on_the_way_to_the_wall():
    labels = _slit_and_wide_pore()
    labels[0] = 0  # an open slice in front of the slit: the slit still shades the wall
    out = simulate_fibsem(labels, voxel_size=VOXEL, levels=(0.0, 0.5, 1.0),
                          **{**OFF, "shine_through": 1.0, "shine_through_um": 0.2}).image
    assert np.all(out[0, :, 1:4] < out[0, :, 5:8] / 2)
    assert np.all(out[0, :, [0, 4]] == np.round(255 * np.exp(-0.1 / 0.2)))  # wall at z = 1


def test_negative_shine_through_opening_raises():
    with pytest.raises(InputError, match="shine_through_opening_um"):
        simulate_fibsem(_discs((4, 16, 16)), voxel_size=VOXEL, shine_through_opening_um=-0.1)


def test_narrow_pores_by_hand():
    # one slice of AM with a 1-pixel slit, a 3-pixel slit and a 7-pixel channel (0.05 µm pixels)
    labels = np.full((1, 20, 30), 2, np.uint8)
    labels[0, :, 3] = 0
    labels[0, :, 8:11] = 0
    labels[0, :, 16:23] = 0
    narrow = narrow_pores(labels, VOXEL, 0.15)[0]
    assert narrow[:, 3].all() and narrow[:, 8:11].all()
    assert not narrow[:, 16:23].any() and not narrow[labels[0] != 0].any()
    one_pixel = narrow_pores(labels, VOXEL, 0.05)[0]
    assert one_pixel[:, 3].all() and not one_pixel[:, 8:11].any()
    assert not narrow_pores(labels, VOXEL, 0.0).any()


def test_unfilled_pores_show_their_own_level():
    labels = _discs((2, 64, 64))
    unfilled = np.zeros(labels.shape, bool)
    unfilled[:, :4, :4] = True  # a pore corner, and CBD/AM voxels that must stay as they are
    unfilled[:, 20, 20] = True   # an AM voxel (disc centre): not a pore, so not emptied
    out = simulate_fibsem(labels, voxel_size=VOXEL, levels=(0.9, 0.3, 0.6), unfilled=unfilled,
                          unfilled_level=0.1, **OFF).image
    assert np.all(out[:, :4, :4] == round(0.1 * 255)) and out[0, 20, 20] == round(0.6 * 255)
    assert np.all(out[:, 60:, :4] == round(0.9 * 255))  # other pores keep the filled level


@pytest.mark.parametrize("kwargs, match", [
    (dict(unfilled_level=0.1), "give both"),
    (dict(unfilled=np.zeros((2, 64, 64), bool)), "give both"),
    (dict(unfilled=np.zeros((2, 8, 8), bool), unfilled_level=0.1), "shape"),
])
def test_unfilled_needs_a_mask_of_the_labels_shape_and_a_level(kwargs, match):
    with pytest.raises(InputError, match=match):
        simulate_fibsem(_discs((2, 64, 64)), voxel_size=VOXEL, **kwargs)


def test_fiducial_band_sits_above_the_specimen_and_its_marks_stay_put():
    labels = _discs((6, 64, 128))
    plain = simulate_fibsem(labels, voxel_size=VOXEL, **OFF).image
    out = simulate_fibsem(labels, voxel_size=VOXEL, fiducial_rows=16, **OFF).image
    assert out.shape == (6, 80, 128)
    np.testing.assert_array_equal(out[:, 16:], plain)  # the specimen is imaged as before
    band = out[:, :16].astype(float)
    assert band[:, :4].max() < 20 and np.median(band[:, 4:]) > 200  # vacuum, then the bright cap
    marks = band[:, 5] < 150  # the marks cut the cap's top rows ...
    assert 2 <= marks[0].sum() <= 15 and (marks == marks[0]).all()  # ... at the same x every slice
    gaps = np.diff(np.flatnonzero(np.diff(marks[0].astype(int)) == 1))
    assert len(set(gaps.tolist())) == len(gaps)  # uneven spacing: no period to alias on


def test_fiducial_band_drifts_with_the_specimen():
    labels = _discs((4, 64, 128))
    shifts = np.array([[0.0, 0.0], [0.5, 1.0], [1.0, -1.5], [-0.5, 2.0]])
    out = simulate_fibsem(labels, voxel_size=VOXEL, shifts=shifts, fiducial_rows=16,
                          **{**OFF, "photons": 300.0}).image.astype(float)
    for k in range(1, 4):
        found, _, _ = phase_cross_correlation(out[0, :16], out[k, :16], upsample_factor=20)
        assert np.allclose(-found, shifts[k], atol=0.25), (k, found, shifts[k])


@pytest.mark.parametrize("rows", [-1, 4])
def test_fiducial_rows_too_small_raises(rows):
    with pytest.raises(InputError, match="fiducial_rows"):
        simulate_fibsem(_discs((2, 16, 16)), voxel_size=VOXEL, fiducial_rows=rows)

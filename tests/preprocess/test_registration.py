"""Slice registration: known shifts of a textured image are recovered."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from electroseg.errors import InputError
from electroseg.preprocess import apply_shifts, estimate_shifts, register_slices


def _textured(shape=(96, 96), seed=0):
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.random(shape), 2.0).astype(np.float32)


def _drifted_stack(shifts, seed=0):
    base = _textured(seed=seed)
    return np.stack([ndi.shift(base, s, order=3, mode="wrap") for s in shifts]), base


def test_known_shifts_recovered_relative_to_slice_zero():
    truth = np.array([[0.0, 0.0], [0.5, -1.25], [2.0, 0.75], [-1.5, 3.0]])
    stack, _ = _drifted_stack(truth)
    shifts = estimate_shifts(stack, highpass_sigma=4)
    np.testing.assert_allclose(shifts, truth, atol=0.1)


def test_vertical_stripes_do_not_lock_the_shift():
    # curtaining fixed in the frame (does not drift with the sample) must not pull dx to 0
    truth = np.array([[0.0, 0.0], [0.0, 2.0], [0.0, 4.0]])
    stack, _ = _drifted_stack(truth)
    stripes = np.where(np.arange(96) % 7 == 0, 0.5, 0.0).astype(np.float32)
    shifts = estimate_shifts(stack + stripes[None, None, :], highpass_sigma=4)
    np.testing.assert_allclose(shifts, truth, atol=0.15)


def test_register_slices_aligns_content_and_moves_every_channel():
    truth = np.array([[0.0, 0.0], [1.0, -2.0], [3.0, 1.0]])
    stack, base = _drifted_stack(truth)
    channels = np.stack([stack, 2 * stack])
    registered, shifts = register_slices(channels, highpass_sigma=4)
    inner = (slice(None), slice(8, -8), slice(8, -8))
    np.testing.assert_allclose(registered[0][inner], np.broadcast_to(base, stack.shape)[inner], atol=0.02)
    np.testing.assert_allclose(registered[1], 2 * registered[0], rtol=1e-5)
    np.testing.assert_allclose(shifts, truth, atol=0.1)


def test_apply_shifts_moves_content_back():
    image = np.zeros((2, 9, 9), np.float32)
    image[:, 4, 4] = 1.0
    image[1] = np.roll(image[1], (2, -1), axis=(0, 1))
    out = apply_shifts(image, np.array([[0, 0], [2, -1]]), order=0)
    assert out[1, 4, 4] == 1.0 and out[1].sum() == 1.0


def test_bad_inputs_raise_input_error():
    with pytest.raises(InputError, match="3-D stack"):
        estimate_shifts(np.zeros((8, 8)))
    with pytest.raises(InputError, match="expected shape \\(3, 2\\)"):
        apply_shifts(np.zeros((3, 8, 8)), np.zeros((2, 2)))


def test_tile_median_ignores_a_locally_moving_structure():
    # the whole field drifts by 1 px in x per slice, but a bright bar (a particle wall cut at
    # an angle) slides 3 px per slice in y: one whole-field correlation is pulled off, the
    # median over tiles is not
    rng = np.random.default_rng(4)
    base = ndi.gaussian_filter(rng.random((128, 128)), 1.0).astype(np.float32)
    stack = []
    for k in range(4):
        plane = base.copy()
        plane[20 + 3 * k : 60 + 3 * k, 20:110] += 1.0
        stack.append(ndi.shift(plane, (0.0, 1.0 * k), order=3, mode="nearest"))
    stack = np.stack(stack)
    truth = np.array([[0.0, k] for k in range(4)])
    tiled = estimate_shifts(stack, tile_size=16, highpass_sigma=4)
    whole = estimate_shifts(stack, tile_size=1000, highpass_sigma=4)
    assert np.abs(tiled - truth).max() < 0.25
    assert np.abs(whole - truth).max() > 0.4 > 0.1 > np.abs(tiled - truth).max()


def test_tile_contrast_cap_ignores_contrasted_walls_moving_over_most_tiles():
    # faint texture drifts by 1 px in x per slice everywhere; strongly contrasted structure (the
    # walls) covers 60 % of the field and slides 1 px per slice in y: it pulls the median over
    # all tiles, while the tiles at most as contrasted as the median tile (high = 1) follow the drift
    rng = np.random.default_rng(7)
    texture = ndi.gaussian_filter(rng.random((128, 160)), 1.0).astype(np.float32)
    walls = 4 * ndi.gaussian_filter(rng.random((128, 96)), 2.0).astype(np.float32)
    stack = []
    for k in range(4):
        plane = texture.copy()
        plane[:, 64:] += ndi.shift(walls, (1.0 * k, 0.0), order=3, mode="wrap")
        stack.append(ndi.shift(plane, (0.0, 1.0 * k), order=3, mode="nearest"))
    stack, truth = np.stack(stack), np.array([[0.0, k] for k in range(4)])
    every = estimate_shifts(stack, tile_size=16, highpass_sigma=4)
    capped = estimate_shifts(stack, tile_size=16, highpass_sigma=4, tile_contrast=[0.25, 1.0])
    assert np.abs(every - truth).max() > 0.6
    assert np.abs(capped - truth).max() < 0.25


@pytest.mark.parametrize("value", [[0.5], [1.5, None], [0.25, 0.8], ["a", 1], None])
def test_bad_tile_contrast_raises_input_error(value):
    with pytest.raises(InputError, match="tile_contrast: expected \\[low, high\\]"):
        estimate_shifts(np.zeros((2, 32, 32), np.float32), tile_contrast=value)


def _marked_stack(truth, *, specimen_motion=(0.0, 0.0), noise=0.02, seed=5):
    """A specimen whose content slides by ``specimen_motion`` px per slice (its own change from
    slice to slice) under a static 24-row band with uneven marks; the whole field then drifts by
    ``truth``. Independent answer: the drift applied."""
    from electroseg.synthetic.fibsem import _fiducial_band

    rng = np.random.default_rng(seed)
    specimen = ndi.gaussian_filter(rng.random((96, 128)), 2.0).astype(np.float32)
    band = _fiducial_band(len(truth), 24, 128, texture=0.05, rng=rng)
    planes = []
    for k, shift in enumerate(truth):
        moved = ndi.shift(specimen, np.multiply(specimen_motion, k), order=3, mode="wrap")
        plane = np.concatenate([band[k], moved])
        planes.append(ndi.shift(plane, shift, order=3, mode="nearest")
                      + noise * rng.standard_normal(plane.shape).astype(np.float32))
    return np.stack(planes)


def test_fiducial_band_gives_the_drift_not_the_specimen_motion():
    # the specimen slides 1.5 px per slice in x on top of the drift; registering on the band
    # recovers the drift alone, registering on the specimen follows the slide
    truth = np.cumsum(np.random.default_rng(1).normal(0, 0.4, (12, 2)), axis=0)
    truth -= truth[0]
    stack = _marked_stack(truth, specimen_motion=(0.0, 1.5))
    marked = estimate_shifts(stack, fiducial_roi=[[0, 24], None], highpass_sigma=4)
    assert np.sqrt(np.mean(np.sum((marked - truth) ** 2, axis=1))) < 0.1
    specimen = estimate_shifts(stack[:, 24:], highpass_sigma=4)
    assert np.abs(specimen[-1, 1] - truth[-1, 1] - 11 * 1.5) < 1.0


def test_register_slices_with_fiducial_roi_moves_the_whole_field():
    truth = np.array([[0.0, 0.0], [1.25, -0.5], [2.5, 1.75], [-0.75, 3.0]])
    stack = _marked_stack(truth, noise=0.0)
    registered, shifts = register_slices(stack, fiducial_roi=[[0, 24], [None, None]], highpass_sigma=4, order=3)
    np.testing.assert_allclose(shifts, truth, atol=0.1)
    inner = (slice(None), slice(30, -8), slice(8, -8))  # the specimen, below the band
    error = np.abs(registered[inner] - registered[0][inner[1:]]).mean()
    before = np.abs(stack[inner] - stack[0][inner[1:]]).mean()
    assert error < 0.1 * before


@pytest.mark.parametrize("roi, message", [
    ([[0, 24]], "expected \\[\\[y0, y1\\], \\[x0, x1\\]\\]"),
    ([[0, 24, 3], None], "start, stop\\] pairs"),
    ([[0, 4], None], "keeps fewer than 8 pixels for axis 0"),
    ([None, [200, 300]], "is empty for axis 1"),
])
def test_bad_fiducial_roi_raises_input_error(roi, message):
    with pytest.raises(InputError, match=message):
        estimate_shifts(np.random.default_rng(0).random((3, 64, 128)), fiducial_roi=roi)


def test_constant_fiducial_region_raises_input_error():
    stack = np.random.default_rng(0).random((3, 64, 64)).astype(np.float32)
    stack[:, :16] = 0.5
    with pytest.raises(InputError, match="no texture"):
        estimate_shifts(stack, fiducial_roi=[[0, 16], None])


def test_fiducial_region_is_tracked_under_drift_larger_than_the_band():
    # 19 px downwards and 9.5 px sideways across a 24-row band: fixed windows alias (a circular
    # correlation of 24 rows cannot tell +19 from -5); the tracked region follows the marks
    truth = np.outer(np.arange(20), [1.0, 0.5])
    stack = _marked_stack(truth, seed=6)
    shifts = estimate_shifts(stack, fiducial_roi=[[0, 24], None], highpass_sigma=4)
    assert np.sqrt(np.mean(np.sum((shifts - truth) ** 2, axis=1))) < 0.1


def test_marks_leaving_the_image_are_warned_about(caplog):
    truth = np.outer(np.arange(16), [-1.0, 0.0])  # upwards: the band leaves through the top edge
    with caplog.at_level("WARNING", logger="electroseg.preprocess.registration"):
        estimate_shifts(_marked_stack(truth, seed=7), fiducial_roi=[[0, 24], None], highpass_sigma=4)
    assert "reached the image edge" in caplog.text


def test_register_slices_on_a_chosen_channel():
    truth = np.array([[0.0, 0.0], [1.0, -2.0], [3.0, 1.0]])
    stack, _ = _drifted_stack(truth)
    decoy, _ = _drifted_stack(np.zeros((3, 2)))  # a channel that does not drift
    _, shifts = register_slices(np.stack([decoy, stack]), highpass_sigma=4, channel=1)
    np.testing.assert_allclose(shifts, truth, atol=0.1)
    _, shifts = register_slices(np.stack([decoy, stack]), highpass_sigma=4)  # default: the first
    np.testing.assert_allclose(shifts, 0.0, atol=0.1)
    with pytest.raises(InputError, match="expected channel in 0..1"):
        register_slices(np.stack([decoy, stack]), channel=2)
    with pytest.raises(InputError, match="single-channel stack"):
        register_slices(stack, channel=1)

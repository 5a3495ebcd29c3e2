"""preprocess_volume: ordered steps, logging, 2-D skips, multi-channel, QC files."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from electroseg.errors import InputError
from electroseg.preprocess import preprocess_volume, write_preprocess_qc


def _stack(shifts, seed=0):
    base = ndi.gaussian_filter(np.random.default_rng(seed).random((64, 64)), 2.0).astype(np.float32)
    return np.stack([ndi.shift(base, s, order=3, mode="wrap") for s in shifts])


def test_steps_run_in_order_and_are_logged():
    stack = _stack([[0, 0], [1.0, 0.5], [2.0, -1.0]])
    result = preprocess_volume(stack, steps=[
        {"step": "register_slices", "highpass_sigma": 4},
        {"step": "crop", "roi": [None, [4, 60], [4, 60]]},
        {"step": "denoise"},
    ])
    assert [r["step"] for r in result.log] == ["register_slices", "crop", "denoise"]
    assert result.image.shape == (3, 56, 56) and result.image.dtype == np.float32
    np.testing.assert_allclose(result.shifts, [[0, 0], [1.0, 0.5], [2.0, -1.0]], atol=0.1)
    assert list(result.as_table().columns) == ["slice", "dy", "dx"]
    assert result.to_dict()["shape"] == [3, 56, 56]


def test_2d_image_skips_steps_that_need_z():
    image = _stack([[0, 0]])[0]
    result = preprocess_volume(image, steps=[{"step": "register_slices"}, {"step": "normalize_slices"}])
    assert [r["status"] for r in result.log] == ["skipped", "done"]
    assert result.shifts is None
    np.testing.assert_array_equal(result.image, image)


def test_multichannel_registered_on_first_channel():
    first = _stack([[0, 0], [2.0, 1.0]])
    second = np.stack([ndi.shift(np.eye(64, dtype=np.float32) * 5, s, order=1) for s in [[0, 0], [2.0, 1.0]]])
    result = preprocess_volume(np.stack([first, second]), steps=[{"step": "register_slices", "highpass_sigma": 4}],
                               multichannel=True)
    np.testing.assert_allclose(result.shifts[1], [2.0, 1.0], atol=0.1)
    # the second channel moved by the first channel's shifts: its slices now agree
    inner = (slice(8, -8), slice(8, -8))
    assert np.abs(result.image[1, 1][inner] - result.image[1, 0][inner]).mean() < 0.1


def test_qc_files_written(tmp_path):
    stack = _stack([[0, 0], [1.0, 0.0]])
    result = preprocess_volume(stack, steps=[{"step": "register_slices", "highpass_sigma": 4}])
    written = write_preprocess_qc(result, stack, tmp_path)
    assert {p.name for p in written} == {"shifts.csv", "shifts.png", "qc_preprocess.png"}
    assert (tmp_path / "shifts.csv").read_text().startswith("slice,dy,dx")


def test_qc_figure_of_a_multichannel_image_shows_the_chosen_channel(tmp_path, monkeypatch):
    from electroseg.preprocess import qc

    shown = {}
    monkeypatch.setattr(qc, "plot_before_after",
                        lambda before, after, path, label="": shown.update(before=before, after=after, label=label))
    raw = np.stack([_stack([[0, 0], [1.0, 0.0]]), 2 * _stack([[0, 0], [0.0, 0.0]])])
    result = preprocess_volume(raw, steps=[{"step": "register_slices", "highpass_sigma": 4}], multichannel=True)
    write_preprocess_qc(result, raw, tmp_path, channel=1, label="tld")
    np.testing.assert_array_equal(shown["before"], raw[1])
    np.testing.assert_array_equal(shown["after"], result.image[1])
    assert shown["label"] == "tld"
    write_preprocess_qc(result, raw, tmp_path)  # no channel given: the first one
    np.testing.assert_array_equal(shown["before"], raw[0])


def test_bad_steps():
    with pytest.raises(InputError, match="unknown step"):
        preprocess_volume(np.zeros((4, 4)), steps=[{"step": "sharpen"}])
    with pytest.raises(InputError, match="expected mappings"):
        preprocess_volume(np.zeros((4, 4)), steps=["denoise"])
    with pytest.raises(InputError, match="bad options"):
        preprocess_volume(np.zeros((4, 4)), steps=[{"step": "denoise", "radius": 3}])


def test_registration_channel_by_detector_name():
    first = _stack([[0, 0], [0, 0]])
    second = _stack([[0, 0], [2.0, 1.0]])
    steps = [{"step": "register_slices", "channel": "tld", "highpass_sigma": 4}]
    result = preprocess_volume(np.stack([first, second]), steps=steps, multichannel=True,
                               channel_names=["cbs", "tld"])
    np.testing.assert_allclose(result.shifts[1], [2.0, 1.0], atol=0.1)
    assert result.log[0]["channel"] == "tld"
    with pytest.raises(InputError, match="channel 'se' is not a channel of this image \\(expected one of"):
        preprocess_volume(np.stack([first, second]), steps=[{"step": "register_slices", "channel": "se"}],
                          multichannel=True, channel_names=["cbs", "tld"])
    with pytest.raises(InputError, match="channels have no names"):
        preprocess_volume(np.stack([first, second]), steps=steps, multichannel=True)
    with pytest.raises(InputError, match="bad options"):
        preprocess_volume(second, steps=[{"step": "register_slices", "sigma": 3}])

"""Normalisation bounds from a strided sample: same as training, same for lazy and in-memory data."""

import numpy as np
import pytest
import torch
import zarr

from electroseg.errors import InputError
from electroseg.inference.normalize import ChannelBounds, intensity_bounds, strided_sample
from electroseg.models import normalize_intensity


@pytest.mark.parametrize("normalization", [
    {"method": "percentile", "lower": 0.5, "upper": 99.5},
    {"method": "minmax"},
    {"method": "none"},
])
def test_bounds_reproduce_training_normalisation(normalization):
    volume = np.random.default_rng(0).gamma(2.0, 1000.0, (6, 30, 40)).astype(np.uint16)
    bounds = intensity_bounds(volume, normalization)
    np.testing.assert_array_equal(bounds.apply(volume), normalize_intensity(volume, normalization))


def test_strided_sample_matches_flat_stride_on_a_volume_above_the_sample_cap(monkeypatch):
    import electroseg.inference.normalize as module

    monkeypatch.setattr(module, "MAX_SAMPLES", 1000)
    volume = np.arange(7 * 130 * 17, dtype=np.float32).reshape(7, 130, 17)  # 15470 // 1000 -> step 15, plane 2210 not a multiple
    np.testing.assert_array_equal(strided_sample(volume), volume.reshape(-1)[::15])


def test_lazy_zarr_gives_the_same_bounds_as_numpy(tmp_path):
    volume = np.random.default_rng(1).integers(0, 4000, (9, 20, 25)).astype(np.uint16)
    store = zarr.open_array(str(tmp_path / "v.zarr"), mode="w", shape=volume.shape, dtype=volume.dtype,
                            chunks=(2, 10, 10))
    store[...] = volume
    spec = {"method": "percentile", "lower": 2, "upper": 98}
    assert intensity_bounds(store, spec) == intensity_bounds(volume, spec)


def test_hand_worked_minmax_and_constant_channel():
    bounds = intensity_bounds(np.array([[[2, 4], [6, 10]]]), {"method": "minmax"})
    assert bounds == ChannelBounds(2.0, 10.0)
    np.testing.assert_allclose(bounds.apply(np.array([2, 6, 10, 12])), [0, 0.5, 1, 1])
    flat = intensity_bounds(np.full((2, 3, 3), 7), {"method": "percentile"})
    np.testing.assert_array_equal(flat.apply(np.full((2, 3, 3), 7)), 0)


def test_bad_normalisation_is_input_error():
    with pytest.raises(InputError, match="expected method in"):
        intensity_bounds(np.zeros((1, 2, 2)), {"method": "zscore"})
    with pytest.raises(InputError, match="lower < upper"):
        intensity_bounds(np.zeros((1, 2, 2)), {"method": "percentile", "lower": 90, "upper": 10})


class _NearestLevel(torch.nn.Module):
    """Pointwise: label k where the normalised x is nearest to level (0.3, 0.5, 0.7)[k]."""

    def forward(self, x):
        return torch.cat([-(x - level) ** 2 for level in (0.3, 0.5, 0.7)], dim=1)


def _nearest_level(x: np.ndarray) -> np.ndarray:
    return np.digitize(x, [0.4, 0.6]).astype(np.uint8)


def test_a_given_intensity_window_replaces_the_rule_and_makes_a_crop_agree(kit):
    """A pointwise predictor: with the parent's window a crop gets the whole image's labels
    exactly; with its own percentile window it does not."""
    from electroseg.inference import predict_volume

    spec = kit.tiny_spec(name="multichannel2d", patch_size=(16, 16))
    image = kit.grains((1, 40, 40), seed=3)[0].astype(np.float32)
    image[:, :12] += 30000  # the crop below leaves this bright strip out: its own window moves
    model = _NearestLevel()
    whole = predict_volume(model, image, spec=spec, precision="fp32")
    window = [whole.intensity[0]["lo"], whole.intensity[0]["hi"]]
    crop = (slice(8, 40), slice(14, 40))
    given = predict_volume(model, image[crop], spec=spec, precision="fp32", intensity_window=window)
    own = predict_volume(model, image[crop], spec=spec, precision="fp32")
    assert given.intensity[0]["route"] == "given" and own.intensity[0]["route"] == "own"
    assert np.array_equal(given.labels, whole.labels[crop])
    assert (own.labels != whole.labels[crop]).mean() > 0.05
    # hand-computed: (x - lo) / (hi - lo) clipped to [0, 1], then the nearest level
    expected = _nearest_level(np.clip((image - 1000.0) / 49000.0, 0, 1))
    found = predict_volume(model, image, spec=spec, precision="fp32", intensity_window=[1000, 50000]).labels
    assert (found != expected).sum() <= 2  # float32 rounding exactly at a level boundary


@pytest.mark.parametrize("window, message", [
    ([3, 1], "expected [lo, hi] with lo < hi, got [3, 1]"),
    ([[0, 1], [0, 2]], "got [[0, 1], [0, 2]]"),
    ("dark", "got 'dark', which cannot be read"),
    ([0, float("nan")], "with lo < hi"),
])
def test_a_bad_intensity_window_is_one_input_error(kit, window, message):
    from electroseg.errors import InputError
    from electroseg.inference import predict_volume

    spec = kit.tiny_spec(name="multichannel2d", patch_size=(16, 16))
    with pytest.raises(InputError, match="intensity_window") as err:
        predict_volume(kit.PlusOne(), np.zeros((20, 20), np.float32), spec=spec, intensity_window=window)
    assert message in str(err.value)


def test_intensity_window_from_a_prediction_record(tmp_path):
    from electroseg.inference.inputs import check_intensity_window

    record = tmp_path / "prediction.json"
    record.write_text('{"intensity": [{"lo": 38.0, "hi": 255.0, "route": "dataset"}]}')
    assert check_intensity_window(record, 1) == ((38.0, 255.0),)
    assert check_intensity_window(str(record), 1) == ((38.0, 255.0),)
    with pytest.raises(InputError, match="expected \\[lo, hi\\] per channel, 2 channels"):
        check_intensity_window(record, 2)
    record.write_text('{"shape": [3, 4]}')
    with pytest.raises(InputError, match="expected a prediction.json with an 'intensity' list"):
        check_intensity_window(record, 1)
    record.write_text('{"intensity": [{"lo": null, "hi": null, "route": "none"}]}')
    with pytest.raises(InputError, match="records no intensity window"):
        check_intensity_window(record, 1)

"""Normalisation bounds from a strided sample: same as training, same for lazy and in-memory data."""

import numpy as np
import pytest
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

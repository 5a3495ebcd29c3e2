"""Curtaining removal: added vertical stripes go, a stripe-free image stays nearly unchanged.

The filter is linear, so a striped image splits exactly into "filter(stripes)" (what is left of
the stripes) and "filter(clean) - clean" (damage to a stripe-free image); each is tested alone.
"""

import numpy as np
import pytest
from scipy import ndimage as ndi

from electroseg.errors import InputError
from electroseg.preprocess import remove_curtaining


def _blobs(shape=(256, 256), seed=1):
    rng = np.random.default_rng(seed)
    return 100.0 + 40.0 * ndi.gaussian_filter(rng.standard_normal(shape), 2.0).astype(np.float32)


def _curtains(shape=(256, 256), seed=2):
    """Sparse stripes 1-3 px wide, constant along Y, of random sign and 8-15 grey levels."""
    rng = np.random.default_rng(seed)
    profile = np.zeros(shape[1], np.float32)
    for x0 in rng.choice(shape[1] - 3, 12, replace=False):
        profile[x0 : x0 + rng.integers(1, 4)] += rng.choice([-1, 1]) * rng.uniform(8, 15)
    return np.broadcast_to(profile, shape)


def _narrow(profile):
    """Part of a column profile narrower than ~8 px (what curtaining looks like)."""
    return profile - ndi.gaussian_filter1d(profile, 8)


def test_added_stripes_are_removed():
    stripes = _curtains()
    left = remove_curtaining(100.0 + stripes, level=5) - 100.0
    inner = slice(16, -16)
    assert np.abs(_narrow(left.mean(axis=0)))[inner].mean() < 0.15 * np.abs(_narrow(stripes[0])).mean()
    assert np.abs(left[inner, inner]).max() < 0.2 * np.abs(stripes).max()


def test_stripes_removed_on_top_of_an_image():
    clean = _blobs()
    restored = remove_curtaining(clean + _curtains(), level=5)
    before = np.abs(_narrow(_curtains()[0])).mean()
    after = np.abs(_narrow((restored - remove_curtaining(clean, level=5)).mean(axis=0)))[16:-16].mean()
    assert after < 0.15 * before


@pytest.mark.parametrize(("level", "tolerance"), [(3, 0.1), (5, 0.2)])
def test_stripe_free_image_nearly_unchanged(level, tolerance):
    clean = _blobs()
    restored = remove_curtaining(clean, level=level)
    assert np.abs(restored - clean)[16:-16, 16:-16].mean() < tolerance * clean.std()
    assert abs(float(restored.mean() - clean.mean())) < 0.01 * clean.std()


def test_default_level_reduces_fine_stripes():
    stripes = _curtains()
    left = remove_curtaining(100.0 + stripes) - 100.0
    assert np.abs(left[16:-16, 16:-16]).max() < 0.4 * np.abs(stripes).max()


def test_stack_and_dtype():
    stack = np.stack([_blobs((64, 64), seed=s) for s in range(3)]).astype(np.uint8)
    out = remove_curtaining(stack)
    assert out.shape == stack.shape and out.dtype == np.float32


def test_bad_options():
    with pytest.raises(InputError, match="wavelet"):
        remove_curtaining(_blobs(), wavelet="nope")
    with pytest.raises(InputError, match="sigma"):
        remove_curtaining(_blobs(), sigma=0)

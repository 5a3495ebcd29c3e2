"""Shading flattening, flicker normalisation, denoising and cropping on hand-made arrays."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from electroseg.errors import InputError
from electroseg.preprocess import crop, denoise, flatten_shading, normalize_slices


def _texture(shape, seed=0):
    return ndi.gaussian_filter(np.random.default_rng(seed).random(shape), 1.0).astype(np.float32)


def test_flatten_shading_removes_multiplicative_vignette():
    yy, xx = np.mgrid[:128, :128]
    gain = 1.0 - 0.4 * ((yy - 64) ** 2 + (xx - 64) ** 2) / 64**2
    pattern = 100.0 + 10.0 * _texture((128, 128))
    flat = flatten_shading(pattern * gain, sigma=16, mode="divide", downsample=4)
    inner = (slice(16, -16), slice(16, -16))
    # the block means of the flattened image vary far less than those of the shaded one
    blocks = lambda a: a[inner].reshape(6, 16, 6, 16).mean(axis=(1, 3))
    assert np.ptp(blocks(flat)) < 0.2 * np.ptp(blocks(pattern * gain))


def test_flatten_shading_leaves_a_flat_image_flat():
    image = np.full((3, 40, 40), 7.0, np.float32)
    np.testing.assert_allclose(flatten_shading(image, sigma=5, downsample=2), image, rtol=1e-5)


def test_normalize_slices_removes_flicker_and_keeps_shape():
    base = 100.0 + 20.0 * _texture((20, 64, 64))
    gains = 1.0 + 0.1 * np.random.default_rng(3).standard_normal(20)
    gains[0] = 1.0
    flickered = base * gains[:, None, None].astype(np.float32)
    out = normalize_slices(flickered, z_window=21)
    means = out.mean(axis=(1, 2))
    assert out.shape == base.shape and out.dtype == np.float32
    assert means.std() < 0.2 * flickered.mean(axis=(1, 2)).std()


def test_normalize_slices_skips_2d():
    image = _texture((16, 16))
    np.testing.assert_array_equal(normalize_slices(image), image)


def test_median_denoise_removes_salt_and_matches_scipy():
    image = _texture((2, 30, 40))
    np.testing.assert_array_equal(denoise(image), ndi.median_filter(image, size=(1, 3, 3), mode="nearest"))
    np.testing.assert_array_equal(
        denoise(image, size=5), ndi.median_filter(image, size=(1, 5, 5), mode="nearest")
    )


def test_other_denoisers_reduce_noise():
    rng = np.random.default_rng(0)
    clean = np.zeros((32, 32), np.float32)
    clean[8:24, 8:24] = 1.0
    noisy = clean + 0.2 * rng.standard_normal(clean.shape).astype(np.float32)
    for method, options in [("bilateral", {"size": 5, "strength": 0.2}), ("nl_means", {"size": 3, "strength": 0.1}),
                            ("gaussian", {"strength": 1.0})]:
        smooth = denoise(noisy, method=method, **options)
        assert np.abs(smooth - clean).mean() < 0.8 * np.abs(noisy - clean).mean(), method


def test_crop_and_bad_inputs():
    volume = np.arange(2 * 4 * 5).reshape(2, 4, 5)
    assert crop(volume, roi=[None, [1, 3], [2, None]]).shape == (2, 2, 3)
    with pytest.raises(InputError, match="empty"):
        crop(volume, roi=[[1, 1], None, None])
    with pytest.raises(InputError, match="method"):
        denoise(volume, method="wiener")
    with pytest.raises(InputError, match="mode"):
        flatten_shading(volume, mode="log")
    with pytest.raises(InputError, match="percentiles"):
        normalize_slices(volume, percentiles=(90, 10))

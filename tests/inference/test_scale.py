"""Predicting at another scale: feature size, the auto rule, labels back on the input's grid."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from electroseg.errors import InputError
from electroseg.inference.scale import auto_factor, check_scale, feature_length


def _field(seed: int = 0, shape=(96, 96), sigma: float = 2.0) -> np.ndarray:
    return ndimage.gaussian_filter(np.random.default_rng(seed).random(shape), sigma)


def test_feature_length_follows_the_image_scale():
    base = _field()
    doubled = ndimage.zoom(base, 2, order=1)
    assert 2 * feature_length(base) - 2 <= feature_length(doubled) <= 2 * feature_length(base) + 2
    assert feature_length(_field(sigma=4.0)) > feature_length(_field(sigma=1.5))
    # a volume: the median over planes; units do not matter (percentile normalised)
    volume = np.stack([_field(s) for s in range(6)])
    assert feature_length(volume * 1000 + 7) == feature_length(volume)


def test_auto_rule_and_bad_values():
    assert auto_factor(40.0, 16.0) == pytest.approx(0.4)
    assert auto_factor(10.0, 16.0) == 1.0 and auto_factor(40.0, None) == 1.0
    assert check_scale("auto") == "auto" and check_scale(0.5) == 0.5
    for bad in (0, 1.5, "half", None):
        with pytest.raises(InputError, match="scale: expected auto or a factor"):
            check_scale(bad)


def test_prediction_at_another_scale_comes_back_on_the_input_grid():
    from electroseg.inference import load_checkpoint, predict_volume
    from electroseg.synthetic import load_preset, make_sample

    model = load_checkpoint("pretrained:electrode-3phase")
    assert model.feature_length == pytest.approx(18.3)
    image = np.asarray(next(iter(make_sample(load_preset("tiny"), seed=0).images.values())))[:4]
    native = predict_volume(model, image, scale=1.0, precision="fp32")
    # features inside the training range: auto leaves the image alone
    assert feature_length(image) <= model.feature_length
    assert np.array_equal(predict_volume(model, image, precision="fp32").labels, native.labels)
    half = predict_volume(model, image, scale=0.5, probabilities="float16", precision="fp32")
    assert half.labels.shape == image.shape and half.probabilities.shape == (3, *image.shape)
    assert (half.labels == native.labels).mean() > 0.6
    # the same stack enlarged 6 times in-plane: auto shrinks it by the rule's factor
    big = np.kron(image[:2], np.ones((1, 6, 6), image.dtype))
    factor = auto_factor(feature_length(big), model.feature_length)
    assert factor < 1.0
    auto = predict_volume(model, big, precision="fp32")
    assert auto.labels.shape == big.shape
    assert np.array_equal(auto.labels, predict_volume(model, big, scale=factor, precision="fp32").labels)
    assert not np.array_equal(auto.labels, predict_volume(model, big, scale=1.0, precision="fp32").labels)


def test_your_own_checkpoint_is_never_resampled_and_streamed_inputs_refuse_a_factor(tmp_path, kit):
    from electroseg.inference import load_checkpoint, predict_batch
    from electroseg.io import write_tiff

    ckpt = kit.save_checkpoint(tmp_path / "m.ckpt", kit.tiny_spec(patch_size=(8, 16, 16)))
    assert load_checkpoint(ckpt).feature_length is None
    write_tiff(tmp_path / "stack.tif", kit.grains((12, 20, 18), seed=2), voxel_size=(0.1, 0.05, 0.05))
    result = predict_batch(ckpt, [str(tmp_path / "stack.tif")], tmp_path / "out", chunked="true", scale=0.5,
                           precision="fp32")
    assert result.failed == 1 and "only the in-memory route resamples" in result.results[0].error

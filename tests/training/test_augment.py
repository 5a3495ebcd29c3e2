import numpy as np
import pytest

from electroseg.errors import InputError
from electroseg.training.augment import build_augmentation


def _coded_volume(rng):
    labels = rng.integers(0, 3, size=(1, 4, 8, 8)).astype(np.float32)
    labels[0, :, 0, 0] = 7  # mark a corner to see in-plane moves
    return labels


def test_spatial_augmentation_keeps_image_and_labels_aligned_and_never_flips_z():
    rng = np.random.default_rng(0)
    transform = build_augmentation({"flip": True, "rotate90": True}, spatial_dims=3, seed=1)
    moved = 0
    for _ in range(20):
        coded = _coded_volume(rng)
        coded[0] += np.arange(4)[:, None, None] * 100  # z encoded in the value
        out = transform({"image": coded.copy(), "label": coded.copy(), "weight": coded.copy()})
        image, label = np.asarray(out["image"]), np.asarray(out["label"])
        assert np.array_equal(image, label)
        # every z slice keeps its z code: the milling axis is never flipped or turned
        assert all(((image[0, z] // 100) == z).all() for z in range(4))
        moved += not np.array_equal(image, coded)
    assert moved > 5


def test_intensity_augmentation_changes_image_only():
    rng = np.random.default_rng(0)
    options = {"flip": False, "rotate90": False, "scale": 0.2, "noise_std": 0.1, "prob": 1.0}
    transform = build_augmentation(options, spatial_dims=2, seed=0)
    label = rng.integers(0, 3, size=(1, 8, 8)).astype(np.float32)
    out = transform({"image": label.copy(), "label": label.copy(), "weight": label.copy()})
    assert not np.allclose(np.asarray(out["image"]), label)
    assert np.array_equal(np.asarray(out["label"]), label)


def test_unknown_option_rejected():
    with pytest.raises(InputError, match="unknown options"):
        build_augmentation({"elastic": True}, spatial_dims=3)

import numpy as np
import pytest

from electroseg.training.targets import TrainingTarget
from electroseg.training.sampling import PatchDataset, TrainingVolume, extract_patch


def _volume(labels, channels=1):
    image = np.stack([labels.astype(np.float32) + 10 * c for c in range(channels)])
    weight = (labels != 255).astype(np.float32)
    return TrainingVolume(image, TrainingTarget(labels.astype(np.uint8), weight))


def test_2_5d_patch_stacks_neighbour_slices_detector_major():
    labels = np.broadcast_to(np.arange(5, dtype=np.uint8)[:, None, None], (5, 4, 4)).copy()
    image, lab, weight = extract_patch(_volume(labels, channels=2), (0, 2, 2), patch_size=(4, 4),
                                       context_slices=1)
    assert image.shape == (6, 4, 4) and lab.shape == (4, 4)
    # slice 0 with neighbours clip(-1, 0, 1) = 0, 0, 1; second detector = first + 10
    assert image[:, 0, 0].tolist() == [0, 0, 1, 10, 10, 11]
    assert (lab == 0).all()


def test_3d_patch_shifted_inside_volume():
    labels = np.arange(6 * 6 * 6).reshape(6, 6, 6) % 3
    image, lab, _ = extract_patch(_volume(labels), (5, 5, 5), patch_size=(4, 4, 4), context_slices=None)
    assert image.shape == (1, 4, 4, 4)
    assert np.array_equal(lab, labels[2:, 2:, 2:])


def test_class_balance_draws_rare_phase_as_often_as_common():
    labels = np.zeros((8, 32, 32), np.uint8)
    labels[:, :2, :2] = 1  # 32 of 8192 voxels
    data = PatchDataset([_volume(labels)], patch_size=(4, 8, 8), num_classes=2, length=10,
                        class_balance=1.0, seed=0)
    centres = [data.sample_center()[1] for _ in range(2000)]
    rare = np.mean([labels[c] == 1 for c in centres])
    assert rare == pytest.approx(0.5, abs=0.05)


def test_small_volume_padded_with_unlabelled_voxels():
    labels = np.ones((2, 6, 6), np.uint8)
    data = PatchDataset([_volume(labels)], patch_size=(4, 8, 8), num_classes=2, length=3, seed=0)
    item = data[0]
    assert tuple(item["image"].shape) == (1, 4, 8, 8)
    assert item["weight"].sum().item() == 2 * 6 * 6  # only the real voxels carry weight
    assert set(item["label"][item["weight"] == 0].tolist()) == {255}

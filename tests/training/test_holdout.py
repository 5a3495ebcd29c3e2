"""Held-out validation labels: which labels are set aside, and that training never sees them."""

from __future__ import annotations

import numpy as np

from electroseg.training.holdout import hold_out_labels, labelled_units
from electroseg.training.targets import TrainingTarget, combine_label_sources
from electroseg.training.sampling import TrainingVolume

WEIGHTS = {"dense": 1.0, "hand": 3.0, "pseudo": 1.0}


def _volume(hand: np.ndarray, pseudo: np.ndarray | None = None, name: str = "v") -> TrainingVolume:
    target = combine_label_sources(hand.shape, hand=hand, pseudo=pseudo, weights=WEIGHTS, boundary_ignore=0)
    return TrainingVolume(np.zeros((1, *hand.shape), np.float32), target, name)


def _scribbles(shape=(75, 20, 20), slices=(0, 33, 74)) -> np.ndarray:
    hand = np.full(shape, 255, np.uint8)
    for z in slices:
        hand[z, :5, :5], hand[z, -5:, -5:] = 0, 1
    return hand


def test_three_labelled_slices_hold_out_the_middle_one_whole():
    volume = _volume(_scribbles(), pseudo=np.zeros((75, 20, 20), np.uint8))
    held = hold_out_labels([volume])
    assert held.held_out == [{"volume": "v", "slice": 33}]
    assert "slice 33" in held.describe()
    (train,), (val,) = held.train, held.val
    # the held-out slice is gone from training entirely (pseudo-labels too), and is all validation has
    assert train.target.weight[33].sum() == 0 and train.target.weight[32].sum() > 0
    assert labelled_units([train]) == [(0, 0), (0, 74)]
    assert np.array_equal(np.flatnonzero(val.target.weight.reshape(75, -1).any(1)), [33])
    assert set(np.unique(val.target.labels[33][val.target.weight[33] > 0])) == {0, 1}
    assert train.image is volume.image  # shared, not copied
    assert np.array_equal(held.masks[0], val.target.weight > 0)


def test_several_images_hold_out_a_fifth_of_them_spread_out():
    images = [_volume(_scribbles((1, 20, 20), (0,)), name=f"img{i}") for i in range(8)]
    held = hold_out_labels(images)
    assert [h["volume"] for h in held.held_out] == ["img2", "img6"]
    assert [v.name for v in held.val] == ["img2 (held out)", "img6 (held out)"]
    assert sum(v.target.weight.sum() > 0 for v in held.train) == 6


def test_one_image_holds_out_the_far_strip_of_every_phase():
    hand = np.full((1, 100, 200), 255, np.uint8)
    hand[0, 10:90, 10:40] = 0      # tall: split along Y
    hand[0, 60:80, 50:190] = 1     # wide: split along X
    held = hold_out_labels([_volume(hand)])
    (train,), (val,) = held.train, held.val
    val_mask, train_mask = val.target.weight[0] > 0, train.target.weight[0] > 0
    assert not (val_mask & train_mask).any()
    for phase in (0, 1):
        both = (hand[0] == phase)
        share = (val_mask & both).sum() / both.sum()
        assert 0.1 < share < 0.3
    ys, _ = np.nonzero(val_mask & (hand[0] == 0))
    _, xs = np.nonzero(val_mask & (hand[0] == 1))
    assert ys.min() > 70 and xs.min() > 150
    assert "Y/X" in held.describe()


def test_pseudo_labels_only_hold_out_a_pseudo_labelled_slice():
    target = TrainingTarget(np.zeros((10, 4, 4), np.uint8), np.ones((10, 4, 4), np.float32),
                            np.zeros((10, 4, 4), bool))
    held = hold_out_labels([TrainingVolume(np.zeros((1, 10, 4, 4), np.float32), target)])
    assert len(held.held_out) == 2  # 20 % of 10 slices
    assert held.val[0].target.weight.sum() == 2 * 16


def test_nothing_labelled_holds_nothing_out():
    target = TrainingTarget(np.full((2, 4, 4), 255, np.uint8), np.zeros((2, 4, 4), np.float32))
    assert hold_out_labels([TrainingVolume(np.zeros((1, 2, 4, 4), np.float32), target)]) is None


def test_densely_labelled_volume_holds_out_one_block_at_the_end():
    hand = np.zeros((10, 4, 4), np.uint8)
    held = hold_out_labels([_volume(hand)])
    assert [h["slice"] for h in held.held_out] == [8, 9]

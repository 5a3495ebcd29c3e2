"""The compiled kernels of the particle split against their reference formulations."""

from __future__ import annotations

import numpy as np

from electroseg.analysis import _basins, split_touching
from electroseg.analysis.particles import _edt

VOXEL = (0.1, 0.05, 0.05)


def test_direct_closing_equals_the_closing_by_two_distance_transforms():
    mask = np.random.default_rng(0).random((20, 40, 40)) > 0.6
    gap = 1.01 * max(VOXEL)
    by_edt = (_edt(_edt(~mask, VOXEL) <= gap, VOXEL) > gap) | mask
    assert np.array_equal(_basins.close_with(mask, _basins.ball_offsets(gap, VOXEL)), by_edt)


def test_a_2d_image_is_split_like_a_one_voxel_thick_volume():
    y, x = np.mgrid[:60, :100] * 0.05
    discs = ((y - 1.5) ** 2 + (x - 1.3) ** 2 <= 1.0) | ((y - 1.5) ** 2 + (x - 3.0) ** 2 <= 1.0)
    ids = split_touching(discs, voxel_size=(0.05, 0.05), merge=0.85, crack_merge=0.9)
    assert ids.shape == discs.shape and ids.max() == 2 and np.array_equal(ids > 0, discs)


def test_face_saddles_in_slabs_equal_one_scan():
    # pairs in first-met order and their saddles do not depend on the number of threads (ties
    # in the saddles are merged in that order downstream)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, size=(40, 24, 24)).astype(np.uint32)
    distance = rng.integers(0, 5, size=labels.shape).astype(np.float32)
    one = _basins.face_saddles(labels, distance, 1)
    for threads in (2, 3, 5):
        many = _basins.face_saddles(labels, distance, threads)
        for a, b in zip(one, many):
            np.testing.assert_array_equal(a, b)


def test_concurrent_splits_equal_serial_ones():
    from concurrent.futures import ThreadPoolExecutor

    from electroseg.synthetic import load_preset, make_labels

    labels, _ = make_labels(load_preset("demo"), seed=2, shape=(24, 64, 64))
    mask = labels == 2
    serial = split_touching(mask, voxel_size=(0.1, 0.05, 0.05), merge=0.85, crack_merge=0.9)
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: split_touching(mask, voxel_size=(0.1, 0.05, 0.05), merge=0.85,
                                                         crack_merge=0.9), range(3)))
    for result in results:
        np.testing.assert_array_equal(result, serial)


def test_crack_merge_gives_the_same_particles_on_16_and_32_bit_ids(monkeypatch):
    # the crack merge runs on uint16 piece ids when they fit, else on uint32: same particles
    from electroseg.analysis import particles
    from electroseg.synthetic import load_preset, make_labels

    labels, _ = make_labels(load_preset("demo"), seed=3, shape=(24, 64, 64))
    narrow = particles.find_particles(labels, voxel_size=VOXEL)
    monkeypatch.setattr(particles, "_NARROW_PIECES", 0)
    wide = particles.find_particles(labels, voxel_size=VOXEL)
    assert narrow.dtype == wide.dtype == np.uint32 and narrow.max() > 1
    np.testing.assert_array_equal(narrow, wide)


def test_find_particles_equals_split_touching_of_the_phase_mask():
    # find_particles hands the split a function that remakes the mask; split_touching a mask
    from electroseg.analysis.particles import find_particles
    from electroseg.synthetic import load_preset, make_labels

    labels, _ = make_labels(load_preset("demo"), seed=4, shape=(24, 64, 64))
    for split, options in (("merged", dict(merge=0.85, crack_merge=0.9)), ("watershed", {})):
        np.testing.assert_array_equal(find_particles(labels, voxel_size=VOXEL, split=split),
                                      split_touching(labels == 2, voxel_size=VOXEL, **options))


def test_root_labels_equal_cc3d_components_and_numbering():
    # the union-find over root voxels must give cc3d's components, numbered as cc3d numbers them
    # (raster order of each component's first voxel): the split's piece ids depend on it
    import cc3d

    from electroseg.analysis.particles import neighbour_count

    rng = np.random.default_rng(0)
    direction = np.where(rng.random((20, 30, 40)) < 0.3, _basins.ROOT, 0).astype(np.uint8)
    for rank in (1, 2, 3):
        offsets, _ = _basins.neighbour_offsets(rank, (1, 1, 1))
        expected, n = cc3d.connected_components((direction == _basins.ROOT).view(np.uint8),
                                                connectivity=neighbour_count(rank, 3), return_N=True)
        labels = np.zeros(direction.shape, np.uint32)
        assert _basins.label_roots(direction, _basins.backward_offsets(offsets), labels) == n
        np.testing.assert_array_equal(labels, expected)

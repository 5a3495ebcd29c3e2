"""Property tests: fractions sum to 1, PBA symmetric under in-plane flips/swaps, counts add up
over sub-blocks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from electroseg.analysis import face_pair_counts, pba_profile, volume_fractions

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def label_volumes(draw, ndim=3, ignore=True):
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=ndim, max_size=ndim)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    values = [0, 1, 2, 255] if ignore else [0, 1, 2]
    p = rng.dirichlet(np.ones(len(values)))
    return rng.choice(values, size=shape, p=p).astype(np.uint8)


@SETTINGS
@given(label_volumes())
def test_fractions_sum_to_one(labels):
    result = volume_fractions(labels)
    if result.total == 0:
        assert all(v is None for v in result.fractions.values())
    else:
        assert sum(result.fractions.values()) == pytest.approx(1.0)
        assert result.total + result.ignored == labels.size


@SETTINGS
@given(label_volumes(), st.integers(0, 2), st.sampled_from(["face", "voxel"]))
def test_in_plane_flips_and_swaps_leave_pba_unchanged(labels, depth_axis, method):
    base = pba_profile(labels, depth_axis=depth_axis, method=method)
    in_plane = [a for a in range(3) if a != depth_axis]
    for axis in in_plane:
        flipped = pba_profile(np.flip(labels, axis), depth_axis=depth_axis, method=method)
        assert flipped.contacts.tolist() == base.contacts.tolist()
        assert flipped.surface.tolist() == base.surface.tolist()
    swapped = np.swapaxes(labels, *in_plane)
    other = pba_profile(swapped, depth_axis=depth_axis, method=method)
    assert other.contacts.tolist() == base.contacts.tolist()
    assert other.surface.tolist() == base.surface.tolist()
    reversed_depth = pba_profile(np.flip(labels, depth_axis), depth_axis=depth_axis,
                                 method=method)
    assert reversed_depth.contacts.tolist() == base.contacts[::-1].tolist()


@SETTINGS
@given(label_volumes(ndim=2), st.integers(0, 1))
def test_2d_flip_leaves_pba_unchanged(labels, depth_axis):
    base = pba_profile(labels, depth_axis=depth_axis)
    flipped = pba_profile(np.flip(labels, 1 - depth_axis), depth_axis=depth_axis)
    assert flipped.per_depth == base.per_depth


@SETTINGS
@given(label_volumes(), st.integers(0, 2), st.integers(0, 2), st.data())
def test_counts_over_sub_blocks_add_up(labels, depth_axis, split_axis, data):
    n = labels.shape[split_axis]
    if n < 2:
        return
    cut = data.draw(st.integers(1, n - 1))
    lower = np.take(labels, np.arange(cut), axis=split_axis)
    upper = np.take(labels, np.arange(cut, n), axis=split_axis)
    boundary = np.take(labels, [cut - 1, cut], axis=split_axis)
    whole = face_pair_counts(labels, depth_axis=depth_axis)
    a = face_pair_counts(lower, depth_axis=depth_axis)
    b = face_pair_counts(upper, depth_axis=depth_axis)
    edge = face_pair_counts(boundary, depth_axis=depth_axis)
    if split_axis == depth_axis:
        # depth planes are concatenated; the straddling pairs are those along the depth axis
        # between plane cut-1 and cut, attributed to plane cut-1.
        pairs = np.concatenate([a.pairs, b.pairs])
        pairs[cut - 1, depth_axis] += edge.pairs[0, depth_axis]
        np.testing.assert_array_equal(pairs, whole.pairs)
        np.testing.assert_array_equal(np.concatenate([a.voxels, b.voxels]), whole.voxels)
    else:
        pairs = a.pairs + b.pairs
        pairs[:, split_axis] += edge.pairs[:, split_axis]
        np.testing.assert_array_equal(pairs, whole.pairs)
        np.testing.assert_array_equal(a.voxels + b.voxels, whole.voxels)


@SETTINGS
@given(label_volumes(), st.sampled_from([3, 20]), st.integers(0, 2))
def test_pair_counts_match_brute_force(labels, n_phases, depth_axis):
    # 20 phases take the per-axis counting path (codes too wide for one uint16 bincount)
    phases = tuple(f"p{i}" for i in range(n_phases - 3)) + ("pore", "cbd", "am")
    labels = np.where(labels < 3, labels + n_phases - 3, labels).astype(np.uint8)
    counts = face_pair_counts(labels, depth_axis=depth_axis, phases=phases)
    expected = np.zeros_like(counts.pairs)
    for axis in range(3):
        lo = np.moveaxis(labels, axis, 0)[:-1]
        hi = np.moveaxis(labels, axis, 0)[1:]
        depth = np.moveaxis(np.indices(labels.shape)[depth_axis], axis, 0)[:-1]
        for i, j, k in zip(lo.ravel(), hi.ravel(), depth.ravel()):
            if i < n_phases and j < n_phases:
                expected[k, axis, i, j] += 1
    np.testing.assert_array_equal(counts.pairs, expected)
    voxels = [np.bincount(np.take(labels, k, depth_axis).ravel(), minlength=256)[:n_phases]
              for k in range(labels.shape[depth_axis])]
    np.testing.assert_array_equal(counts.voxels, voxels)


@SETTINGS
@given(label_volumes(), st.integers(0, 2), st.integers(2, 4))
def test_threaded_counting_equals_single_thread(labels, depth_axis, threads):
    from electroseg.analysis.contacts import _fused_counts, _split_counts

    if labels.shape[depth_axis] < threads:
        return
    one = _fused_counts(labels, depth_axis, 3)
    many = _split_counts(labels, depth_axis, 3, threads=threads)
    np.testing.assert_array_equal(one[0], many[0])
    np.testing.assert_array_equal(one[1], many[1])

"""Property tests of the analysis module not already in tests/analysis (which covers: fractions sum
to 1, PBA under in-plane flips/swaps, face-pair counts over sub-blocks and by brute force, particle
relabelling, connectivity shares, blockwise chunking)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from electroseg.analysis import (interface_areas, particle_table, pba_profile, size_histogram,
                                 volume_fractions)

SETTINGS = settings(max_examples=30, deadline=None)
PHASES = ("pore", "cbd", "am")


@st.composite
def label_volumes(draw, ndim=3, ignore=True, low=1, high=6):
    shape = tuple(draw(st.lists(st.integers(low, high), min_size=ndim, max_size=ndim)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = [0, 1, 2, 255] if ignore else [0, 1, 2]
    return rng.choice(values, size=shape, p=rng.dirichlet(np.ones(len(values)))).astype(np.uint8)


@SETTINGS
@given(label_volumes(), st.integers(0, 2), st.sampled_from(["face", "voxel"]))
def test_pba_is_a_probability(labels, depth_axis, method):
    result = pba_profile(labels, depth_axis=depth_axis, method=method)
    defined = [v for v in result.per_depth if v is not None]
    for value in defined:
        assert 0.0 <= value <= 1.0
    if result.pooled is None:
        assert not defined
    else:
        assert 0.0 <= result.pooled <= 1.0
        assert min(defined) - 1e-12 <= result.pooled <= max(defined) + 1e-12  # a weighted mean of per_depth
        assert result.depth_mean == pytest.approx(np.mean(defined))


@SETTINGS
@given(label_volumes(ignore=False), st.integers(0, 2))
def test_pba_without_cbd_is_zero_and_all_cbd_neighbours_is_one(labels, depth_axis):
    no_cbd = np.where(labels == 1, 0, labels).astype(np.uint8)
    result = pba_profile(no_cbd, depth_axis=depth_axis)
    assert result.pooled in (None, 0.0)
    only_cbd = np.where(labels == 0, 1, labels).astype(np.uint8)  # every non-AM voxel is CBD
    result = pba_profile(only_cbd, depth_axis=depth_axis)
    assert result.pooled in (None, 1.0)


@SETTINGS
@given(label_volumes(), st.permutations([0, 1, 2]), st.integers(0, 2))
def test_renaming_phases_consistently_changes_nothing(labels, order, depth_axis):
    """Store phase i as value order[i] and name the values accordingly: every metric is the same."""
    lut = np.arange(256, dtype=np.uint8)
    lut[[0, 1, 2]] = order
    renamed_phases = [None] * 3
    for i, value in enumerate(order):
        renamed_phases[value] = PHASES[i]
    renamed = lut[labels]
    assert volume_fractions(renamed, phases=renamed_phases).fractions == pytest.approx(
        volume_fractions(labels).fractions)
    a = pba_profile(labels, depth_axis=depth_axis)
    b = pba_profile(renamed, depth_axis=depth_axis, phases=renamed_phases)
    assert a.per_depth == b.per_depth and a.pooled == b.pooled


@SETTINGS
@given(label_volumes(), st.integers(1, 3))
def test_ignore_padding_and_voxel_shuffles_leave_fractions_unchanged(labels, pad):
    base = volume_fractions(labels).fractions
    padded = np.pad(labels, pad, constant_values=255)
    assert volume_fractions(padded).fractions == base
    shuffled = np.random.default_rng(0).permutation(labels.ravel()).reshape(labels.shape)
    assert volume_fractions(shuffled).fractions == base


@SETTINGS
@given(label_volumes(), label_volumes(), st.integers(0, 2))
def test_fraction_counts_add_up_over_stacked_blocks(a, b, axis):
    """Two blocks stacked along an axis: the voxel counts of the whole are the sums of the parts."""
    other = [s for i, s in enumerate(a.shape) if i != axis]
    b = np.resize(b, [b.shape[axis] if i == axis else a.shape[i] for i in range(3)])
    assert [s for i, s in enumerate(b.shape) if i != axis] == other
    whole = volume_fractions(np.concatenate([a, b], axis=axis))
    parts = [volume_fractions(a), volume_fractions(b)]
    assert whole.total == sum(p.total for p in parts)
    for phase in PHASES:
        count = sum(p.total * (p.fractions[phase] or 0.0) for p in parts)
        assert whole.total * (whole.fractions[phase] or 0.0) == pytest.approx(count)


@SETTINGS
@given(label_volumes(low=2, high=7), st.floats(0.5, 4.0), st.sampled_from([1, 3]))
def test_particles_scale_with_voxel_size_and_cover_every_am_voxel(labels, scale, connectivity):
    voxel = (0.05, 0.02, 0.03)
    table = particle_table(labels, voxel_size=voxel, connectivity=connectivity)
    scaled = particle_table(labels, voxel_size=tuple(scale * v for v in voxel), connectivity=connectivity)
    assert int(np.sum(table.voxels)) == int(np.sum(labels == 2))  # counts add up over particles
    assert len(scaled.voxels) == len(table.voxels)
    np.testing.assert_allclose(np.asarray(scaled.size), np.asarray(table.size) * scale**3, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(scaled.diameter_um), np.asarray(table.diameter_um) * scale, rtol=1e-9)


@SETTINGS
@given(label_volumes(low=2, high=7))
def test_size_histogram_fractions_sum_to_one(labels):
    table = particle_table(labels, voxel_size=(0.5, 0.5, 0.5))  # 0.125 µm³ voxels: inside the default edges
    hist = size_histogram(table, n_regions=2)
    if len(table.voxels) == 0:
        return
    assert float(np.sum(hist.number_fraction)) == pytest.approx(1.0)
    assert float(np.sum(hist.volume_fraction)) == pytest.approx(1.0)
    assert int(np.sum(hist.counts)) == len(table.voxels)


@SETTINGS
@given(label_volumes(), st.floats(0.25, 4.0), st.integers(0, 2))
def test_specific_surface_scales_inversely_with_voxel_size_and_ignores_flips(labels, scale, axis):
    voxel = (0.05, 0.02, 0.03)
    base = interface_areas(labels, voxel_size=voxel)
    scaled = interface_areas(labels, voxel_size=tuple(scale * v for v in voxel))
    flipped = interface_areas(np.flip(labels, axis=axis), voxel_size=voxel)
    for pair, value in base.per_um.items():
        if value is None:
            assert scaled.per_um[pair] is None
            continue
        assert value >= 0
        assert scaled.per_um[pair] == pytest.approx(value / scale)
        assert flipped.per_um[pair] == pytest.approx(value)

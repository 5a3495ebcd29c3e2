"""Electronic connectivity on hand-built arrays whose shares are counted by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from electroseg.analysis.connectivity import electronic_connectivity
from electroseg.errors import InputError

# Depth runs down the rows (collector = last row). Particles (face-connected AM = 2):
#   P1 = 4 voxels top-left, joined to the collector only by the CBD column x=1 -> via CBD
#   P2 = 1 voxel at (2, 3) surrounded by pore                                  -> isolated
#   P3 = 1 voxel at (0, 5), CBD column x=5 joins it to P4                        -> via CBD
#   P4 = 3 voxels at (4, 5), (4, 6), (5, 5) on the collector row                  -> direct
PLANE = np.array([
    [2, 2, 0, 0, 0, 2, 0],
    [2, 2, 0, 0, 0, 1, 0],
    [0, 1, 0, 2, 0, 1, 0],
    [0, 1, 0, 0, 0, 1, 0],
    [0, 1, 0, 0, 0, 2, 2],
    [0, 1, 0, 0, 0, 2, 0],
], dtype=np.uint8)


def _shares(c):
    return c.direct_fraction, c.via_cbd_fraction, c.isolated_fraction


def test_hand_counted_2d():
    c = electronic_connectivity(PLANE, depth_axis=0)
    assert c.am_voxels == 9 and c.particles == 4
    assert _shares(c) == pytest.approx((3 / 9, 5 / 9, 1 / 9))
    assert c.connected_fraction == pytest.approx(8 / 9)
    assert (c.direct_particles, c.via_cbd_particles, c.isolated_particles) == (1, 2, 1)
    assert c.collector_index == 5


def test_hand_counted_3d_with_default_depth_axis():
    labels = np.zeros((3, 6, 7), dtype=np.uint8)
    labels[1] = PLANE
    c = electronic_connectivity(labels)  # depth_axis=1: rows of each Z slice
    assert _shares(c) == pytest.approx((3 / 9, 5 / 9, 1 / 9))
    assert c.depth_axis == 1


def test_transposed_plane_with_depth_axis_1():
    c = electronic_connectivity(np.ascontiguousarray(PLANE.T), depth_axis=1)
    assert _shares(c) == pytest.approx((3 / 9, 5 / 9, 1 / 9))


def test_collector_is_the_last_index_along_depth():
    # Flipped, the top row is the collector: P1 and P3 touch it, P4 hangs on P3 through CBD.
    c = electronic_connectivity(PLANE[::-1], depth_axis=0)
    assert _shares(c) == pytest.approx((5 / 9, 3 / 9, 1 / 9))


def test_ignore_voxel_breaks_the_cbd_bridge():
    labels = PLANE.copy()
    labels[3, 1] = 255
    c = electronic_connectivity(labels, depth_axis=0)
    assert _shares(c) == pytest.approx((3 / 9, 1 / 9, 5 / 9))
    assert PLANE[3, 1] == 1  # the input is not modified


def test_diagonal_contact_does_not_conduct():
    labels = np.array([[2, 0],
                       [0, 1],
                       [0, 1]], dtype=np.uint8)
    c = electronic_connectivity(labels, depth_axis=0)
    assert c.isolated_fraction == 1.0 and c.isolated_particles == 1


def test_no_am_gives_nan_and_null_json():
    c = electronic_connectivity(np.ones((4, 4), dtype=np.uint8), depth_axis=0)
    assert np.isnan(c.connected_fraction) and c.particles == 0
    assert c.to_dict()["connected_fraction"] is None


def test_custom_phase_names():
    labels = np.where(PLANE == 2, 0, np.where(PLANE == 0, 2, 1)).astype(np.uint8)
    c = electronic_connectivity(labels, depth_axis=0, phases=("nmc", "binder", "void"),
                                am_phase="nmc", cbd_phase="binder")
    assert _shares(c) == pytest.approx((3 / 9, 5 / 9, 1 / 9))


def test_bad_input_names_argument():
    with pytest.raises(InputError, match="am_phase"):
        electronic_connectivity(PLANE, am_phase="nmc")
    with pytest.raises(InputError, match="depth_axis"):
        electronic_connectivity(PLANE, depth_axis=2)
    with pytest.raises(InputError, match=r"\[7\]"):
        electronic_connectivity(np.full((2, 2), 7, dtype=np.uint8))


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.uint8, st.tuples(st.integers(2, 5), st.integers(2, 5), st.integers(2, 5)),
                  elements=st.integers(0, 2)))
def test_shares_sum_to_one_and_in_plane_flips_change_nothing(labels):
    c = electronic_connectivity(labels)
    if c.am_voxels == 0:
        return
    assert c.direct_fraction + c.via_cbd_fraction + c.isolated_fraction == pytest.approx(1.0)
    flipped = electronic_connectivity(labels[::-1, :, ::-1])
    assert _shares(flipped) == pytest.approx(_shares(c))


def _reference_shares(labels):
    """Independent oracle with scipy.ndimage.label (face connectivity), particle by particle."""
    from scipy import ndimage

    particles, n = ndimage.label(labels == 2)
    clusters, _ = ndimage.label(labels > 0)
    on_face = set(np.unique(clusters[:, -1])) - {0}
    volumes = {"direct": 0, "via": 0, "isolated": 0}
    for i in range(1, n + 1):
        voxels = particles == i
        cluster = int(clusters[voxels][0])
        kind = ("direct" if voxels[:, -1].any() else "via") if cluster in on_face else "isolated"
        volumes[kind] += int(voxels.sum())
    total = sum(volumes.values())
    return volumes["direct"] / total, volumes["via"] / total, volumes["isolated"] / total


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.uint8, st.tuples(st.integers(2, 5), st.integers(2, 6), st.integers(2, 5)),
                  elements=st.integers(0, 2)))
def test_matches_independent_scipy_oracle(labels):
    if not (labels == 2).any():
        return
    assert _shares(electronic_connectivity(labels)) == pytest.approx(_reference_shares(labels))


def test_ready_made_particle_ids_give_the_same_answer():
    from electroseg.analysis.particles import label_particles

    ids = label_particles(PLANE, connectivity=1)
    c = electronic_connectivity(PLANE, depth_axis=0, particles=ids)
    assert c == electronic_connectivity(PLANE, depth_axis=0)
    shuffled = np.where(ids > 0, 100 - ids.astype(np.int64), 0)  # other ids, gaps, int64
    assert electronic_connectivity(PLANE, depth_axis=0, particles=shuffled) == c


def test_analyze_gives_the_connectivity_of_the_labels_whatever_the_split():
    # analyze_labels hands its AM cluster labels to the connectivity (one labelling pass fewer)
    from electroseg.analysis import analyze_labels

    labels = np.random.default_rng(3).choice(np.array([0, 1, 2], np.uint8), size=(12, 16, 20),
                                             p=[0.3, 0.3, 0.4])
    expected = electronic_connectivity(labels, depth_axis=1)
    for split in ("merged", "none"):
        result = analyze_labels(labels, voxel_size=(0.1, 0.05, 0.05), split=split, uncertainty=False)
        assert result.connectivity == expected, split


def test_particle_ids_that_do_not_fit_the_labels_are_refused():
    from electroseg.analysis.particles import label_particles

    with pytest.raises(InputError, match="particles: expected the shape"):
        electronic_connectivity(PLANE, depth_axis=0, particles=np.ones((2, 2), np.uint32))
    with pytest.raises(InputError, match="exactly on the 'am' voxels"):
        cbd_ids = label_particles(PLANE, phase="cbd")
        electronic_connectivity(PLANE, depth_axis=0, particles=cbd_ids)
    diagonal = np.array([[2, 0], [0, 2]], dtype=np.uint8)  # one particle only by corners
    with pytest.raises(InputError, match="face-connected"):
        electronic_connectivity(diagonal, depth_axis=0,
                                particles=label_particles(diagonal, connectivity=2))
    with pytest.raises(InputError, match="integer"):
        electronic_connectivity(PLANE, depth_axis=0, particles=np.zeros(PLANE.shape))

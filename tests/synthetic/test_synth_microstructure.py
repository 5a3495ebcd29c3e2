"""Microstructure generator: determinism, fractions, particle bookkeeping, CBD detachment."""

from __future__ import annotations

import cc3d
import numpy as np
import pytest

from electroseg.analysis import pba_profile, volume_fractions
from electroseg.errors import InputError
from electroseg.synthetic import detach_cbd, generate_microstructure, merge_phases
from electroseg.synthetic.particles import Ellipsoid, render_particle

SMALL = dict(voxel_size=(0.1, 0.05, 0.05), median_diameter_um=1.2, neck_radius_um=0.1)
SHAPE = (16, 64, 64)


@pytest.fixture(scope="module")
def pristine():
    return generate_microstructure(SHAPE, seed=5, **SMALL)


def test_same_seed_same_bytes_and_other_seed_differs(pristine):
    again = generate_microstructure(SHAPE, seed=5, **SMALL)
    other = generate_microstructure(SHAPE, seed=6, **SMALL)
    assert again.labels.tobytes() == pristine.labels.tobytes()
    assert np.array_equal(again.particle_ids, pristine.particle_ids)
    assert not np.array_equal(other.labels, pristine.labels)


def test_labels_are_uint8_phases_and_fractions_hit_targets(pristine):
    assert pristine.labels.dtype == np.uint8 and pristine.labels.shape == SHAPE
    assert set(np.unique(pristine.labels)) == {0, 1, 2}
    fractions = volume_fractions(pristine.labels, phases=("pore", "cbd", "am")).fractions
    # CBD is chosen top-k so it is exact to one voxel; AM overshoots by at most one particle.
    assert fractions["cbd"] == pytest.approx(0.10, abs=1.0 / pristine.labels.size)
    assert 0.65 <= fractions["am"] <= 0.70
    assert pristine.to_dict()["target_fraction"] == pytest.approx(
        {"pore": 0.25, "cbd": 0.10, "am": 0.65})


def test_particle_ids_cover_exactly_the_am(pristine):
    assert np.array_equal(pristine.particle_ids > 0, pristine.labels == 2)
    owners = np.unique(pristine.particle_ids[pristine.particle_ids > 0])
    assert owners.max() <= pristine.particle_count
    assert len(owners) >= 0.9 * pristine.particle_count  # few are fully hidden by earlier ones


def test_anisotropic_voxels_keep_particle_shape_in_micrometres():
    # One sphere-like particle: same µm size on a 2:1 grid gives half the slices.
    options = dict(am_fraction=0.05, cbd_fraction=0.0, median_diameter_um=1.0, diameter_sigma=0.0,
                   aspect_sigma=0.0, crack_fraction=0.0, neck_radius_um=0.0)
    iso = generate_microstructure((40, 40, 40), voxel_size=(0.05, 0.05, 0.05), seed=1, **options)
    aniso = generate_microstructure((20, 40, 40), voxel_size=(0.1, 0.05, 0.05), seed=1, **options)
    iso_um3 = np.count_nonzero(iso.labels == 2) * 0.05**3
    aniso_um3 = np.count_nonzero(aniso.labels == 2) * 0.1 * 0.05**2
    assert aniso_um3 == pytest.approx(iso_um3, rel=0.1)


def test_cracks_split_particles_into_more_fragments():
    options = dict(SMALL, cbd_fraction=0.0, crack_cbd_fill=0.0, fragment_fraction=0.0, seed=3)
    whole = generate_microstructure(SHAPE, crack_fraction=0.0, **options)
    cracked = generate_microstructure(SHAPE, crack_fraction=1.0, crack_width_um=0.1, **options)
    assert whole.cracked_count == 0 and cracked.cracked_count == cracked.particle_count
    n_whole = cc3d.connected_components(whole.labels == 2, connectivity=6, return_N=True)[1]
    n_cracked = cc3d.connected_components(cracked.labels == 2, connectivity=6, return_N=True)[1]
    assert n_cracked > n_whole


def test_cbd_filled_cracks_take_the_cbd_budget_first():
    options = dict(SMALL, crack_fraction=1.0, cbd_fraction=0.005, seed=2)
    open_cracks = generate_microstructure(SHAPE, crack_cbd_fill=0.0, **options)
    filled = generate_microstructure(SHAPE, crack_cbd_fill=1.0, **options)
    assert np.array_equal(open_cracks.labels == 2, filled.labels == 2)  # same particles
    cbd = filled.labels == 1
    assert np.count_nonzero(cbd) == round(0.005 * cbd.size)  # exact even with many cracks
    # Every CBD voxel sits in a crack: where the open-crack variant has pore and no CBD.
    assert np.all(open_cracks.labels[cbd] == 0)


def test_detach_cbd_lowers_pba_by_requested_share_with_same_am(pristine):
    cycled = detach_cbd(pristine, detach_fraction=0.3, seed=1)
    assert np.array_equal(cycled.labels == 2, pristine.labels == 2)
    assert np.array_equal(cycled.particle_ids, pristine.particle_ids)
    assert np.all(cycled.labels[pristine.labels != 1] == pristine.labels[pristine.labels != 1])
    before = pba_profile(pristine.labels).pooled
    after = pba_profile(cycled.labels).pooled
    # Patches independent of the coating: PBA x (1 - 0.3), within sampling noise of a tiny box.
    assert after / before == pytest.approx(0.7, abs=0.08)
    assert pristine.labels.flags.writeable and cycled.detached_fraction == 0.3


def test_detach_zero_changes_nothing(pristine):
    same = detach_cbd(pristine, detach_fraction=0.0, seed=1)
    assert np.array_equal(same.labels, pristine.labels)


def test_merge_phases_maps_cbd_into_pore():
    labels = np.array([[[0, 1, 2, 2]]], np.uint8)
    assert merge_phases(labels, (0, 0, 1)).tolist() == [[[0, 0, 1, 1]]]
    with pytest.raises(InputError, match="mapping"):
        merge_phases(labels, (0, 0))


@pytest.mark.parametrize("kwargs, match", [
    (dict(shape=(16, 64)), "shape"),
    (dict(voxel_size=(0.1, -1, 0.05)), "voxel_size"),
    (dict(am_fraction=1.5), "am_fraction"),
    (dict(am_fraction=0.7, cbd_fraction=0.4), "cbd_fraction"),
    (dict(median_diameter_um=0), "median_diameter_um"),
])
def test_bad_input_raises_input_error_naming_the_argument(kwargs, match):
    kwargs = {"shape": (8, 16, 16), **kwargs}
    shape = kwargs.pop("shape")
    with pytest.raises(InputError, match=match):
        generate_microstructure(shape, **kwargs)


def _sphere(radius_um=1.0, **crack):
    return Ellipsoid(np.array([1.5, 1.5, 1.5]), np.full(3, radius_um), np.eye(3), **crack)


def test_render_particle_sphere_volume_is_analytic():
    ids = np.zeros((30, 60, 60), np.int32)
    cracks = np.zeros_like(ids, dtype=np.uint8)
    added = render_particle(ids, cracks, _sphere(), 1, (0.1, 0.05, 0.05))
    assert added * 0.1 * 0.05 * 0.05 == pytest.approx(4 / 3 * np.pi, rel=0.02)
    # A uniform 10 % radial bump scales the volume by 1.1**3.
    bumped = np.zeros_like(ids)
    render_particle(bumped, np.zeros_like(cracks), _sphere(), 1, (0.1, 0.05, 0.05),
                    np.full(ids.shape, 0.1, np.float32))
    assert np.count_nonzero(bumped) / added == pytest.approx(1.1**3, rel=0.03)


def test_render_particle_planar_crack_through_centre():
    ids = np.zeros((30, 60, 60), np.int32)
    cracks = np.zeros((30, 60, 60), np.uint8)
    # Crack plane x = 1.5 µm (normal along X), 0.15 µm wide: |x - 1.5| <= 0.075 holds for
    # the voxel columns at x = 1.45, 1.50, 1.55 µm (indices 29-31).
    sphere = _sphere(crack_normal=np.array([0.0, 0.0, 1.0]), crack_width_um=0.15)
    render_particle(ids, cracks, sphere, 1, (0.1, 0.05, 0.05))
    assert set(np.unique(cracks)) == {0, 1}
    assert np.all(np.flatnonzero(cracks.any(axis=(0, 1))) == [29, 30, 31])
    assert cc3d.connected_components(ids > 0, connectivity=6, return_N=True)[1] == 2


def test_binder_migration_puts_more_cbd_near_the_separator():
    from electroseg.analysis import volume_fraction_profile

    micro = generate_microstructure(SHAPE, cbd_depth_gradient=2.0, seed=4, **SMALL)
    cbd = volume_fraction_profile(micro.labels, depth_axis=1).fractions[:, 1]
    half = len(cbd) // 2
    assert cbd[:half].mean() > 1.5 * cbd[half:].mean()
    uniform = generate_microstructure(SHAPE, seed=4, **SMALL)
    assert np.array_equal(uniform.labels == 2, micro.labels == 2)
    with pytest.raises(InputError, match="depth_axis"):
        generate_microstructure(SHAPE, depth_axis=3, seed=4, **SMALL)


def test_fragments_add_small_separate_am_pieces_within_the_am_target():
    options = dict(SMALL, crack_fraction=0.0, seed=8)
    none = generate_microstructure(SHAPE, fragment_fraction=0.0, **options)
    some = generate_microstructure(SHAPE, fragment_fraction=0.05, fragment_diameter_um=0.3,
                                   **options)
    n_none = cc3d.connected_components(none.labels == 2, connectivity=6, return_N=True)[1]
    n_some = cc3d.connected_components(some.labels == 2, connectivity=6, return_N=True)[1]
    assert n_some > n_none + 5
    assert 0.65 <= np.mean(some.labels == 2) <= 0.70

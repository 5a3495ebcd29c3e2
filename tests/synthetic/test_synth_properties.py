"""Property tests: invariants of the generators for any seed and small options."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from electroseg.synthetic import detach_cbd, generate_microstructure, simulate_fibsem

FAST = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(seed=st.integers(0, 2**32 - 1), am=st.floats(0.3, 0.7), cbd=st.floats(0.0, 0.2),
       detach=st.floats(0.0, 1.0))
def test_fractions_cbd_exact_and_detachment_only_removes_cbd(seed, am, cbd, detach):
    micro = generate_microstructure((8, 32, 32), voxel_size=(0.1, 0.05, 0.05), am_fraction=am,
                                    cbd_fraction=cbd, median_diameter_um=0.8, neck_radius_um=0.1,
                                    seed=seed)
    counts = np.bincount(micro.labels.ravel(), minlength=3)
    assert counts.sum() == micro.labels.size and micro.labels.max() <= 2
    assert counts[1] == round(cbd * micro.labels.size)
    assert counts[2] >= am * micro.labels.size
    cycled = detach_cbd(micro, detach_fraction=detach, seed=seed)
    changed = cycled.labels != micro.labels
    assert np.all(micro.labels[changed] == 1) and np.all(cycled.labels[changed] == 0)


@FAST
@given(seed=st.integers(0, 2**32 - 1), levels=st.lists(st.floats(0.0, 1.0), min_size=3,
                                                      max_size=3))
def test_simulator_without_artefacts_maps_each_phase_to_its_level(seed, levels):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, (3, 8, 8)).astype(np.uint8)
    image = simulate_fibsem(labels, voxel_size=(0.1, 0.05, 0.05), levels=levels, texture=0,
                            shine_through=0, curtaining=0, blur_sigma_um=0, shading=0, flicker=0,
                            photons=0, read_noise=0, seed=seed).image
    expected = np.round(np.asarray(levels, np.float32) * 255).astype(np.uint8)
    assert np.array_equal(image, expected[labels])

"""Block-wise analysis on Dask equals the in-memory analysis exactly."""

from __future__ import annotations

import json
import subprocess
import sys

import dask
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from electroseg.analysis import face_pair_counts, pba_profile, volume_fraction_profile
from electroseg.analysis.connectivity import electronic_connectivity
from electroseg.analysis.blockwise import analyze_blockwise, blockwise_counts
from electroseg.parallel import dask_client
from electroseg.analysis.metrics import analyze_labels, write_analysis
from electroseg.analysis.particles import particle_table
from electroseg.analysis.surfaces import interface_areas
from electroseg.errors import InputError
from electroseg.io import write_zarr

VOXEL = (0.05, 0.03, 0.02)


@pytest.fixture(autouse=True)
def _synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def _random_labels(shape, seed=0, ignore=0.05):
    rng = np.random.default_rng(seed)
    labels = rng.choice(np.arange(3, dtype=np.uint8), size=shape, p=[0.3, 0.2, 0.5])
    labels[rng.random(shape) < ignore] = 255
    return labels


def _assert_same_as_in_memory(labels, result, *, voxel_size, depth_axis):
    """``result``: BlockwiseCounts or AnalysisResult of ``labels``."""
    if hasattr(result, "pair_counts"):
        counts = face_pair_counts(labels, depth_axis=depth_axis)
        np.testing.assert_array_equal(result.pair_counts.pairs, counts.pairs)
        np.testing.assert_array_equal(result.pair_counts.voxels, counts.voxels)
        np.testing.assert_array_equal(result.pair_counts.ignored, counts.ignored)
        table = particle_table(labels, voxel_size=voxel_size, depth_axis=depth_axis)
        _assert_same_particles(result.particles, table)
        return
    profile = volume_fraction_profile(labels, depth_axis=depth_axis)
    np.testing.assert_array_equal(result.profile.counts, profile.counts)
    pba = pba_profile(labels, depth_axis=depth_axis)
    np.testing.assert_array_equal(result.pba.contacts, pba.contacts)
    np.testing.assert_array_equal(result.pba.surface, pba.surface)
    assert result.surface.faces == interface_areas(labels, voxel_size=voxel_size).faces
    in_memory = analyze_labels(labels, voxel_size=voxel_size, depth_axis=depth_axis, split="none",
                               uncertainty=result.uncertainty is not None)
    assert result.to_dict() == in_memory.to_dict()
    assert _as_dict(result.connectivity) == _as_dict(in_memory.connectivity)
    _assert_same_particles(result.particles["am"], in_memory.particles["am"])


def _as_dict(result):
    return None if result is None else result.to_dict()


def _assert_same_particles(mine, table):
    # same particles in the same order (raster order of first voxels, as cc3d numbers them)
    np.testing.assert_array_equal(mine.label, table.label)
    np.testing.assert_array_equal(mine.voxels, table.voxels)
    np.testing.assert_allclose(mine.centroid_voxel, table.centroid_voxel, rtol=1e-12)
    np.testing.assert_array_equal(mine.touches_border, table.touches_border)
    np.testing.assert_allclose(mine.diameter_um, table.diameter_um, rtol=1e-12)


def test_pairs_across_a_block_boundary_are_counted_once():
    # One row, blocks of two columns: the AM|CBD and AM|pore pairs straddle the boundaries.
    labels = np.array([[0, 2, 1, 2, 2, 0]], dtype=np.uint8)
    counts = blockwise_counts(labels, voxel_size=(1.0, 1.0), depth_axis=0, chunks=(1, 2))
    assert counts.blocks == 3
    result = analyze_blockwise(labels, voxel_size=(1.0, 1.0), depth_axis=0, chunks=(1, 2))
    # in-plane pairs 0|2, 2|1, 1|2, 2|2, 2|0: S = 4 (all but 2|2), C = 2 (2|1 and 1|2)
    assert result.pba.surface.tolist() == [4]
    assert result.pba.contacts.tolist() == [2]
    # AM particles: {1} and {3, 4}; the second one spans the boundary between blocks 2 and 3
    assert sorted(result.particles["am"].voxels.tolist()) == [1, 2]
    # faces: pore-am 2 (0|2, 2|0), cbd-am 2, pore-cbd 0
    assert result.surface.faces == {"pore-cbd": 0, "pore-am": 2, "cbd-am": 2}


@pytest.mark.parametrize("depth_axis", [0, 1, 2])
@pytest.mark.parametrize("chunks", [(7, 6, 9), (20, 5, 17), (3, 23, 4)])
def test_equals_in_memory_3d(depth_axis, chunks):
    labels = _random_labels((20, 23, 17), seed=depth_axis)
    counts = blockwise_counts(labels, voxel_size=VOXEL, depth_axis=depth_axis, chunks=chunks)
    _assert_same_as_in_memory(labels, counts, voxel_size=VOXEL, depth_axis=depth_axis)
    result = analyze_blockwise(labels, voxel_size=VOXEL, depth_axis=depth_axis, chunks=chunks)
    _assert_same_as_in_memory(labels, result, voxel_size=VOXEL, depth_axis=depth_axis)


def test_equals_in_memory_2d():
    labels = _random_labels((31, 29), seed=3)
    result = analyze_blockwise(labels, voxel_size=(0.03, 0.02), depth_axis=0, chunks=(8, 5))
    _assert_same_as_in_memory(labels, result, voxel_size=(0.03, 0.02), depth_axis=0)


def test_one_particle_winding_through_every_block():
    # A serpentine of AM: rows alternately joined at the right and left ends, one particle.
    labels = np.zeros((1, 9, 12), dtype=np.uint8)
    labels[0, ::2, :] = 2
    for row in range(1, 9, 2):
        labels[0, row, -1 if row % 4 == 1 else 0] = 2
    result = blockwise_counts(labels, voxel_size=(1, 1, 1), chunks=(1, 2, 3))
    assert result.blocks == 5 * 4
    assert result.particles.count == 1
    assert result.particles.voxels.tolist() == [int((labels == 2).sum())]
    assert result.particles.touches_border.tolist() == [True]


def test_zarr_input_reads_voxel_size_and_matches(tmp_path):
    labels = _random_labels((12, 16, 10), seed=5)
    path = write_zarr(tmp_path / "labels.zarr", labels, voxel_size=VOXEL, chunks=(4, 8, 5))
    # threads share the test process, whose memory (torch, numba) a limit would count and pause on
    with dask_client(n_workers=2, processes=False, memory_limit=0) as client:
        counts = blockwise_counts(path, depth_axis=1, client=client)
        result = analyze_blockwise(path, depth_axis=1, client=client)
    assert counts.voxel_size == result.voxel_size == VOXEL
    assert counts.blocks == 3 * 2 * 2
    _assert_same_as_in_memory(labels, counts, voxel_size=VOXEL, depth_axis=1)
    _assert_same_as_in_memory(labels, result, voxel_size=VOXEL, depth_axis=1)


def test_written_like_the_in_memory_analysis(tmp_path):
    labels = _random_labels((6, 10, 8), seed=9)
    result = analyze_blockwise(labels, voxel_size=VOXEL, chunks=(3, 4, 8), n_blocks=(3, 2))
    written = write_analysis(result, tmp_path / "out", figures=False)
    assert {p.name for p in written} >= {"metrics.json", "particles.csv", "pba_depth.csv"}
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["particles"]["count"] == particle_table(labels, voxel_size=VOXEL).count
    in_memory = analyze_labels(labels, voxel_size=VOXEL, n_blocks=(3, 2), split="none")
    write_analysis(in_memory, tmp_path / "memory", figures=False)
    for name in ("metrics.json", "particles.csv", "surface.csv", "volume_fraction_profile.csv"):
        assert (tmp_path / "out" / name).read_text() == (tmp_path / "memory" / name).read_text()
    assert metrics["uncertainty"]["n_blocks"] == 6


def test_uncertainty_off_and_bad_n_blocks():
    labels = _random_labels((4, 6, 5), seed=2)
    assert analyze_blockwise(labels, voxel_size=VOXEL, uncertainty=False).uncertainty is None
    with pytest.raises(InputError, match="n_blocks: expected at most 4 along axis 0"):
        analyze_blockwise(labels, voxel_size=VOXEL, n_blocks=5)


def test_stored_label_values_are_mapped_per_block():
    labels = _random_labels((5, 9, 7), seed=4)
    stored = np.choose(np.minimum(labels, 3), [0, 85, 170, 7]).astype(np.uint8)  # ignore: 7
    result = analyze_blockwise(stored, voxel_size=VOXEL, label_values=[0, 85, 170],
                               ignore_value=7, chunks=(2, 4, 3))
    _assert_same_as_in_memory(labels, result, voxel_size=VOXEL, depth_axis=1)
    with pytest.raises(InputError, match=r"labels\[.*\].*not among the phases"):
        analyze_blockwise(stored, voxel_size=VOXEL, label_values=[0, 85, 170], chunks=(2, 4, 3))


def test_phases_without_am_count_no_particles():
    labels = np.array([[[0, 1], [1, 1]]], dtype=np.uint8)
    result = analyze_blockwise(labels, voxel_size=VOXEL, phases=["pore", "cbd"], chunks=(1, 1, 1),
                               uncertainty=False)
    assert result.pba is None and result.particles == {}
    assert result.fractions.counts == {"pore": 1, "cbd": 3}
    assert result.surface.faces == {"pore-cbd": 2}


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), shape=st.tuples(*[st.integers(1, 7)] * 3),
       chunks=st.tuples(*[st.integers(1, 4)] * 3), depth_axis=st.integers(0, 2))
def test_any_chunking_gives_the_in_memory_counts(seed, shape, chunks, depth_axis):
    labels = _random_labels(shape, seed=seed, ignore=0.1)
    result = blockwise_counts(labels, voxel_size=VOXEL, depth_axis=depth_axis, chunks=chunks,
                              collector_connectivity=True)
    _assert_same_as_in_memory(labels, result, voxel_size=VOXEL, depth_axis=depth_axis)
    # to_dict: NaN fractions (no AM) become None, which compare equal
    assert _as_dict(result.connectivity) == electronic_connectivity(
        labels, depth_axis=depth_axis).to_dict()


def test_particle_reaching_the_collector_through_cbd_in_other_blocks():
    # depth runs along axis 1 (rows); the collector face is the last row. The AM particle in
    # the top-left block reaches it only through a CBD path crossing three other blocks; the
    # AM particle at the top right has no solid path and is isolated.
    labels = np.zeros((1, 6, 6), dtype=np.uint8)
    labels[0, 0, 0] = 2              # via CBD
    labels[0, 0, 1:4] = 1            # CBD along the top row ...
    labels[0, 1:6, 3] = 1            # ... then down to the collector row
    labels[0, 5, 0] = 2              # direct: on the collector face
    labels[0, 0, 5] = 2              # isolated
    counts = blockwise_counts(labels, voxel_size=(1, 1, 1), chunks=(1, 2, 2),
                              collector_connectivity=True)
    c = counts.connectivity
    assert (c.direct_particles, c.via_cbd_particles, c.isolated_particles) == (1, 1, 1)
    assert c.connected_fraction == pytest.approx(2 / 3)
    assert c == electronic_connectivity(labels)


def test_bad_label_value_names_the_block():
    labels = np.zeros((4, 4, 4), dtype=np.uint8)
    labels[3, 3, 3] = 7
    with pytest.raises(InputError, match=r"labels\[2:4, 2:4, 2:4\].*\[7\]"):
        analyze_blockwise(labels, voxel_size=VOXEL, chunks=(2, 2, 2))


def test_missing_voxel_size_and_unsupported_connectivity_are_input_errors():
    labels = np.zeros((2, 2, 2), dtype=np.uint8)
    with pytest.raises(InputError, match="voxel size"):
        analyze_blockwise(labels)
    with pytest.raises(InputError, match="connectivity.*face connectivity.*got 3"):
        analyze_blockwise(labels, voxel_size=VOXEL, connectivity=3)
    with pytest.raises(InputError, match="expected a 2-D or 3-D integer"):
        analyze_blockwise(labels.astype(np.float32), voxel_size=VOXEL)
    with pytest.raises(InputError, match="pba_method.*got 'voxel'"):
        analyze_blockwise(labels, voxel_size=VOXEL, pba_method="voxel")
    with pytest.raises(InputError, match="split: block-wise analysis supports 'none' only"):
        analyze_blockwise(labels, voxel_size=VOXEL, split="watershed")
    with pytest.raises(InputError, match=r"particle_phases: .*\['am'\] only, got \['am', 'pore'\]"):
        analyze_blockwise(labels, voxel_size=VOXEL, particle_phases=["am", "pore"])
    with pytest.raises(InputError, match="image: .* got a ndarray"):
        analyze_blockwise(labels, voxel_size=VOXEL, image=np.zeros((2, 2, 2)))
    with pytest.raises(InputError, match=r"^scan.zarr\[0:1, 0:2, 0:2\]: .*\[9\]"):
        analyze_blockwise(np.full((1, 2, 2), 9, np.uint8), voxel_size=VOXEL, source="scan.zarr")


def test_module_import_does_not_import_dask():
    code = ("import sys, electroseg.analysis.blockwise; "
            "print(any(m == 'dask' or m.startswith(('dask.', 'distributed', 'torch')) "
            "for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_two_worker_process_cluster(tmp_path):
    labels = _random_labels((24, 32, 20), seed=11)
    path = write_zarr(tmp_path / "labels.zarr", labels, voxel_size=VOXEL, chunks=(8, 16, 10))
    with dask_client(n_workers=2, threads_per_worker=1, memory_limit="1GB") as client:
        client.wait_for_workers(2, timeout=60)
        result = analyze_blockwise(path, depth_axis=1, client=client)
        counts = blockwise_counts(path, depth_axis=1, client=client)
    _assert_same_as_in_memory(labels, counts, voxel_size=VOXEL, depth_axis=1)
    _assert_same_as_in_memory(labels, result, voxel_size=VOXEL, depth_axis=1)

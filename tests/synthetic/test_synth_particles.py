"""The generator's particle instances as truth: particles.tif and truth.json ``particles``."""

from __future__ import annotations

import json

import cc3d
import numpy as np
import tifffile

from electroseg.synthetic import load_preset, make_sample, particle_truth, write_sample


def test_particles_tif_and_truth_describe_the_generators_particles(tmp_path):
    sample = make_sample(load_preset("tiny"), seed=3)
    write_sample(sample, tmp_path)
    ids = tifffile.imread(tmp_path / "particles.tif")
    assert np.array_equal(ids, sample.particle_ids)
    assert np.array_equal(ids > 0, sample.labels == 2)  # every AM voxel belongs to a particle
    truth = json.loads((tmp_path / "truth.json").read_text())["particles"]
    voxels = np.bincount(ids.ravel())
    assert truth["id"] == np.flatnonzero(voxels[1:]).tolist() or \
        truth["id"] == (np.flatnonzero(voxels[1:]) + 1).tolist()
    assert truth["voxels"] == voxels[truth["id"]].tolist()
    assert truth["count_all"] == len(truth["id"]) == truth["count_all"]
    assert truth["count"] == sum(v >= 27 for v in truth["voxels"])
    d = np.cbrt(6 * np.asarray(truth["voxels"]) * 0.1 * 0.05 * 0.05 / np.pi)
    assert np.allclose(truth["diameter_um"], d, atol=1e-6)
    # fragments: the face-connected pieces of each particle, counted independently
    for pid, pieces in zip(truth["id"], truth["fragment_voxels"]):
        sub = cc3d.connected_components(ids == pid, connectivity=6)
        assert sorted(np.bincount(sub.ravel())[1:].tolist(), reverse=True) == pieces
        assert sum(pieces) == voxels[pid]
    assert truth["cracked_count"] == sum(len([v for v in p if v >= 27]) >= 2
                                         for p in truth["fragment_voxels"])


def test_truth_of_a_hand_made_instance_map():
    ids = np.zeros((4, 10, 10), np.int32)
    ids[1:3, 1:4, 1:4] = 1           # 18 voxels: below 27, left out of the count
    ids[:, 5:9, 1:4] = 2             # touches the faces z = 0 and z = 3
    ids[1:3, 1:9, 6:9] = 3
    ids[1:3, 4, 6:9] = 0             # a crack: particle 3 in two fragments of 18 and 24 voxels
    truth = particle_truth(ids, voxel_size=(1, 1, 1))
    assert truth["id"] == [1, 2, 3] and truth["voxels"] == [18, 48, 42]
    assert truth["count"] == 2 and truth["count_all"] == 3
    assert truth["touches_border"] == [False, True, False]
    assert truth["fragment_voxels"] == [[18], [48], [24, 18]]
    assert truth["fragment_count"] == 1 and truth["cracked_count"] == 0  # pieces under 27

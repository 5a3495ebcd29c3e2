"""The default particle split (split=merged) against shapes whose particles are known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from electroseg.analysis import analyze_labels, find_fragments, find_particles, split_touching
from electroseg.cli import main
from electroseg.errors import InputError

VOXEL = (0.1, 0.05, 0.05)  # anisotropic, as the FIB-SEM presets


def _grid(shape, voxel=VOXEL):
    return np.meshgrid(*[np.arange(n) * v for n, v in zip(shape, voxel)], indexing="ij")


def _ball(shape, centre, radius, voxel=VOXEL):
    z, y, x = _grid(shape, voxel)
    return (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius ** 2


def _labels(mask):
    return np.where(mask, 2, 0).astype(np.uint8)


def test_two_touching_spheres_at_the_generators_overlap_are_two_particles():
    shape, r = (30, 60, 100), 1.2
    centres = [(1.5, 1.5, 1.3), (1.5, 1.5, 1.3 + 1.7 * r)]  # centres 0.85 (r + r) apart
    a, b = (_ball(shape, c, r) for c in centres)
    ids = find_particles(_labels(a | b), voxel_size=VOXEL)
    assert ids.max() == 2
    # each particle is one sphere cut at the mid-plane of the neck (independent truth)
    z, y, x = _grid(shape)
    left = (a | b) & (x < 1.3 + 0.85 * r)
    for k in (1, 2):
        got = ids == k
        truth = left if got[left].sum() > got[~left].sum() else (a | b) & ~left
        assert (got ^ truth).sum() <= 0.01 * truth.sum()
    assert find_particles(_labels(a | b), voxel_size=VOXEL, split="none").max() == 1


def test_an_elongated_particle_is_not_over_split():
    z, y, x = _grid((30, 60, 120))
    ellipsoid = ((z - 1.5) / 1.2) ** 2 + ((y - 1.5) / 1.2) ** 2 + ((x - 3.0) / 2.4) ** 2 <= 1
    assert find_particles(_labels(ellipsoid), voxel_size=VOXEL).max() == 1


def test_a_cracked_sphere_is_one_particle_with_two_fragments():
    shape = (30, 60, 60)
    ball = _ball(shape, (1.5, 1.5, 1.5), 1.2)
    z, y, x = _grid(shape)
    cracked = ball & (np.abs(x - 1.3) > 0.03)  # one voxel column of crack, pore
    assert find_particles(_labels(cracked), voxel_size=VOXEL, split="none").max() == 2
    ids = find_particles(_labels(cracked), voxel_size=VOXEL)
    assert ids.max() == 1
    fragments, parent = find_fragments(ids)
    assert fragments.max() == 2 and parent.tolist() == [0, 1, 1]
    result = analyze_labels(_labels(cracked), voxel_size=VOXEL, uncertainty=False)
    metrics = result.to_dict()["particles"]
    assert metrics["count"] == 1 and metrics["clusters"] == 2 and metrics["split"] == "merged"
    assert metrics["fragments"]["count"] == 2 and metrics["fragments"]["cracked_particles"] == 1
    # without crack rejoining, the pieces stay apart
    assert split_touching(cracked, voxel_size=VOXEL, merge=0.85).max() == 2


def test_spheres_a_wide_gap_apart_are_not_rejoined():
    shape = (30, 60, 110)
    a = _ball(shape, (1.5, 1.5, 1.3), 1.2)
    b = _ball(shape, (1.5, 1.5, 1.3 + 2.4 + 0.2), 1.2)  # 0.2 µm (four voxels) apart
    assert find_particles(_labels(a | b), voxel_size=VOXEL).max() == 2


def test_default_split_against_the_generators_particles():
    from electroseg.synthetic import load_preset, make_labels_and_particles, particle_truth

    preset = load_preset("demo")
    labels, truth_ids, _ = make_labels_and_particles(preset, seed=1, shape=(32, 96, 96))
    truth = particle_truth(truth_ids, voxel_size=VOXEL)
    ids = find_particles(labels, voxel_size=VOXEL)
    found = int((np.bincount(ids.ravel())[1:] >= truth["min_voxels"]).sum())
    clusters = int(find_particles(labels, voxel_size=VOXEL, split="none").max())
    assert abs(found / truth["count"] - 1) <= 0.2
    assert clusters < 0.5 * truth["count"]  # what the old default counted


def test_metrics_say_what_was_counted_and_keep_the_clusters(tmp_path):
    from electroseg.io import write_tiff

    shape = (30, 60, 100)
    a = _ball(shape, (1.5, 1.5, 1.3), 1.2)
    b = _ball(shape, (1.5, 1.5, 1.3 + 2.04), 1.2)
    path = write_tiff(tmp_path / "l.tif", _labels(a | b), voxel_size=VOXEL)
    assert main(["analyze", f"input={path}", f"out={tmp_path / 'o'}", "uncertainty=false",
                 "collector_connectivity=false"]) == 0
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())["particles"]
    assert metrics["count"] == 2 and metrics["clusters"] == 1
    assert metrics["largest_cluster_fraction"] == 1.0
    assert metrics["counted"].startswith("particles: AM clusters split at necks")
    assert metrics["diameter_um"]["whole_count"] == 2  # neither touches a face of the volume
    for name in ("fragments.csv", "fragments_histogram.csv", "fragments_by_depth.png", "psd.png"):
        assert (tmp_path / "o" / name).is_file(), name
    assert main(["analyze", f"input={path}", f"out={tmp_path / 'n'}", "uncertainty=false",
                 "collector_connectivity=false", "split=none"]) == 0
    clusters = json.loads((tmp_path / "n" / "metrics.json").read_text())["particles"]
    assert clusters["count"] == clusters["clusters"] == 1 and clusters["fragments"] is None


@pytest.mark.parametrize("options, message", [
    ({"split": "yes"}, "split: expected one of"),
    ({"merge": 2.0}, "merge: expected a saddle ratio"),
    ({"crack_merge": 0}, "crack_merge: expected a saddle ratio"),
    ({"crack_gap_um": -1.0}, "crack_gap_um: expected a positive width"),
])
def test_bad_split_options_are_input_errors(options, message):
    labels = _labels(_ball((10, 20, 20), (0.5, 0.5, 0.5), 0.3))
    with pytest.raises(InputError, match=message):
        analyze_labels(labels, voxel_size=VOXEL, uncertainty=False, **options)


def test_bad_split_on_the_command_line_is_one_line(tmp_path, capsys):
    from electroseg.io import write_tiff

    path = write_tiff(tmp_path / "l.tif", _labels(_ball((10, 20, 20), (0.5, 0.5, 0.5), 0.3)),
                      voxel_size=VOXEL)
    assert main(["analyze", f"input={path}", f"out={tmp_path / 'o'}", "merge=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "merge: expected a saddle ratio in (0, 1]" in err[0]

"""analyze_labels / write_analysis: metrics.json schema, CSVs, figures, nulls and errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from electroseg.analysis import interface_areas, particle_table, pba_profile, volume_fractions
from electroseg.analysis.metrics import analyze_labels, write_analysis
from electroseg.errors import InputError

SCHEMA = {"phases", "voxel_size_um", "depth_axis", "shape", "volume_fraction", "pba",
          "particles", "surface", "uncertainty"}


def _layered(seed: int = 0) -> np.ndarray:
    """AM balls in a CBD/pore matrix: 12 x 24 x 20, with a few ignored voxels."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((12, 24, 20)) < 0.3).astype(np.uint8)
    grid = np.indices(labels.shape)
    for centre in [(6, 5, 5), (6, 15, 12), (3, 20, 3)]:
        ball = sum((g - c) ** 2 for g, c in zip(grid, centre)) <= 9
        labels[ball] = 2
    labels[0, 0, :3] = 255
    return labels


def test_metrics_match_the_individual_functions():
    labels = _layered()
    vs = (0.05, 0.03, 0.02)
    result = analyze_labels(labels, voxel_size=vs, depth_axis=1, uncertainty=False)
    metrics = result.to_dict()
    assert set(metrics) == SCHEMA
    assert metrics["shape"] == [12, 24, 20] and metrics["voxel_size_um"] == list(vs)
    assert metrics["volume_fraction"] == volume_fractions(labels).fractions
    assert metrics["pba"] == pba_profile(labels, depth_axis=1).to_dict()
    table = particle_table(labels, voxel_size=vs)
    assert metrics["particles"]["count"] == table.count == 3
    assert metrics["particles"]["connectivity"] == 1
    assert metrics["particles"]["volume_um3"]["median"] == pytest.approx(np.median(table.size))
    assert set(metrics["particles"]["histogram"]) == {"edges_um3", "number_fraction",
                                                       "volume_fraction", "outside_bins"}
    assert metrics["particles"]["histogram"]["outside_bins"] == {"number": 0.0, "volume": 0.0}
    assert metrics["surface"] == {**interface_areas(labels, voxel_size=vs).per_um,
                                  "unit": "per_um"}
    assert metrics["uncertainty"] is None


def test_voxel_method_and_watershed_options():
    labels = _layered()
    result = analyze_labels(labels, voxel_size=(1, 1, 1), pba_method="voxel",
                            split="watershed", uncertainty=False, particle_phases=["pore"])
    assert result.pba.to_dict() == pba_profile(labels, method="voxel").to_dict()
    assert result.particles["am"].split == "watershed"
    assert result.particles["am"].count == 3
    assert "pore" in result.particles


def test_write_single_sample(tmp_path):
    result = analyze_labels(_layered(), voxel_size=(0.05, 0.03, 0.02), uncertainty=False)
    written = write_analysis(result, tmp_path)
    names = {p.name for p in written}
    assert {"metrics.json", "particles.csv", "pba_depth.csv", "volume_fraction_profile.csv",
            "pba_vs_depth.png", "psd.png", "volume_fraction_profile.png"} <= names
    assert all(p.exists() for p in written)
    assert json.loads((tmp_path / "metrics.json").read_text()) == json.loads(
        json.dumps(result.to_dict()))
    particles = pd.read_csv(tmp_path / "particles.csv")
    assert len(particles) == 3 and "volume_um3" in particles and "depth_um" in particles
    depth = pd.read_csv(tmp_path / "pba_depth.csv")
    assert len(depth) == 24 and depth["contacts"].sum() == result.pba.contacts.sum()
    for png in tmp_path.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*tmp*"))


def test_write_several_samples_overlaid(tmp_path):
    pristine = analyze_labels(_layered(0), voxel_size=(1, 1, 1), uncertainty=False)
    cycled = analyze_labels(_layered(1), voxel_size=(1, 1, 1), uncertainty=False)
    written = write_analysis({"pristine": pristine, "cycled": cycled}, tmp_path, figures=True)
    assert (tmp_path / "pristine" / "metrics.json").exists()
    assert (tmp_path / "cycled" / "particles.csv").exists()
    assert (tmp_path / "psd.png") in written
    assert not (tmp_path / "metrics.json").exists()


def test_absent_phase_gives_nulls_and_warning(caplog):
    labels = _layered()
    labels[labels == 1] = 0                       # no CBD at all
    metrics = analyze_labels(labels, voxel_size=(1, 1, 1), uncertainty=False).to_dict()
    assert metrics["volume_fraction"]["cbd"] == 0.0
    assert metrics["pba"]["pooled"] is None
    assert metrics["surface"]["pore-cbd"] is None and metrics["surface"]["cbd-am"] is None
    assert metrics["surface"]["pore-am"] > 0
    assert "phase 'cbd' is absent" in caplog.text
    no_am = np.zeros((4, 5, 6), np.uint8)
    no_am[:, :2] = 1
    empty = analyze_labels(no_am, voxel_size=(1, 1, 1), uncertainty=False).to_dict()
    assert empty["particles"]["count"] == 0
    assert empty["particles"]["volume_um3"] == {"mean": None, "median": None}


def test_2d_cross_section():
    labels = _layered()[6]
    metrics = analyze_labels(labels, voxel_size=(0.03, 0.02), depth_axis=0,
                             uncertainty=False).to_dict()
    assert "area_um2" in metrics["particles"]
    assert "edges_um2" in metrics["particles"]["histogram"]
    assert len(metrics["pba"]["per_depth"]) == 24


def test_errors_name_the_input():
    labels = _layered()
    with pytest.raises(InputError, match="scan.tif: analysis needs a voxel size"):
        analyze_labels(labels, voxel_size=None, source="scan.tif")
    bad = labels.copy()
    bad[0, 0, 0] = 7
    with pytest.raises(InputError, match=r"\[7\].*label_values"):
        analyze_labels(bad, voxel_size=(1, 1, 1))
    with pytest.raises(InputError, match="split"):
        analyze_labels(labels, voxel_size=(1, 1, 1), split="yes", uncertainty=False)
    with pytest.raises(InputError, match="particle_phases"):
        analyze_labels(labels, voxel_size=(1, 1, 1), particle_phases=["nmc"],
                       uncertainty=False)
    with pytest.raises(InputError, match="result"):
        write_analysis({}, "unused")


def test_two_phase_dataset_without_cbd_has_no_pba():
    labels = np.zeros((4, 6, 6), np.uint8)
    labels[:, 2:4, 2:4] = 1
    result = analyze_labels(labels, voxel_size=(1, 1, 1), phases=("void", "am"),
                            uncertainty=False)
    assert result.pba is None and result.to_dict()["pba"] is None
    assert result.particles["am"].count == 1


def test_image_gives_per_particle_statistics_on_the_same_particles(tmp_path):
    labels = _layered()
    ids = analyze_labels(labels, voxel_size=(1, 1, 1), uncertainty=False).particles["am"]
    # image value = 10 * depth index (y): each particle's mean is 10 x its centroid's y index
    image = np.broadcast_to(10.0 * np.arange(24)[None, :, None], labels.shape).copy()
    result = analyze_labels(labels, voxel_size=(1, 1, 1), image=image, uncertainty=False)
    stats = result.channel_stats
    assert len(stats) == ids.count == 3
    np.testing.assert_allclose(np.sort(stats.mean), np.sort(10 * ids.centroid_voxel[:, 1]))
    write_analysis(result, tmp_path, figures=False)
    assert len(pd.read_csv(tmp_path / "channel_stats.csv")) == 3
    assert not (tmp_path / "psd.png").exists()


def test_collector_connectivity_written_or_skipped(tmp_path):
    labels = _layered()
    result = analyze_labels(labels, voxel_size=(1, 1, 1), uncertainty=False)
    assert result.connectivity is not None
    write_analysis(result, tmp_path / "with", figures=False)
    assert (tmp_path / "with" / "connectivity.json").exists()
    skipped = analyze_labels(labels, voxel_size=(1, 1, 1), uncertainty=False,
                             collector_connectivity=False)
    assert skipped.connectivity is None
    write_analysis(skipped, tmp_path / "without", figures=False)
    assert not (tmp_path / "without" / "connectivity.json").exists()

"""Samples from presets, written files, truth.json and the synth command."""

from __future__ import annotations

import json
from pathlib import Path

import cc3d
import numpy as np
import pytest
import tifffile

from electroseg.analysis import pba_profile, volume_fractions
from electroseg.cli import main
from electroseg.config import builtin_config_dir
from electroseg.errors import InputError
from electroseg.io import read_labels
from electroseg.synthetic import load_preset, make_images, make_labels, make_sample, narrow_pores, write_sample
from electroseg.synthetic.sample import PRESET_KEYS

PRESETS = ["nmc_fibsem", "nmc_fibsem_cycled", "nmc_fibsem_markers", "he_nmc_fibsem", "kintsugi_2ch", "xray_ct",
           "tiny"]


@pytest.fixture(scope="module")
def tiny():
    return load_preset("tiny")


@pytest.mark.parametrize("name", PRESETS)
def test_presets_exist_with_known_keys_and_their_name(name):
    preset = load_preset(name)
    assert preset["name"] == name
    assert set(preset) <= PRESET_KEYS


def test_fibsem_presets_keep_two_to_one_anisotropy():
    for name in ["nmc_fibsem", "nmc_fibsem_cycled", "he_nmc_fibsem", "kintsugi_2ch", "tiny"]:
        z, y, x = load_preset(name)["voxel_size"]
        assert z == pytest.approx(2 * y) and y == x
    assert len(set(load_preset("xray_ct")["voxel_size"])) == 1


def test_cycled_preset_only_adds_cycling():
    pristine, cycled = load_preset("nmc_fibsem"), load_preset("nmc_fibsem_cycled")
    assert not pristine["cycling"] and cycled["cycling"]["detach_fraction"] > 0
    for key in PRESET_KEYS - {"name", "cycling"}:
        assert pristine.get(key) == cycled.get(key), key


def test_unknown_preset_and_unknown_key_raise_input_error(tiny):
    with pytest.raises(InputError, match="nmc_fibsem"):
        load_preset("no_such_preset")
    with pytest.raises(InputError, match="colour"):
        make_sample({**tiny, "colour": "red"})


def test_sample_is_deterministic_and_sparse_labels_cover_three_slices(tiny):
    a, b = make_sample(tiny, seed=4), make_sample(tiny, seed=4)
    c = make_sample(tiny, seed=5)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.images["sem"], b.images["sem"])
    assert not np.array_equal(a.labels, c.labels)
    sparse = a.sparse_labels()
    labelled = [k for k in range(sparse.shape[0]) if np.any(sparse[k] != 255)]
    assert labelled == list(a.sparse_slices) == [4, 8, 12]
    assert np.array_equal(sparse[labelled], a.labels[labelled])
    assert np.all(a.shifts[0] == 0) and np.any(a.shifts[1:] != 0)


def test_pristine_and_cycled_share_am_and_pba_drops(tiny):
    cycled = {**tiny, "cycling": {"detach_fraction": 0.25}}
    before, _ = make_labels(tiny, seed=2)
    after, summary = make_labels(cycled, seed=2)
    assert np.array_equal(before == 2, after == 2)
    ratio = pba_profile(after).pooled / pba_profile(before).pooled
    assert ratio == pytest.approx(0.75, abs=0.08)
    assert summary["detached_fraction"] == 0.25


def test_cycled_detachment_gaps_are_imaged_dark_like_pores(tiny):
    # The cycled preset's gap spans >= 3 in-plane voxels and narrow pores show little
    # shine-through, so the gaps (CBD before, pore after) look like pore, not like CBD.
    cycling = load_preset("nmc_fibsem_cycled")["cycling"]
    assert cycling["gap_um"] >= 3 * min(tiny["voxel_size"][1:]) - 1e-9
    pristine = make_sample(tiny, seed=2)
    cycled = make_sample({**tiny, "cycling": cycling}, seed=2)
    gap = (pristine.labels == 1) & (cycled.labels == 0)
    image = cycled.images["sem"].astype(float)
    pore, cbd = image[cycled.labels == 0].mean(), image[cycled.labels == 1].mean()
    assert gap.sum() > 100 and image[gap].mean() < (pore + cbd) / 2


def test_write_sample_files_and_truth_match_labels(tmp_path, tiny):
    sample = make_sample(tiny, seed=1)
    files = write_sample(sample, tmp_path / "a")
    assert [p.name for p in files] == ["image.tif", "labels.tif", "sparse_labels.tif",
                                       "particles.tif", "truth.json"]
    labels = tifffile.imread(tmp_path / "a" / "labels.tif")
    assert np.array_equal(labels, sample.labels)
    volume = read_labels(tmp_path / "a" / "sparse_labels.tif")
    assert volume.voxel_size == pytest.approx((0.1, 0.05, 0.05), rel=1e-5)
    assert np.array_equal(volume.numpy(), sample.sparse_labels())
    truth = json.loads((tmp_path / "a" / "truth.json").read_text())
    phases = tuple(truth["phases"])
    fractions = volume_fractions(labels, phases=phases).fractions
    assert truth["volume_fraction"] == fractions
    pba = pba_profile(labels, depth_axis=truth["depth_axis"], phases=phases)
    assert truth["pba"]["pooled"] == pba.pooled and truth["pba"]["depth_mean"] == pba.depth_mean
    assert truth["pba"]["per_depth"] == pba.per_depth
    assert np.allclose(truth["drift_shifts_px"], sample.shifts, atol=1e-6)
    assert truth["seed"] == 1 and truth["preset"] == "tiny" and truth["particle_count"] > 0
    assert truth["voxel_size_um"] == [0.1, 0.05, 0.05] and truth["channels"] == ["sem"]
    components = cc3d.connected_components(labels == 2, connectivity=6, return_N=True)[1]
    assert truth["am_components"] == components
    write_sample(make_sample(tiny, seed=1), tmp_path / "b")
    for path in files:
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name


def test_kintsugi_has_two_detectors_with_pt_filled_pores_brightest(tmp_path):
    sample = make_sample(load_preset("kintsugi_2ch"), seed=0, shape=(8, 64, 64))
    assert sample.channels == ("cbs", "tld")
    cbs = sample.images["cbs"].astype(float)
    means = [cbs[sample.labels == p].mean() for p in range(3)]
    assert means[0] > means[2] > means[1]
    names = [p.name for p in write_sample(sample, tmp_path)]
    assert names[:2] == ["image_cbs.tif", "image_tld.tif"]


def test_kintsugi_pt_free_narrow_pores_look_like_cbd_in_cbs_but_not_in_tld():
    preset = load_preset("kintsugi_2ch")
    sample = make_sample(preset, seed=0, shape=(16, 128, 128))
    unfilled = narrow_pores(sample.labels, preset["voxel_size"], preset["pt_free_opening_um"])
    assert unfilled.any() and np.all(sample.labels[unfilled] == 0)  # Pt-free pores are still pore
    cbs, tld = (sample.images[d].astype(float) for d in ("cbs", "tld"))
    cbd = sample.labels == 1
    filled = (sample.labels == 0) & ~unfilled
    assert abs(cbs[unfilled].mean() - cbs[cbd].mean()) < 10  # CBS: empty pores ~ CBD (grey levels 0-255)
    assert cbs[filled].mean() - cbs[unfilled].mean() > 80    # ... and far from the Pt-filled pores
    assert tld[cbd].mean() - tld[unfilled].mean() > 10       # TLD tells them apart


def test_xray_ct_has_two_phases_and_no_pba(tmp_path):
    sample = make_sample(load_preset("xray_ct"), seed=0, shape=(16, 48, 48))
    assert sample.phases == ("pore", "am")
    assert set(np.unique(sample.labels)) == {0, 1}
    write_sample(sample, tmp_path)
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["pba"] is None and set(truth["volume_fraction"]) == {"pore", "am"}
    image = sample.images["ct"].astype(float)
    assert image[sample.labels == 1].mean() > image[sample.labels == 0].mean() + 40


def test_synth_command_writes_the_sample(tmp_path):
    out = tmp_path / "s"
    assert main(["synth", "preset=tiny", "seed=3", f"out={out}", "shape=[8,32,32]"]) == 0
    truth = json.loads((out / "truth.json").read_text())
    assert truth["shape"] == [8, 32, 32] and truth["seed"] == 3
    assert tifffile.imread(out / "image.tif").shape == (8, 32, 32)


def test_synth_command_rejects_a_bad_seed(tmp_path, capsys):
    assert main(["synth", "preset=tiny", "seed=-1", f"out={tmp_path}"]) == 2
    assert "seed" in capsys.readouterr().err


def test_synth_config_defaults_to_nmc_fibsem():
    text = (builtin_config_dir() / "synth.yaml").read_text()
    assert "- preset: nmc_fibsem" in text
    assert Path(builtin_config_dir(), "preset", "tiny.yaml").is_file()


def test_command_cycled_preset_shares_particles_with_pristine(tmp_path):
    for name in ["nmc_fibsem", "nmc_fibsem_cycled"]:
        args = ["synth", f"preset={name}", "seed=7", f"out={tmp_path / name}", "shape=[8,64,64]"]
        assert main(args) == 0
    pristine = tifffile.imread(tmp_path / "nmc_fibsem" / "labels.tif")
    cycled = tifffile.imread(tmp_path / "nmc_fibsem_cycled" / "labels.tif")
    assert np.array_equal(pristine == 2, cycled == 2)
    assert np.count_nonzero(cycled == 1) < np.count_nonzero(pristine == 1)


@pytest.mark.parametrize("change, match", [
    (lambda p: p.pop("voxel_size"), "missing keys \\['voxel_size'\\]"),
    (lambda p: p["microstructure"].update(am_fractoin=0.6), "am_fractoin"),
    (lambda p: p["detectors"]["sem"].update(gain=2), "detectors.sem"),
    (lambda p: p.update(modality="mri"), "modality"),
    (lambda p: p.update(detectors={}), "detectors"),
    (lambda p: p.update(pt_free_opening_um=0.1), "needs unfilled_level .* missing in \\['sem'\\]"),
    (lambda p: p["detectors"]["sem"].update(unfilled_level=0.1), "pt_free_opening_um"),
    # a marker band makes images taller than the labels: not a sample option
    (lambda p: p["detectors"]["sem"].update(fiducial_rows=32), "unknown options \\['fiducial_rows'\\]"),
])
def test_bad_preset_parameters_raise_input_error(change, match):
    preset = load_preset("tiny")
    change(preset)
    with pytest.raises(InputError, match=match):
        make_sample(preset, seed=0, shape=(4, 16, 16))


def test_make_images_adds_the_marker_band_to_every_detector_with_the_same_specimen():
    preset = load_preset("kintsugi_2ch")
    sample = make_sample(preset, seed=2, shape=(4, 32, 64))
    images, shifts = make_images(sample.labels, preset, seed=2, fiducial_rows=12)
    np.testing.assert_array_equal(shifts, sample.shifts)
    for name, image in images.items():
        assert image.shape == (4, 44, 64)
        # the same specimen below the band (the noise differs: it is drawn for the taller image)
        assert np.corrcoef(image[:, 12:].ravel(), sample.images[name].ravel().astype(float))[0, 1] > 0.4
        assert image[:, :2].mean() < 40 < np.median(image[:, 4:12])  # vacuum, then the cap


def test_marker_band_on_ct_raises_input_error():
    preset = load_preset("xray_ct")
    labels = make_sample(preset, seed=0, shape=(4, 16, 16)).labels
    with pytest.raises(InputError, match="FIB-SEM feature"):
        make_images(labels, preset, fiducial_rows=12)


def test_negative_seed_raises_input_error(tiny):
    with pytest.raises(InputError, match="seed"):
        make_sample(tiny, seed=-3)


def test_markers_preset_images_the_same_specimen_with_the_cap_above(tmp_path):
    plain, marked = load_preset("nmc_fibsem"), load_preset("nmc_fibsem_markers")
    assert {k: v for k, v in marked.items() if k not in ("name", "fiducial_rows")} == \
        {k: v for k, v in plain.items() if k != "name"}
    a = make_sample(plain, seed=3, shape=(4, 48, 64))
    b = make_sample(marked, seed=3, shape=(4, 48, 64))
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.shifts, b.shifts)
    assert b.fiducial_rows == 32 and b.images["sem"].shape == (4, 80, 64) and a.fiducial_rows == 0
    write_sample(b, tmp_path)
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["fiducial_rows"] == 32 and "crop" in truth["fiducial_note"]
    assert tifffile.imread(tmp_path / "image.tif").shape == (4, 80, 64)
    assert tifffile.imread(tmp_path / "labels.tif").shape == (4, 48, 64)


@pytest.mark.parametrize("rows", [-2, 1.5, True])
def test_bad_preset_fiducial_rows_raises_input_error(rows):
    preset = {**load_preset("tiny"), "fiducial_rows": rows}
    with pytest.raises(InputError, match="fiducial_rows"):
        make_sample(preset, seed=0, shape=(4, 16, 16))

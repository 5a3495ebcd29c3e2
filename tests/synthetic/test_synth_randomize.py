"""Domain-randomised pretraining data: the ranges the module documents, and a set training reads."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from electroseg.errors import InputError
from electroseg.synthetic import load_preset
from electroseg.synthetic.randomize import BLUR_PX, ORDERS, make_pretraining_set, random_preset, random_sample


@pytest.fixture(scope="module")
def drawn():
    base = load_preset("nmc_fibsem")
    rng = np.random.default_rng(0)
    return [random_preset(rng, base=base) for _ in range(400)]


def _image(preset):
    return next(iter(preset["detectors"].values()))


def test_acquisition_and_voxel_ranges(drawn):
    kinds = [p["name"] for p in drawn]
    # fibsem is drawn twice as often as ct or section (1/2, 1/4, 1/4)
    assert abs(kinds.count("random_fibsem") / 400 - 0.5) < 0.08
    assert abs(kinds.count("random_ct") / 400 - 0.25) < 0.07
    for p in drawn:
        z, y, x = p["voxel_size"]
        assert 0.03 <= y == x <= 0.12 and y <= z <= 3 * y + 1e-4
        low, high = BLUR_PX["ct" if p["name"] == "random_ct" else "fibsem"]
        assert low - 1e-6 <= _image(p)["blur_sigma_um"] / y <= high + 1e-6
        if p["name"] == "random_section":
            assert _image(p)["shine_through"] == 0.0 and _image(p)["flicker"] == 0.0
        micro = p["microstructure"]
        assert 1.2 <= micro["median_diameter_um"] <= 6.0 and 0.45 <= micro["am_fraction"] <= 0.75


def test_wider_blur_changes_only_the_blur(drawn):
    base = load_preset("nmc_fibsem")
    rng = np.random.default_rng(0)
    wide = [random_preset(rng, base=base, blur_px=(0.3, 5.0)) for _ in range(400)]
    blur = np.array([_image(p)["blur_sigma_um"] / p["voxel_size"][1] for p in wide])
    assert blur.min() >= 0.3 - 1e-6 and blur.max() <= 5.0 + 1e-6
    assert (blur > 3.0).mean() > 0.1 and (blur < 0.6).mean() > 0.1  # log-uniform: both ends drawn
    for a, b in zip(drawn, wide):
        a, b = dict(a), dict(b)
        a["detectors"], b["detectors"] = ({k: v for k, v in _image(p).items() if k != "blur_sigma_um"} for p in (a, b))
        assert a == b


def test_grey_orders_follow_their_shares(drawn):
    orders = []
    for p in drawn:
        pore, cbd, am = _image(p)["levels"]
        assert min(abs(pore - cbd), abs(cbd - am), abs(pore - am)) >= 0.12 - 1e-3
        orders.append("unfilled" if pore < cbd < am else "filled" if cbd < am < pore else "other")
    # "any" draws a permutation: 1/6 of it is unfilled and 1/6 filled
    expected = {"unfilled": ORDERS["unfilled"] + ORDERS["any"] / 6, "filled": ORDERS["filled"] + ORDERS["any"] / 6}
    for kind, share in expected.items():
        assert abs(orders.count(kind) / len(orders) - share) < 0.08


def test_sample_and_set(tmp_path):
    image, labels, preset = random_sample(3, shape=(2, 48, 48), base=load_preset("nmc_fibsem"))
    assert image.dtype == np.float32 and image.shape == labels.shape == (2, 48, 48)
    assert 0.0 <= image.min() and image.max() <= 1.0 and set(np.unique(labels)) <= {0, 1, 2}
    again, _, _ = random_sample(3, shape=(2, 48, 48), base=load_preset("nmc_fibsem"))
    np.testing.assert_array_equal(image, again)  # a seed draws the same volume

    from electroseg.training import read_dataset_config

    config = make_pretraining_set(tmp_path, n_volumes=3, shape=(2, 40, 40), seed=1, two_phase=True, val_volumes=1)
    assert config["phases"] == ["pore", "solid"]
    dataset = read_dataset_config(tmp_path / "data" / "pretrain_2phase.yaml")
    assert [v.split for v in dataset.volumes] == ["train", "train", "val"]
    assert set(np.unique(tifffile.imread(tmp_path / "v000" / "labels.tif"))) <= {0, 1}
    with pytest.raises(InputError, match="n_volumes"):
        make_pretraining_set(tmp_path / "none", n_volumes=2, val_volumes=2)

"""Published reference values on real third-party volumes (../shared/data/README.md)."""

from __future__ import annotations

import pytest

from electroseg.analysis import pba_profile, volume_fractions
from electroseg.analysis.surfaces import interface_areas
from electroseg.io import read_labels


@pytest.fixture(scope="module")
def taufactor(shared_data):
    # stored values: pore 0, NMC 85, CBD 170 -> our order (pore, cbd, am)
    return read_labels(shared_data / "taufactor" / "electrode.tiff",
                       label_values=[0, 170, 85]).numpy()


def test_taufactor_volume_fractions(taufactor):
    fractions = volume_fractions(taufactor).fractions
    assert fractions["pore"] == pytest.approx(0.449917, abs=1e-5)
    assert fractions["am"] == pytest.approx(0.400466, abs=1e-5)
    assert fractions["cbd"] == pytest.approx(0.149616, abs=1e-5)


def test_taufactor_face_counting_surface_densities(taufactor):
    areas = interface_areas(taufactor, voxel_size=(1.0, 1.0, 1.0))
    per_voxel = {p: areas.phase_area_um2(p) / areas.volume_um3 for p in areas.phases}
    assert per_voxel["pore"] == pytest.approx(0.306837, abs=1e-5)
    assert per_voxel["am"] == pytest.approx(0.146105, abs=1e-5)
    assert per_voxel["cbd"] == pytest.approx(0.342226, abs=1e-5)
    assert areas.per_um["pore-am"] == pytest.approx(0.05536, abs=1e-5)
    assert areas.per_um["pore-cbd"] == pytest.approx(0.25148, abs=1e-5)
    assert areas.per_um["cbd-am"] == pytest.approx(0.09075, abs=1e-5)
    # in physical units with the authors' voxel size the densities scale by 1 / 0.390625 µm
    physical = interface_areas(taufactor, voxel_size=(0.390625,) * 3)
    assert physical.per_um["cbd-am"] == pytest.approx(areas.per_um["cbd-am"] / 0.390625)


def test_taufactor_whole_volume_contact_fraction(taufactor):
    # all three axes pooled: 0.09075 / 0.14611 = 0.621 (README); the in-plane PBA is close to it
    areas = interface_areas(taufactor, voxel_size=(1.0, 1.0, 1.0))
    assert areas.faces["cbd-am"] / (areas.faces["cbd-am"] + areas.faces["pore-am"]) == \
        pytest.approx(0.621, abs=1e-3)
    assert pba_profile(taufactor).pooled == pytest.approx(0.621, abs=0.01)


def test_inpainter_pba_is_exactly_one(shared_data):
    # stored 0 pore, 1 NMC, 2 CBD; NMC never touches pore
    labels = read_labels(shared_data / "inpainter" / "unmasked.tif",
                         label_values=[0, 2, 1]).numpy()
    for axis in (0, 1, 2):
        for method in ("face", "voxel"):
            result = pba_profile(labels, depth_axis=axis, method=method)
            assert result.pooled == 1.0
            assert result.depth_mean == 1.0
    assert volume_fractions(labels).fractions["am"] == pytest.approx(0.5195, abs=1e-4)

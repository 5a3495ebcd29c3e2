"""Volume fractions on hand-counted arrays."""

from __future__ import annotations

import numpy as np
import pytest

from electroseg.analysis import volume_fraction_profile, volume_fractions
from electroseg.errors import InputError


def test_hand_counted_with_ignore():
    labels = np.array([[[2, 1, 0], [2, 2, 2], [0, 0, 0]],
                       [[2, 2, 1], [1, 2, 0], [2, 255, 1]]], dtype=np.uint8)
    result = volume_fractions(labels)
    assert result.counts == {"pore": 5, "cbd": 4, "am": 8}
    assert result.total == 17 and result.ignored == 1
    assert result.fractions["am"] == pytest.approx(8 / 17)
    assert result.to_dict()["fractions"]["pore"] == pytest.approx(5 / 17)
    assert result.as_table()["voxels"].tolist() == [5, 4, 8]


def test_half_filled_box():
    labels = np.zeros((4, 6, 8), dtype=np.uint8)
    labels[:, :3] = 2
    assert volume_fractions(labels).fractions == {"pore": 0.5, "cbd": 0.0, "am": 0.5}


def test_profile_each_axis():
    labels = np.zeros((2, 3, 4), dtype=np.uint8)
    labels[:, 0] = 2            # first y plane all AM
    labels[1, 1, :2] = 1        # half a z-row of CBD in y=1
    labels[0, 2, 0] = 255
    prof = volume_fraction_profile(labels, depth_axis=1)
    assert prof.fractions[:, 2].tolist() == [1.0, 0.0, 0.0]
    assert prof.fractions[1].tolist() == [0.75, 0.25, 0.0]
    assert prof.ignored.tolist() == [0, 0, 1]
    assert prof.counts[2].tolist() == [7, 0, 0]
    assert prof.overall().counts == volume_fractions(labels).counts
    by_z = volume_fraction_profile(labels, depth_axis=0)
    assert by_z.counts.tolist() == [[7, 0, 4], [6, 2, 4]]
    by_x = volume_fraction_profile(labels, depth_axis=2)
    assert by_x.counts[:, 1].tolist() == [1, 1, 0, 0]
    assert by_x.counts[0].tolist() == [2, 1, 2]


def test_all_ignored_gives_null():
    result = volume_fractions(np.full((2, 2), 255, dtype=np.uint8))
    assert result.total == 0 and result.fractions == {"pore": None, "cbd": None, "am": None}
    prof = volume_fraction_profile(np.full((2, 2), 255, dtype=np.uint8), depth_axis=0)
    assert prof.to_dict()["fractions"]["am"] == [None, None]


def test_other_phases_and_dtypes():
    labels = np.array([[0, 1], [1, 1]], dtype=np.int32)
    result = volume_fractions(labels, phases=("solid", "void"))
    assert result.fractions == {"solid": 0.25, "void": 0.75}


def test_unexpected_values_name_them_and_the_fix():
    with pytest.raises(InputError, match=r"\[85, 170\].*label_values=\[0, 85, 170\]"):
        volume_fractions(np.array([[0, 85, 170]], dtype=np.uint8))
    with pytest.raises(InputError, match="ignore_value"):
        volume_fractions(np.zeros((2, 2), np.uint8), ignore_value=1)
    with pytest.raises(InputError, match="dtype float"):
        volume_fractions(np.zeros((2, 2)))

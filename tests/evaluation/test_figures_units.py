"""Figure axes say what was measured: particle areas in 2-D, volumes in 3-D."""

import numpy as np

from electroseg.evaluation.figures import size_distribution_figure


def test_size_distribution_axis_names_area_in_2d_and_volume_in_3d():
    sizes = {"a": np.array([1.0, 10.0, 100.0])}
    assert size_distribution_figure(sizes, two_d=True).axes[0].get_xlabel() == "log10 particle area (µm²)"
    assert size_distribution_figure(sizes).axes[0].get_xlabel() == "log10 particle volume (µm³)"

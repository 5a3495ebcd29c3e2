"""Synthetic electrodes with exact ground truth: microstructure generator and image simulators.

``make_sample(load_preset("nmc_fibsem"), seed=0)`` gives labels (0 pore, 1 cbd, 2 am), simulated
FIB-SEM or CT images and the drift applied; ``write_sample`` writes them with truth.json.
"""

from electroseg.synthetic.ct import simulate_ct
from electroseg.synthetic.fibsem import SimulatedImage, narrow_pores, random_drift_shifts, simulate_fibsem
from electroseg.synthetic.microstructure import (
    Microstructure,
    detach_cbd,
    generate_microstructure,
    merge_phases,
)
from electroseg.synthetic.instances import fragment_ids, particle_truth
from electroseg.synthetic.sample import (
    Sample,
    load_preset,
    make_images,
    make_labels,
    make_labels_and_particles,
    make_sample,
)
from electroseg.synthetic.writer import image_names, sample_truth, write_sample

__all__ = [
    "Microstructure",
    "Sample",
    "SimulatedImage",
    "detach_cbd",
    "fragment_ids",
    "generate_microstructure",
    "image_names",
    "load_preset",
    "make_images",
    "make_labels",
    "make_labels_and_particles",
    "make_sample",
    "merge_phases",
    "narrow_pores",
    "particle_truth",
    "random_drift_shifts",
    "sample_truth",
    "simulate_ct",
    "simulate_fibsem",
    "write_sample",
]

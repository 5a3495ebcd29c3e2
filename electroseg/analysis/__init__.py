"""Battery-electrode metrics from phase-label volumes: numpy/scipy/skimage only, never torch.

Functions take ``labels`` (uint8 phase indices, ``(Z, Y, X)`` or ``(Y, X)``) first, then
keyword-only options ``voxel_size`` (µm, array order), ``depth_axis=1``, ``phases`` and
``ignore_value=255``; results are frozen dataclasses with ``to_dict()`` / ``as_table()``.
"""

from electroseg.analysis.contacts import (
    FacePairCounts,
    PBAProfile,
    face_pair_counts,
    pba_from_pairs,
    pba_profile,
    pooled_pba,
)
from electroseg.analysis.fractions import (
    VolumeFractionProfile,
    VolumeFractions,
    volume_fraction_profile,
    volume_fractions,
)
from electroseg.analysis.particles import (
    DEFAULT_EDGES_UM3,
    ParticleTable,
    SizeHistogram,
    label_particles,
    particle_table,
    size_histogram,
    split_touching,
)
from electroseg.analysis.surfaces import (
    InterfaceAreas,
    face_areas,
    interface_areas,
    interface_areas_from_pairs,
)

__all__ = [
    "DEFAULT_EDGES_UM3",
    "FacePairCounts",
    "InterfaceAreas",
    "PBAProfile",
    "ParticleTable",
    "SizeHistogram",
    "VolumeFractionProfile",
    "VolumeFractions",
    "face_areas",
    "face_pair_counts",
    "interface_areas",
    "interface_areas_from_pairs",
    "label_particles",
    "particle_table",
    "pba_from_pairs",
    "pba_profile",
    "pooled_pba",
    "size_histogram",
    "split_touching",
    "volume_fraction_profile",
    "volume_fractions",
]

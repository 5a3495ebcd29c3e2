"""Battery-electrode metrics from phase-label volumes: numpy/scipy/skimage only, never torch.

Functions take ``labels`` (uint8 phase indices, ``(Z, Y, X)`` or ``(Y, X)``) first, then
keyword-only options ``voxel_size`` (µm, array order), ``depth_axis=1``, ``phases`` and
``ignore_value=255``; results are frozen dataclasses with ``to_dict()`` / ``as_table()``.
"""

from electroseg.analysis.channel_stats import ChannelStats, particle_channel_stats
from electroseg.analysis.sample_comparison import SampleComparison, compare_samples
from electroseg.analysis.connectivity import Connectivity, electronic_connectivity
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
    find_fragments,
    find_particles,
    fragment_table,
    label_particles,
    particle_table,
    size_histogram,
    split_touching,
    volume_weighted_median,
)
from electroseg.analysis.metrics import AnalysisResult, analyze_labels, write_analysis
from electroseg.analysis.surfaces import (
    InterfaceAreas,
    face_areas,
    interface_areas,
    interface_areas_from_pairs,
)
from electroseg.analysis.tortuosity import Tortuosity, tortuosity_factor
from electroseg.analysis.uncertainty import Uncertainty, subblock_metrics, summarize_uncertainty

__all__ = [
    "AnalysisResult",
    "ChannelStats",
    "Connectivity",
    "DEFAULT_EDGES_UM3",
    "FacePairCounts",
    "InterfaceAreas",
    "PBAProfile",
    "ParticleTable",
    "SampleComparison",
    "SizeHistogram",
    "Tortuosity",
    "Uncertainty",
    "VolumeFractionProfile",
    "VolumeFractions",
    "analyze_labels",
    "compare_samples",
    "electronic_connectivity",
    "face_areas",
    "face_pair_counts",
    "interface_areas",
    "interface_areas_from_pairs",
    "find_fragments",
    "find_particles",
    "fragment_table",
    "label_particles",
    "particle_channel_stats",
    "particle_table",
    "pba_from_pairs",
    "pba_profile",
    "pooled_pba",
    "size_histogram",
    "split_touching",
    "subblock_metrics",
    "summarize_uncertainty",
    "tortuosity_factor",
    "volume_fraction_profile",
    "volume_fractions",
    "volume_weighted_median",
    "write_analysis",
]

"""Battery-electrode metrics from phase-label volumes: numpy/scipy/skimage only, never torch.

Functions take ``labels`` (uint8 phase indices, ``(Z, Y, X)`` or ``(Y, X)``) first, then
keyword-only options ``voxel_size`` (µm, array order), ``depth_axis=1``, ``phases`` and
``ignore_value=255``; results are frozen dataclasses with ``to_dict()`` / ``as_table()``.
"""

from electroseg.analysis.contacts import (
    FacePairCounts,
    PBAProfile,
    face_pair_counts,
    pba_profile,
    pooled_pba,
)
from electroseg.analysis.fractions import (
    VolumeFractionProfile,
    VolumeFractions,
    volume_fraction_profile,
    volume_fractions,
)

__all__ = [
    "FacePairCounts",
    "PBAProfile",
    "VolumeFractionProfile",
    "VolumeFractions",
    "face_pair_counts",
    "pba_profile",
    "pooled_pba",
    "volume_fraction_profile",
    "volume_fractions",
]

"""FIB-SEM preprocessing: slice registration, curtaining removal, shading, flicker, denoising.

Every step is a plain function on a float32 array; `preprocess_volume` chains configured steps.
"""

from electroseg.preprocess.denoise import denoise
from electroseg.preprocess.destripe import remove_curtaining
from electroseg.preprocess.intensity import flatten_shading, normalize_slices
from electroseg.preprocess.pipeline import STEPS, PreprocessResult, crop, preprocess_channels, preprocess_volume
from electroseg.preprocess.qc import plot_shifts, write_preprocess_qc
from electroseg.preprocess.registration import apply_shifts, estimate_shifts, register_slices

__all__ = [
    "STEPS",
    "PreprocessResult",
    "apply_shifts",
    "crop",
    "denoise",
    "estimate_shifts",
    "flatten_shading",
    "normalize_slices",
    "plot_shifts",
    "preprocess_channels",
    "preprocess_volume",
    "register_slices",
    "remove_curtaining",
    "write_preprocess_qc",
]

"""Classical segmentation: multi-level thresholds, gradient analysis of phase boundaries and
artefact cleanup, giving labels, a per-voxel confidence and the thresholds."""

from electroseg.classical.cleanup import CleanupOptions, clean_labels
from electroseg.classical.confidence import threshold_confidence
from electroseg.classical.gradient import GradientOptions, reassign_transition_bands
from electroseg.classical.segment import Segmentation, compute_thresholds, segment_volume
from electroseg.classical.sensitivity import ThresholdSensitivity, threshold_sensitivity
from electroseg.classical.thresholds import apply_thresholds, class_to_label

__all__ = [
    "CleanupOptions",
    "GradientOptions",
    "Segmentation",
    "ThresholdSensitivity",
    "apply_thresholds",
    "class_to_label",
    "clean_labels",
    "compute_thresholds",
    "reassign_transition_bands",
    "segment_volume",
    "threshold_confidence",
    "threshold_sensitivity",
]

"""Agreement between segmentations, and what their differences mean downstream.

numpy/scipy only (never torch): ``agreement`` judges labels against a dense or sparse reference,
``compare_segmentations`` also sets metric differences against within-sample variability.
"""

from electroseg.evaluation.agreement import Agreement, agreement, boundary_scores, confusion_matrix

__all__ = ["Agreement", "agreement", "boundary_scores", "confusion_matrix"]

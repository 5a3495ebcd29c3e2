"""Agreement between segmentations, and what their differences mean downstream.

numpy/scipy only (never torch): ``agreement`` judges labels against a dense or sparse reference,
``compare_segmentations`` also sets metric differences against within-sample variability.
"""

from electroseg.evaluation.agreement import Agreement, agreement, boundary_scores, confusion_matrix
from electroseg.evaluation.comparison import Comparison, MetricDifference, compare_segmentations
from electroseg.evaluation.products import write_comparison

__all__ = ["Agreement", "Comparison", "MetricDifference", "agreement", "boundary_scores",
           "compare_segmentations", "confusion_matrix", "write_comparison"]

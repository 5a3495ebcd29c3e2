"""electroseg: segment battery-electrode microscopy and measure what battery scientists publish.

``import electroseg as es`` is instant; each subpackage is imported the first time it is used:

>>> import electroseg as es
>>> sorted(es.SUBPACKAGES)[:3]
['analysis', 'classical', 'evaluation']

``es.io.read_volume``, ``es.classical.segment_volume``, ``es.analysis.analyze_labels`` (never
imports torch), ``es.inference.Predictor`` / ``es.inference.load_checkpoint`` /
``es.inference.predict_volume``, ``es.training.train``, ``es.synthetic``, ``es.evaluation``,
``es.report``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

DEFAULT_PHASES: tuple[str, ...] = ("pore", "cbd", "am")
"""Default phase names; label values 0, 1, 2 in this order."""

#: Subpackages reachable as attributes of the package, imported on first use.
SUBPACKAGES = ("io", "synthetic", "preprocess", "classical", "models", "training", "inference",
               "analysis", "evaluation", "report")

__all__ = ["DEFAULT_PHASES", "SUBPACKAGES", "__version__", *SUBPACKAGES]


def __getattr__(name: str) -> Any:
    if name in SUBPACKAGES:
        module = importlib.import_module(f"electroseg.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'electroseg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(SUBPACKAGES))

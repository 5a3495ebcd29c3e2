"""``electroseg run``: the whole chain on one dataset, one inspectable folder per stage.

- :mod:`~electroseg.pipeline.stages`: how one stage runs (:func:`run_stage`: a ``.partial``
  folder renamed when complete, ``stage.json`` with its settings' fingerprint, skipped on a
  rerun with the same settings) and what each stage does;
- :mod:`~electroseg.pipeline.chain`: :func:`run_pipeline` (data → preprocess → classical →
  train → predict → analysis → compare → report) and :func:`run_cycling` (a pristine and a
  cycled sample, and the PBA drop of every route).
"""

from electroseg.pipeline.chain import RunResult, run_cycling, run_pipeline
from electroseg.pipeline.stages import (STAGES, Scan, StageRecord, best_checkpoint, preprocess_images,
                                        preprocessed_dataset, run_stage, target_scan)

__all__ = ["STAGES", "RunResult", "Scan", "StageRecord", "best_checkpoint", "preprocess_images",
           "preprocessed_dataset", "run_cycling", "run_pipeline", "run_stage", "target_scan"]

"""How the trained model agrees with every labelled slice, and its IoU on the held-out labels.

Written to ``train_metrics.json`` by :func:`electroseg.training.train`, so that a model that
learnt one labelled slice and not another shows it in the training output itself, without a
test split: ``labelled_slices`` lists, per volume and Z slice holding person-made labels, the
share of those voxels the model labels as the person did (overall and per phase) and whether
the slice was held out; ``held_out`` gives per-phase IoU over all held-out (or validation
split) labels, predicted whole-slice, as ``predict`` would.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from electroseg.training.holdout import labelled_units
from electroseg.training.sampling import TrainingVolume

__all__ = ["labelled_slice_scores", "WARN_BELOW"]

logger = logging.getLogger(__name__)
#: A labelled slice whose agreement falls below this is named in a warning.
WARN_BELOW = 0.9


def _slab(spec: Any, z: int, n_z: int) -> tuple[int, int]:
    half = spec.context_slices if spec.name == "multichannel2d" else spec.patch_size[0] // 2
    return max(0, z - half), min(n_z, z + half + 1)


def _predict_slice(network: Any, spec: Any, volume: TrainingVolume, z: int) -> np.ndarray:
    from electroseg.training.calibrate import predict_logits

    z0, z1 = _slab(spec, z, volume.image.shape[1])
    logits = predict_logits(network, spec, np.ascontiguousarray(volume.image[:, z0:z1]))
    return logits[:, z - z0].argmax(0).numpy().astype(np.uint8)


def labelled_slice_scores(checkpoint: Path, volumes: Sequence[tuple[TrainingVolume, np.ndarray | None]]
                          ) -> dict[str, Any]:
    """Scores of the model in ``checkpoint`` on each labelled slice of ``volumes``.

    ``volumes``: (volume with all its person-made labels, held-out mask or None); a mask of
    None marks a validation-split volume (all of its labels count as held out).
    """
    from electroseg.models import model_from_checkpoint, read_checkpoint

    loaded = model_from_checkpoint(read_checkpoint(checkpoint), source=str(checkpoint))
    spec, phases = loaded.spec, list(loaded.spec.phases)
    k = len(phases)
    confusion = np.zeros((k, k), np.int64)
    rows = []
    for volume, held in volumes:
        for _, z in labelled_units([volume]):
            human = volume.target.human[z] & (volume.target.weight[z] > 0)
            truth = volume.target.labels[z][human].astype(np.int64)
            pred = _predict_slice(loaded.network, spec, volume, z)[human].astype(np.int64)
            held_here = np.ones(truth.shape, bool) if held is None else held[z][human]
            confusion += np.bincount(truth[held_here] * k + pred[held_here], minlength=k * k).reshape(k, k)
            per_phase = {phases[p]: round(float((pred[truth == p] == p).mean()), 4)
                         for p in range(k) if (truth == p).any()}
            row = {"volume": volume.name, "slice": int(z), "voxels": int(truth.size),
                   "agreement": round(float((pred == truth).mean()), 4), "per_phase": per_phase,
                   "held_out": "all" if held_here.all() else ("part" if held_here.any() else "no")}
            rows.append(row)
            if row["agreement"] < WARN_BELOW:
                logger.warning("%s slice %d: the model agrees with %.1f %% of its labels (%s); "
                               "look at this slice before trusting the model", volume.name, z,
                               100 * row["agreement"], per_phase)
    tp = np.diag(confusion).astype(float)
    union = confusion.sum(0) + confusion.sum(1) - tp
    iou = {phases[p]: round(float(tp[p] / union[p]), 4) for p in range(k) if confusion[p].sum() > 0}
    held_out = {"voxels": int(confusion.sum()), "iou": iou,
                "mean_iou": round(float(np.mean(list(iou.values()))), 4) if iou else None}
    return {"held_out": held_out, "labelled_slices": rows, "checkpoint": Path(checkpoint).name}

"""How the trained model agrees with every labelled slice, and its IoU on the held-out labels.

Written to ``train_metrics.json`` by :func:`electroseg.training.train`, so that a model that
learnt one labelled slice and not another shows it in the training output itself, without a
test split: ``labelled_slices`` lists, per volume and Z slice holding person-made labels, the
share of those voxels the model labels as the person did (overall and per phase) and whether
the slice was held out; ``held_out`` gives per-phase IoU over all held-out (or validation
split) labels. Slices are predicted by the engine ``predict`` uses (same windows, blending and
edge handling), from the slices around them that a whole-volume prediction would use.
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
#: A labelled slice whose agreement falls this far below the median over all labelled slices
#: is named in a warning (dense labels agree less at phase boundaries everywhere; a slice the
#: model has not learnt stands out from the others).
WARN_BELOW = 0.1


def _slab(spec: Any, z: int, n_z: int) -> tuple[int, int]:
    """Slices around z that give it the context it has when the whole volume is predicted: its
    2.5-D neighbours, or for 3-D at least one window depth, flush with the volume's ends."""
    if spec.name == "multichannel2d":
        return max(0, z - spec.context_slices), min(n_z, z + spec.context_slices + 1)
    depth = spec.patch_size[0]
    z0 = min(max(0, z - depth // 2), max(0, n_z - depth - 1))
    return z0, min(n_z, z0 + depth + 1)


def _predict_slices(network: Any, spec: Any, volume: TrainingVolume, slices: list[int],
                    probabilities: dict | None = None) -> dict[int, np.ndarray]:
    """Labels of the given Z slices, each predicted with the context the network needs (the
    slabs of neighbouring slices merged, so a densely labelled volume is predicted once); with
    a ``probabilities`` dict, also each slice's float16 class probabilities into it."""
    from dataclasses import replace

    from electroseg.inference import predict_volume

    prepared = replace(spec, normalization={"method": "none"}, preprocess=())  # images are normalised
    n_z, ranges = volume.image.shape[1], []
    for z in sorted(slices):
        z0, z1 = _slab(spec, z, n_z)
        if ranges and z0 <= ranges[-1][1]:
            ranges[-1][1] = max(ranges[-1][1], z1)
        else:
            ranges.append([z0, z1])
    out = {}
    for z0, z1 in ranges:
        result = predict_volume(network, np.ascontiguousarray(volume.image[:, z0:z1]), spec=prepared,
                                probabilities=None if probabilities is None else "float16")
        out.update({z: result.labels[z - z0] for z in slices if z0 <= z < z1})
        if probabilities is not None:
            probabilities.update({z: result.probabilities[:, z - z0] for z in slices if z0 <= z < z1})
    return out


#: Fewest held-out labelled voxels a temperature is fitted on.
MIN_TEMPERATURE_VOXELS = 500


def fit_temperature(probabilities: np.ndarray, truth: np.ndarray) -> dict | None:
    """The temperature T that makes ``softmax(log p / T)`` best predict ``truth`` (least
    negative log-likelihood), from probabilities p (K, N) computed at T = 1 (``log p`` equals
    the logits up to a per-voxel constant, which the softmax ignores).

    Returns ``{"temperature", "nll_before", "nll_after", "voxels"}``, or None with fewer than
    ``MIN_TEMPERATURE_VOXELS`` voxels. T > 1 softens an over-confident model; the labels (argmax)
    do not change.

    Examples
    --------
    >>> p = np.array([[0.99] * 6 + [0.01] * 4, [0.01] * 6 + [0.99] * 4])  # sure, but 60/40 right
    >>> fit = fit_temperature(np.repeat(p, 60, axis=1), np.repeat(np.r_[0, 0, 0, 0, 1, 1, 0, 0, 1, 1], 60))
    >>> fit["temperature"] > 2 and fit["nll_after"] < fit["nll_before"]
    True
    """
    from scipy.optimize import minimize_scalar

    truth = np.asarray(truth, np.int64)
    if truth.size < MIN_TEMPERATURE_VOXELS:
        return None
    step = max(1, truth.size // 2_000_000)  # evenly strided: at most 2 M voxels
    truth, probabilities = truth[::step], np.asarray(probabilities)[:, ::step]
    logp = np.log(np.clip(np.asarray(probabilities, np.float64), 1e-6, 1.0))
    rows = np.arange(truth.size)

    def nll(log_t: float) -> float:
        z = logp / np.exp(log_t)
        z = z - z.max(axis=0)
        return float(np.mean(np.log(np.exp(z).sum(axis=0)) - z[truth, rows]))

    best = minimize_scalar(nll, bounds=(np.log(0.2), np.log(20.0)), method="bounded", options={"xatol": 1e-3})
    return {"temperature": round(float(np.exp(best.x)), 4), "nll_before": round(nll(0.0), 5),
            "nll_after": round(float(best.fun), 5), "voxels": int(truth.size)}


def labelled_slice_scores(checkpoint: Path, volumes: Sequence[tuple[TrainingVolume, np.ndarray | None]],
                          *, depth_axis: int = 1) -> dict[str, Any]:
    """Scores of the model in ``checkpoint`` on each labelled slice of ``volumes``.

    ``volumes``: (volume with all its person-made labels, held-out mask or None); a mask of
    None marks a validation-split volume (all of its labels count as held out). With
    ``depth_axis`` 1 or 2, ``slice_errors`` holds the metric errors on the held-out slices at
    least half labelled (:func:`electroseg.analysis.segmentation_error.measure_slice_errors`;
    None when there is none), which predictions with this checkpoint turn into
    ``uncertainty.segmentation`` / ``total``: pooled over the volumes, and with more than one
    such volume, each volume's own under ``"by_volume"`` (keyed by the volume's name, its image
    paths), so that a run can correct a scan with the held-out slices of its own specimen.
    """
    from electroseg.analysis.segmentation_error import dense_slices, measure_slice_errors
    from electroseg.models import model_from_checkpoint, read_checkpoint

    loaded = model_from_checkpoint(read_checkpoint(checkpoint), source=str(checkpoint))
    spec, phases = loaded.spec, list(loaded.spec.phases)
    k = len(phases)
    confusion = np.zeros((k, k), np.int64)
    rows = []
    held_p, held_truth = [], []
    errors, by_volume = None, {}
    for volume, held in volumes:
        slices = [z for _, z in labelled_units([volume])]
        probabilities: dict = {}
        predicted = _predict_slices(loaded.network, spec, volume, slices, probabilities)
        hand_volume = np.full(volume.target.labels.shape, 255, np.uint8)  # held-out labels only
        seg_volume = np.full(volume.target.labels.shape, 255, np.uint8)
        for z in slices:
            human = volume.target.human[z] & (volume.target.weight[z] > 0)
            truth = volume.target.labels[z][human].astype(np.int64)
            pred = predicted[z][human].astype(np.int64)
            held_here = np.ones(truth.shape, bool) if held is None else held[z][human]
            confusion += np.bincount(truth[held_here] * k + pred[held_here], minlength=k * k).reshape(k, k)
            held_p.append(probabilities[z][:, human][:, held_here])
            held_truth.append(truth[held_here])
            if depth_axis in (1, 2) and held_here.any():
                mask = human.copy()
                mask[human] = held_here
                hand_volume[z] = np.where(mask, volume.target.labels[z], 255)
                seg_volume[z] = predicted[z]
            per_phase = {phases[p]: round(float((pred[truth == p] == p).mean()), 4)
                         for p in range(k) if (truth == p).any()}
            row = {"volume": volume.name, "slice": int(z), "voxels": int(truth.size),
                   "agreement": round(float((pred == truth).mean()), 4), "per_phase": per_phase,
                   "held_out": "all" if held_here.all() else ("part" if held_here.any() else "no")}
            rows.append(row)
        if depth_axis in (1, 2) and (hand_volume != 255).any():  # adjacent held-out slices: through-slice error
            dense, _ = dense_slices(hand_volume)
            found = measure_slice_errors(seg_volume, dense, depth_axis=depth_axis, phases=phases,
                                         source=f"{volume.name} held-out slices")
            if found is not None:
                errors = found if errors is None else errors.pooled(found)
                own = by_volume.get(volume.name)
                by_volume[volume.name] = found if own is None else own.pooled(found)
    typical = float(np.median([r["agreement"] for r in rows])) if rows else 0.0
    for row in rows:
        if row["agreement"] < typical - WARN_BELOW:
            logger.warning("%s slice %d: the model agrees with %.1f %% of its labels (%s), against %.1f %% "
                           "on the median labelled slice; look at this slice before trusting the model",
                           row["volume"], row["slice"], 100 * row["agreement"], row["per_phase"], 100 * typical)
    tp = np.diag(confusion).astype(float)
    union = confusion.sum(0) + confusion.sum(1) - tp
    iou = {phases[p]: round(float(tp[p] / union[p]), 4) for p in range(k) if confusion[p].sum() > 0}
    held_out = {"voxels": int(confusion.sum()), "iou": iou,
                "mean_iou": round(float(np.mean(list(iou.values()))), 4) if iou else None}
    temperature = fit_temperature(np.concatenate(held_p, axis=1), np.concatenate(held_truth)) if held_truth else None
    stored = None if errors is None else errors.to_dict()
    if stored is not None and len(by_volume) > 1:  # a run corrects a scan with its own specimen's slices
        stored["by_volume"] = {name: found.to_dict() for name, found in by_volume.items()}
    return {"held_out": held_out, "labelled_slices": rows, "checkpoint": Path(checkpoint).name,
            "temperature": temperature, "slice_errors": stored}

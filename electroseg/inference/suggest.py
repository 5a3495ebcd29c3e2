"""Which slices to label next: where the model is least sure, spread along the stack.

Each Z slice is scored by the mean normalised entropy of the model's class probabilities
(:func:`electroseg.inference.qa.normalized_entropy`: 0 = one phase certain everywhere, 1 = all
phases equally likely); slices are picked best first, each at least ``min_gap`` slices from
those already picked (neighbours look alike: labelling both teaches little more than one) and
from slices already labelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from electroseg.errors import InputError

__all__ = ["slice_uncertainty", "suggest_slices"]


def slice_uncertainty(model: Any, image: Any, **predict_options) -> np.ndarray:
    """Mean normalised entropy per Z slice, shape (Z,), float64 (a 2-D image is one slice)."""
    from electroseg.inference.predict import predict_volume
    from electroseg.inference.qa import normalized_entropy

    prediction = predict_volume(model, image, probabilities="float16", **predict_options)
    entropy = normalized_entropy(prediction.probabilities).astype(np.float32)
    if entropy.ndim == 2:
        entropy = entropy[None]
    return entropy.reshape(entropy.shape[0], -1).mean(axis=1).astype(np.float64)


SPREADS = ("coverage", "gap")


def suggest_slices(scores: Sequence[float], n: int, *, min_gap: int | None = None,
                   labelled: Sequence[int] = (), spread: str = "gap") -> list[int]:
    """The ``n`` slices to label next, best first, greedily.

    ``spread="gap"`` (default): the highest scores at least ``min_gap`` from every slice picked
    or labelled (default ``max(1, Z // (2 (n + number labelled)))``).

    ``spread="coverage"`` (opt-in): each pick maximises the slice's score times
    ``min(1, d / D)``, d its distance to the nearest slice picked or already ``labelled`` (or to
    just beyond the stack's ends), D = Z / (n + number labelled + 1) the spacing of evenly spaced
    slices. A slice in an unlabelled stretch counts in full, one beside a labelled slice little:
    uncertainty chooses among the slices that fill gaps. ``min_gap`` (default 1) is a hard
    minimum distance to the other slices. On generated volumes neither rule differed from
    evenly spaced slices by more than the spread between training runs
    (``benchmarks/active_learning.py``), so the default stays ``gap``.

    Fewer than ``n`` come back when the gap leaves no room.

    Examples
    --------
    >>> suggest_slices([0.1, 0.9, 0.85, 0.2, 0.3, 0.7], 2, min_gap=2)
    [1, 5]
    >>> suggest_slices([0.1, 0.9, 0.85, 0.2, 0.3, 0.7], 2, min_gap=2, labelled=[5])
    [1, 3]
    >>> suggest_slices([0.5, 0.5, 0.9, 0.95, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5], 2, spread="coverage")  # 2 counts little
    [3, 6]
    """
    scores = np.asarray(scores, np.float64)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n: expected a positive number of slices, got {n!r}")
    if spread not in SPREADS:
        raise InputError(f"spread: expected one of {SPREADS}, got {spread!r}")
    labelled = sorted({int(z) for z in labelled})
    if spread == "gap":
        gap = max(1, scores.size // (2 * (n + len(labelled)))) if min_gap is None else int(min_gap)
    else:
        gap = 1 if min_gap is None else int(min_gap)
    if gap < 1:
        raise InputError(f"min_gap: expected a positive number of slices, got {min_gap!r}")
    if spread == "gap":
        picked: list[int] = []
        for z in np.argsort(-scores, kind="stable"):
            if len(picked) == n:
                break
            if all(abs(int(z) - t) >= gap for t in labelled + picked):
                picked.append(int(z))
        return picked
    z = np.arange(scores.size)
    spacing = scores.size / (n + len(labelled) + 1)
    picked = []
    for _ in range(n):
        taken = np.asarray(labelled + picked, np.float64)
        near = np.abs(z[:, None] - taken[None]).min(axis=1) if taken.size else np.full(z.size, np.inf)
        ends = np.minimum(z + 1, scores.size - z)  # as if slices -1 and Z were labelled
        value = scores * np.minimum(1.0, np.minimum(near, ends) / spacing)
        value[near < gap] = -np.inf
        if not np.isfinite(value).any():
            break
        picked.append(int(np.argmax(value)))
    return picked

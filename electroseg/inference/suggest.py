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


def suggest_slices(scores: Sequence[float], n: int, *, min_gap: int | None = None,
                   labelled: Sequence[int] = ()) -> list[int]:
    """The ``n`` slices to label next, best first (greedy: highest score at least ``min_gap``
    away from every slice picked or already ``labelled``; default gap
    ``max(1, Z // (2 (n + number labelled)))``: room for all of them spread along the stack).

    Fewer than ``n`` come back when the gap leaves no room.

    Examples
    --------
    >>> suggest_slices([0.1, 0.9, 0.85, 0.2, 0.3, 0.7], 2, min_gap=2)
    [1, 5]
    >>> suggest_slices([0.1, 0.9, 0.85, 0.2, 0.3, 0.7], 2, min_gap=2, labelled=[5])
    [1, 3]
    """
    scores = np.asarray(scores, np.float64)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n: expected a positive number of slices, got {n!r}")
    gap = max(1, scores.size // (2 * (n + len(set(labelled))))) if min_gap is None else int(min_gap)
    if gap < 1:
        raise InputError(f"min_gap: expected a positive number of slices, got {min_gap!r}")
    taken = [int(z) for z in labelled]
    picked: list[int] = []
    for z in np.argsort(-scores, kind="stable"):
        if len(picked) == n:
            break
        if all(abs(int(z) - t) >= gap for t in taken + picked):
            picked.append(int(z))
    return picked

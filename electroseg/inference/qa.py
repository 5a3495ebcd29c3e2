"""How far to trust one prediction: an uncertainty map and a short quality record.

``electroseg predict`` writes ``<name>/uncertainty.tif`` (the normalised entropy of the class
probabilities, computed in float16 and stored as float32, the float type ImageJ reads: 0 = one
phase certain, 1 = all phases equally likely) and a ``qa`` block
in ``prediction.json`` (and ``low_confidence`` in summary.csv):

- ``low_confidence``: the share of voxels whose normalised entropy is at least
  `LOW_CONFIDENCE` (for three phases, ``p = (0.7, 0.2, 0.1)`` is 0.73; ``(0.8, 0.15, 0.05)``
  0.56), over the volume and per predicted phase;
- ``tiling_agreement`` (``qa_tiling=true``): the central half of the input (in-plane) predicted
  on its own, and the share of its interior voxels that get the label the whole input gave them.
  Batch-norm models give the same labels however the input is cut, up to the zero padding at
  window edges; a low value says the model depends on the tiling.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LOW_CONFIDENCE = 0.6  # normalised entropy from which a voxel counts as low-confidence
TILING_MARGIN = 16  # pixels of the crop's edge left out of the tiling agreement
_SLAB = 8  # planes per step of the entropy computation (bounds its temporaries)


def normalized_entropy(probabilities: np.ndarray) -> np.ndarray:
    """``-sum p log p / log K`` per voxel, float16, from (K, ...) probabilities (float, or uint8
    ``round(255 p)``, renormalised).

    Examples
    --------
    >>> p = np.array([[1.0, 1 / 3], [0.0, 1 / 3], [0.0, 1 / 3]], np.float32)
    >>> normalized_entropy(p).tolist()
    [0.0, 1.0]
    """
    probabilities = np.asarray(probabilities)
    k = probabilities.shape[0]
    out = np.empty(probabilities.shape[1:], np.float16)
    if k < 2:
        out[...] = 0
        return out
    flat_in = probabilities.reshape(k, probabilities.shape[1] if probabilities.ndim > 1 else 1, -1)
    flat_out = out.reshape(flat_in.shape[1:])
    scale = np.float32(-1.0 / np.log(k))
    tiny = np.float32(1e-12)
    for start in range(0, flat_in.shape[1], _SLAB):
        p = flat_in[:, start : start + _SLAB].astype(np.float32)
        if probabilities.dtype == np.uint8:  # round(255 p): renormalise
            p /= np.maximum(p.sum(axis=0, keepdims=True), tiny)
        logs = np.log(np.maximum(p, tiny))
        logs *= p  # p log p, 0 where p = 0 (1e-12 log 1e-12 ~ 0)
        total = logs.sum(axis=0)
        total *= scale
        # (+ 0 turns the -0.0 of a certain voxel into 0.0)
        flat_out[start : start + _SLAB] = np.clip(total, 0, 1) + np.float32(0)
    return out


def low_confidence(labels: np.ndarray, entropy: np.ndarray, phases: Sequence[str]) -> dict:
    """Share of low-confidence voxels, overall and per predicted phase (None where absent).

    Examples
    --------
    >>> labels = np.array([0, 0, 1, 1, 1], np.uint8)
    >>> entropy = np.array([0.9, 0.1, 0.6, 0.0, 0.2], np.float16)
    >>> low_confidence(labels, entropy, ["pore", "am", "cbd"])["per_phase"]
    {'pore': 0.5, 'am': 0.3333333333333333, 'cbd': None}
    """
    entropy = np.asarray(entropy)
    if entropy.dtype == np.float16:
        # entropy is in [0, 1]: for non-negative float16 the bit patterns sort as the values do,
        # and the integer comparison is about 8x faster than NumPy's float16 one
        uncertain = entropy.view(np.uint16) >= np.float16(LOW_CONFIDENCE).view(np.uint16)
    else:
        uncertain = entropy >= LOW_CONFIDENCE
    per_phase = {}
    for i, phase in enumerate(phases):  # count_nonzero per phase: bincount casts to intp first (20x slower)
        is_phase = labels == i
        count = np.count_nonzero(is_phase)
        per_phase[phase] = float(np.count_nonzero(is_phase & uncertain) / count) if count else None
    return {"threshold": LOW_CONFIDENCE,
            "all": float(np.count_nonzero(uncertain) / uncertain.size) if uncertain.size else None,
            "per_phase": per_phase}


def central_crop(shape: Sequence[int], spatial: int) -> tuple[slice, ...]:
    """The central half of the last two (in-plane) axes; the other spatial axes whole."""
    index = [slice(None)] * len(shape)
    for axis in range(len(shape) - 2, len(shape)):
        n = shape[axis]
        index[axis] = slice(n // 4, n // 4 + max(1, n // 2))
    return tuple(index[-spatial:])


def tiling_agreement(whole: np.ndarray, crop_labels: np.ndarray, crop: tuple[slice, ...]) -> float | None:
    """Share of the crop's interior (``TILING_MARGIN`` in-plane) where the crop's own labels equal
    the whole input's; None when the crop is too small to have an interior."""
    interior = [slice(None)] * (crop_labels.ndim - 2) + [slice(TILING_MARGIN, -TILING_MARGIN)] * 2
    inside = tuple(interior)
    mine = crop_labels[inside]
    if mine.size == 0:
        return None
    return float((whole[crop][inside] == mine).mean())

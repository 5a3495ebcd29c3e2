"""Volume-fraction calibration by per-phase logit offsets, shared by training and inference.

Battery scientists often know a phase's volume fraction independently of the images (the
porosity from mass loading, thickness and densities). :func:`fit_logit_bias` finds one offset
per phase that, added to the logits before the argmax, gives each named phase its fraction:
the decision boundary moves, the ranking of voxels does not. Training stores the offsets in
the checkpoint (``volume_fractions`` in a dataset config); prediction can fit them per input
(``electroseg predict volume_fractions=...``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from electroseg.errors import InputError

__all__ = ["MAX_FIT_VOXELS", "LogitSample", "check_volume_fractions", "fit_logit_bias", "fractions_of"]

MAX_FIT_VOXELS = 1 << 22  # voxels the offsets are fitted on (a uniform random subset beyond this)


def fit_logit_bias(logits: np.ndarray, targets: Mapping[int, float], *, sweeps: int = 50,
                   tolerance: float = 1e-4) -> np.ndarray:
    """Offsets ``b`` (K,) such that ``argmax(logits + b)`` gives phase k the fraction ``targets[k]``.

    Parameters
    ----------
    logits : array (K, N)
        Logits of N voxels.
    targets : mapping phase index -> fraction in (0, 1)
        Phases not named keep offset 0 and take what is left.

    Notes
    -----
    Cyclic coordinate updates, each exact: with the other offsets fixed, voxel n goes to phase
    k iff ``b_k > m_kn = max_{j != k}(l_jn + b_j) - l_kn``, so the fraction of phase k is the
    empirical CDF of ``m_k`` at ``b_k`` and ``b_k = quantile(m_k, f_k)``. Stops when every
    fraction is within ``tolerance`` (ties and coupled phases can leave it slightly off).
    """
    logits = np.asarray(logits, dtype=np.float64)
    bias = np.zeros(logits.shape[0])
    others = np.ones(logits.shape[0], bool)
    for _ in range(sweeps):
        for k, fraction in targets.items():
            others[:] = True
            others[k] = False
            margin = (logits[others] + bias[others, None]).max(0) - logits[k]
            # just above the n-th smallest margin (n = round(f N)): those n voxels go to k
            n = int(np.clip(round(fraction * margin.size), 0, margin.size))
            if n:
                edge = np.partition(margin, n - 1)[n - 1]
                bias[k] = edge + 1e-9 * max(1.0, abs(edge))
            else:
                bias[k] = margin.min() - 1.0
        achieved = fractions_of(logits, bias)
        if all(abs(achieved[k] - f) <= tolerance for k, f in targets.items()):
            break
    return bias


def fractions_of(logits: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """Fraction of voxels (K, N logits) whose argmax (after ``bias``) is each phase."""
    shifted = logits if bias is None else logits + np.asarray(bias)[:, None]
    return np.bincount(np.argmax(shifted, 0), minlength=logits.shape[0]) / logits.shape[1]


class LogitSample:
    """Logits of a uniform random subset of at most ~``keep`` of ``total`` voxels, gathered part
    by part, and the offsets that give them known volume fractions.

    Training feeds it whole volumes, prediction the rows its engine emits; the same ``seed``
    and parts give the same subset.
    """

    def __init__(self, total: int, *, seed: int = 0, keep: int = MAX_FIT_VOXELS) -> None:
        self.rate = min(1.0, keep / max(int(total), 1))
        self.rng = np.random.default_rng(seed)
        self.parts: list[np.ndarray] = []

    def add(self, logits: np.ndarray) -> None:
        """Logits (K, N) of N more voxels; a random share ``rate`` of them is kept (copied: the
        caller may reuse ``logits``, as the inference engine does with its accumulator)."""
        if self.rate < 1.0:
            self.parts.append(logits[:, self.rng.random(logits.shape[1]) < self.rate])  # a copy
        else:
            self.parts.append(np.array(logits, copy=True))

    def fit(self, phases: Sequence[str],
            fractions: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Offsets (K,) for ``fractions`` ({phase name: f}), and the fractions before and after."""
        logits = np.concatenate(self.parts, axis=1)
        bias = fit_logit_bias(logits, {list(phases).index(p): float(f) for p, f in fractions.items()})
        return bias, fractions_of(logits), fractions_of(logits, bias)


def check_volume_fractions(value: Any, phases: Sequence[str], name: str) -> dict[str, float] | None:
    """Known volume fractions ``{phase: f}``: some or all phases, each in (0, 1), summing to 1 if all.

    ``None`` passes through; anything else wrong is an :class:`~electroseg.errors.InputError`
    starting with ``name`` (the file or option it came from).
    """
    if value is None:
        return None
    if not isinstance(value, Mapping) or not value:
        raise InputError(f"{name}: volume_fractions: expected a mapping {{phase: fraction}}, got {value!r}")
    unknown = sorted(str(k) for k in value if k not in phases)
    if unknown:
        raise InputError(f"{name}: volume_fractions: {unknown} are not phases of this model or dataset {list(phases)}")
    try:
        fractions = {str(k): float(v) for k, v in value.items()}
    except (TypeError, ValueError):
        raise InputError(f"{name}: volume_fractions: expected numbers, got {dict(value)!r}") from None
    bad = {k: f for k, f in fractions.items() if not 0.0 < f < 1.0}
    if bad:
        raise InputError(f"{name}: volume_fractions: each fraction must lie between 0 and 1, got {bad}")
    total = sum(fractions.values())
    if len(fractions) == len(phases) and abs(total - 1.0) > 0.01:
        raise InputError(f"{name}: volume_fractions: fractions of all phases must sum to 1, got {total:.4f}")
    if len(fractions) < len(phases) and total >= 1.0:
        raise InputError(f"{name}: volume_fractions: {total:.4f} leaves nothing for the phases not named")
    return fractions

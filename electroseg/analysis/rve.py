"""Is the imaged volume large enough? How a metric's spread shrinks with the analysed volume.

The statistical representative-volume approach: a metric is recomputed on in-plane sub-blocks of
several sizes (the depth axis kept whole, so every block spans separator to collector); its
spread between blocks, σ(V), falls with the block volume V, as ``σ ∝ V^s``. For blocks much larger
than the microstructure's correlation length the blocks are independent and ``s = -1/2``; on
smaller blocks the decay is slower. The power law fitted to the measured sizes and taken to the
whole imaged volume gives the precision the imaged volume itself can support,
``h = z σ(V_imaged)`` (z = 1.96 for 95 %), and the volume that would reach a stated precision ε:
``V_needed = V_imaged (ε / h)^(1/s)``. The fitted slope is held within [-1/2, 0]: a steeper
apparent decay is noise, and no decay at all (a trend across the specimen) means no volume
is enough (``volume_needed_um3: null``).

Counting is done once, on the finest grid of blocks; coarser blocks add the counts of the fine
blocks they contain (volume fractions and pooled PBA are ratios of additive counts; a face pair
counts in the block of its lower-index voxel).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
import numpy as np

from electroseg import DEFAULT_PHASES
from electroseg.analysis._validate import check_depth_axis, check_labels, check_voxel_size

__all__ = ["DEFAULT_TARGETS", "representative_volume"]

logger = logging.getLogger(__name__)

#: Default precision aimed at (half width of the 95 % interval): one percentage point of volume
#: fraction, 0.02 of PBA.
DEFAULT_TARGETS = {"volume_fraction": 0.01, "pba_pooled": 0.02}
_MIN_WIDTH = 8  # voxels: the finest blocks are at least this wide along every in-plane axis


def representative_volume(labels: np.ndarray, *, voxel_size: Sequence[float], depth_axis: int = 1,
                          phases: Sequence[str] = DEFAULT_PHASES, ignore_value: int = 255,
                          finest: int = 8, targets: Mapping[str, float] | None = None,
                          confidence: float = 0.95) -> dict | None:
    """Spread of the volume fractions and of pooled PBA against block volume, and what it implies.

    Parameters
    ----------
    labels : ndarray, (Z, Y, X) or (Y, X), uint8
    voxel_size : sequence of float
        µm per axis, array order.
    depth_axis : int
        Kept whole in every block.
    phases, ignore_value
        As in :func:`electroseg.analysis.analyze_labels`.
    finest : int
        Blocks per in-plane axis on the finest grid (rounded down to a power of two, and so that
        blocks are at least 8 voxels wide); coarser grids halve it down to 2.
    targets : mapping, optional
        Half width aimed at per metric: ``volume_fraction`` (every phase) and ``pba_pooled``;
        default :data:`DEFAULT_TARGETS`.
    confidence : float

    Returns
    -------
    dict or None
        ``{"imaged_volume_um3", "confidence", "metrics": {name: {...}}}`` with, per metric
        (``volume_fraction_<phase>``, ``pba_pooled``): ``block_volume_um3``, ``n_blocks``, ``std``
        (one per grid, finest first), ``slope``, ``half_width`` (at the imaged volume),
        ``target_half_width``, ``volume_needed_um3`` (null when the spread does not fall with
        volume) and ``sufficient``. None when the volume is too small for two grids of blocks.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = (rng.random((64, 64, 64)) < 0.3).astype(np.uint8)   # independent voxels
    >>> rve = representative_volume(labels, voxel_size=(1, 1, 1), phases=("pore", "am"))
    >>> round(rve["metrics"]["volume_fraction_am"]["slope"], 1)          # sigma ~ V^-1/2
    -0.5
    """
    labels = check_labels(labels, phases=phases, ignore_value=ignore_value)
    axis = check_depth_axis(depth_axis, labels.ndim)
    sizes = check_voxel_size(voxel_size, labels.ndim, what="representative volume")
    phases = tuple(phases)
    goals = {**DEFAULT_TARGETS, **dict(targets or {})}
    in_plane = [a for a in range(labels.ndim) if a != axis]
    fine = _finest(labels.shape, in_plane, int(finest))
    if fine < 4:
        return None
    edges = {a: np.round(np.linspace(0, labels.shape[a], fine + 1)).astype(int) for a in in_plane}
    k = len(phases)
    starts = [edges[a][:-1] for a in in_plane]
    has_pba = "am" in phases and "cbd" in phases
    voxels, contacts, surface = _block_counts(
        labels, axis, starts, k, (phases.index("am"), phases.index("cbd")) if has_pba else None)
    total_um3 = float(np.prod(labels.shape)) * float(np.prod(sizes))
    grids = []
    n = fine
    while n >= 2:
        grids.append(n)
        n //= 2
    columns: dict[str, list[np.ndarray]] = {}
    for n in grids:
        factor = fine // n
        v = _coarsen(voxels, factor, len(in_plane)).reshape(-1, k)
        labelled = v.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            for p, name in enumerate(phases):
                columns.setdefault(f"volume_fraction_{name}", []).append(v[:, p] / labelled)
            if has_pba:
                c = _coarsen(contacts, factor, len(in_plane)).ravel()
                s = _coarsen(surface, factor, len(in_plane)).ravel()
                columns.setdefault("pba_pooled", []).append(np.where(s > 0, c / np.maximum(s, 1), np.nan))
    z = _z(confidence)
    block_volumes = [total_um3 / n ** len(in_plane) for n in grids]
    out = {}
    for name, per_grid in columns.items():
        target = goals["pba_pooled"] if name == "pba_pooled" else goals["volume_fraction"]
        out[name] = _fit(per_grid, block_volumes, total_um3, z, float(target))
    logger.info("representative volume: grids %s, %s", grids,
                {m: r["sufficient"] for m, r in out.items()})
    return {"imaged_volume_um3": total_um3, "confidence": confidence, "grids": grids, "metrics": out}


_SLAB_VOXELS = 1 << 22  # voxels per slab of depth planes counted at once (a few MB of codes)


def _block_counts(labels: np.ndarray, axis: int, starts: list[np.ndarray], k: int,
                  am_cbd: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Per fine block (in-plane grid, depth whole): voxels of each phase (last axis), and with
    ``am_cbd`` the in-plane face pairs AM-CBD and AM-(another labelled phase), each pair counted
    in the block of its lower-index voxel (the face-method PBA's counts).

    ``starts`` gives the first index of each block per in-plane axis. One pass over slabs of
    depth planes: each voxel's phase and its upper in-plane neighbours' (unlabelled and the
    outside both count as "none") are packed into one code, and lookup tables over the codes
    give its contact and surface pairs. On 300 x 768 x 1024 labels (2 cores) this takes 2.2 s,
    against 11.8 s for boolean masks per pair and axis over the whole volume (the same counts)."""
    in_plane = [a for a in range(labels.ndim) if a != axis]
    m, base = len(in_plane), k + 1
    dtype = np.uint8 if base ** (m + 1) <= 256 else np.uint16 if base ** (m + 1) <= 1 << 16 else np.uint32
    plane_shape = tuple(labels.shape[a] for a in in_plane)
    voxels = np.zeros((*plane_shape, k), dtype=np.int64)
    pairs = np.zeros((2, *plane_shape), dtype=np.int64) if am_cbd else None
    luts = _pair_luts(k, m, *am_cbd) if am_cbd else None
    step = max(1, _SLAB_VOXELS // max(1, int(np.prod(plane_shape))))
    for lo in range(0, labels.shape[axis], step):
        slab = np.moveaxis(labels[(slice(None),) * axis + (slice(lo, lo + step),)], axis, 0)
        phase = np.minimum(slab, k).astype(dtype)  # (depth, *in-plane), unlabelled -> k
        for p in range(k):
            voxels[..., p] += (phase == p).sum(axis=0)
        if luts is None:
            continue
        code = phase * dtype(base ** m)
        for d in range(m):  # the upper neighbour along in-plane axis d; the last row has none (k)
            inner, last = ((slice(None),) * (d + 1) + (s,) for s in (slice(None, -1), slice(-1, None)))
            weight = dtype(base ** (m - 1 - d))
            code[inner] += phase[(slice(None),) * (d + 1) + (slice(1, None),)] * weight
            code[last] += dtype(k) * weight
        for out, lut in zip(pairs, luts):
            out += lut[code].sum(axis=0, dtype=np.int64)

    def blocks(plane: np.ndarray) -> np.ndarray:
        for d, first in enumerate(starts):
            plane = np.add.reduceat(plane, first, axis=d)
        return plane

    if pairs is None:
        return blocks(voxels), None, None
    return blocks(voxels), blocks(pairs[0]), blocks(pairs[1])


def _pair_luts(k: int, m: int, i_am: int, i_cbd: int) -> tuple[np.ndarray, np.ndarray]:
    """Contact and surface pairs of every code of :func:`_block_counts` (a voxel and its ``m``
    upper neighbours, each a phase index or ``k`` for none)."""
    import itertools

    base = k + 1
    contacts = np.zeros(base ** (m + 1), dtype=np.uint8)
    surface = np.zeros_like(contacts)
    for combo in itertools.product(range(base), repeat=m + 1):
        code = 0
        for value in combo:
            code = code * base + value
        v = combo[0]
        for n in combo[1:]:
            contacts[code] += {v, n} == {i_am, i_cbd}
            surface[code] += (v == i_am and n != i_am and n < k) or (n == i_am and v != i_am and v < k)
    return contacts, surface


def _finest(shape: Sequence[int], in_plane: Sequence[int], finest: int) -> int:
    widest = min(shape[a] // _MIN_WIDTH for a in in_plane)
    n = 1
    while n * 2 <= min(finest, widest):
        n *= 2
    return n


def _coarsen(array: np.ndarray, factor: int, dims: int) -> np.ndarray:
    """Sum ``factor``-wide groups of fine blocks along the first ``dims`` axes."""
    out = array
    for d in range(dims):
        shape = out.shape
        out = out.reshape(shape[:d] + (shape[d] // factor, factor) + shape[d + 1:]).sum(axis=d + 1)
    return out


def _z(confidence: float) -> float:
    from statistics import NormalDist  # (scipy.stats takes seconds to import)

    return float(NormalDist().inv_cdf(0.5 + confidence / 2))


def _fit(per_grid: list[np.ndarray], volumes: list[float], imaged: float, z: float, target: float) -> dict:
    stds, counts = [], []
    for values in per_grid:
        finite = values[np.isfinite(values)]
        counts.append(int(finite.size))
        stds.append(float(np.std(finite, ddof=1)) if finite.size >= 4 else math.nan)
    use = [i for i, s in enumerate(stds) if np.isfinite(s) and s > 0]
    record = {"block_volume_um3": volumes, "n_blocks": counts, "std": [None if not np.isfinite(s) else s for s in stds],
              "target_half_width": target}
    if not use:  # no spread at any size (a phase absent, or a perfectly uniform one)
        return {**record, "slope": None, "half_width": 0.0, "volume_needed_um3": 0.0, "sufficient": True}
    x = np.log([volumes[i] for i in use])
    y = np.log([stds[i] for i in use])
    # log sigma from n blocks has a variance of about 1 / (2 (n - 1)): weight each grid by n - 1
    weight = np.array([counts[i] - 1 for i in use], float)
    slope = float(np.polyfit(x, y, 1, w=np.sqrt(weight))[0]) if len(use) >= 2 else -0.5
    slope = min(max(slope, -0.5), 0.0)
    # the line of that slope through the measured points (weighted least squares for the intercept)
    intercept = float(np.average(y - slope * x, weights=weight))
    half = z * math.exp(intercept + slope * math.log(imaged))
    needed = None if slope == 0.0 else imaged * (target / half) ** (1.0 / slope) if half > 0 else 0.0
    return {**record, "slope": slope, "half_width": half, "volume_needed_um3": needed,
            "sufficient": bool(half <= target)}

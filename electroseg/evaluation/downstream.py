"""The metrics a segmentation is used for, and how much they vary within one sample.

Within-sample variability comes from sub-blocks tiled across the in-plane axes (depth kept
whole, as in `electroseg.analysis` uncertainty): a difference between two segmentations that is
smaller than the spread of a metric between sub-blocks of the same sample is not meaningful.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.stats import wasserstein_distance

from electroseg import DEFAULT_PHASES
from electroseg.analysis import pba_profile, volume_fractions
from electroseg.analysis.uncertainty import METRICS, subblock_metrics

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class DownstreamValues:
    """Metrics of one segmentation, whole-sample and per in-plane sub-block.

    Attributes
    ----------
    fractions : dict of str to float or None
    pba_pooled : float or None
    pba_per_depth : list of float or None
    particle_log10_volume : ndarray of float, shape (n_particles,)
        log10 of particle volumes in µm³.
    block_fractions : dict of str to ndarray, shape (n_blocks,)
    block_pba_pooled : ndarray, shape (n_blocks,)
        NaN for a block without AM surface.
    block_pba_per_depth : ndarray, shape (n_blocks, n_depth)
    block_particle_log10_volume : list of ndarray
        Particles assigned to the block holding their centroid.
    """

    fractions: dict
    pba_pooled: float | None
    pba_per_depth: list
    particle_log10_volume: np.ndarray
    block_fractions: dict
    block_pba_pooled: np.ndarray
    block_pba_per_depth: np.ndarray
    block_particle_log10_volume: list


def _nan(value: float | None) -> float:
    return np.nan if value is None else float(value)


def _particles(labels: np.ndarray, voxel_size, depth_axis: int, phases,
               ignore_value: int) -> tuple[np.ndarray, np.ndarray]:
    """log10 size (µm³, or µm² in 2-D) and centroid (voxel index, shape (n, ndim)) per AM particle."""
    from electroseg.analysis.particles import particle_table

    table = particle_table(labels, voxel_size=voxel_size, depth_axis=depth_axis, phases=phases,
                           ignore_value=ignore_value)
    keep = table.size > 0
    return np.log10(table.size[keep]), table.centroid_voxel[keep].reshape(-1, labels.ndim)


def _block_of(centroid: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Index of the block holding each centroid (-1 for none), blocks given by start/stop."""
    index = np.full(len(centroid), -1)
    for b, (lo, hi) in enumerate(zip(start, stop)):
        inside = np.all((centroid >= lo) & (centroid < hi), axis=1)
        index[inside & (index < 0)] = b
    return index


def _pba_by_depth(block, *, depth_axis, phases, ignore_value, **_) -> dict:
    """Block metric for `subblock_metrics`: PBA of every depth plane as its own column."""
    profile = pba_profile(block, depth_axis=depth_axis, phases=phases, ignore_value=ignore_value)
    return {f"pba_depth_{k}": v for k, v in enumerate(profile.per_depth)}


def downstream_values(labels: np.ndarray, *, voxel_size: Sequence[float], depth_axis: int = 1,
                      phases: Sequence[str] = DEFAULT_PHASES, ignore_value: int = 255,
                      blocks_per_axis: int = 3) -> DownstreamValues:
    """Volume fractions, PBA and particle sizes of ``labels``, whole and per in-plane sub-block.

    Parameters
    ----------
    labels : ndarray of uint8, shape (Z, Y, X) or (Y, X)
    voxel_size : sequence of float
        µm per voxel, array order.
    depth_axis : int
    phases : sequence of str
    ignore_value : int
    blocks_per_axis : int
        Sub-blocks per in-plane axis (3 → 9 blocks for a volume, 3 for a 2D image), tiled by
        `electroseg.analysis.uncertainty.subblock_metrics` (depth kept whole).
    """
    opts = {"depth_axis": depth_axis, "phases": phases, "ignore_value": ignore_value}
    n_blocks = min([blocks_per_axis] + [n for a, n in enumerate(labels.shape) if a != depth_axis % labels.ndim])
    has_pba = {"am", "cbd"} <= set(phases)
    metrics = {"volume_fraction": METRICS["volume_fraction"]}
    if has_pba:
        metrics.update(pba=METRICS["pba"], pba_by_depth=_pba_by_depth)
    blocks = subblock_metrics(labels, voxel_size=voxel_size, n_blocks=n_blocks, metrics=metrics,
                              **opts)
    whole = pba_profile(labels, **opts) if has_pba else None
    n_depth = labels.shape[depth_axis]
    if "am" in phases:
        log_volume, centroid = _particles(labels, voxel_size, depth_axis, phases, ignore_value)
    else:
        log_volume, centroid = np.zeros(0), np.zeros((0, labels.ndim))
    owner = _block_of(centroid, blocks.start, blocks.stop)
    return DownstreamValues(
        fractions=dict(volume_fractions(labels, phases=phases, ignore_value=ignore_value).fractions),
        pba_pooled=whole.pooled if has_pba else None,
        pba_per_depth=list(whole.per_depth) if has_pba else [None] * n_depth,
        particle_log10_volume=log_volume,
        block_fractions={p: blocks.column(f"volume_fraction_{p}") for p in phases},
        block_pba_pooled=blocks.column("pba_pooled") if has_pba else np.full(blocks.n_blocks, np.nan),
        block_pba_per_depth=np.stack([blocks.column(f"pba_depth_{k}") for k in range(n_depth)],
                                     axis=1) if has_pba else np.full((blocks.n_blocks, n_depth), np.nan),
        block_particle_log10_volume=[log_volume[owner == b] for b in range(blocks.n_blocks)],
    )


def block_spread(values_a: np.ndarray, values_b: np.ndarray) -> float:
    """Within-sample spread: ``sqrt((s_a² + s_b²) / 2)`` with ``s`` the sub-block std (ddof 1).

    NaN blocks are dropped; NaN when either sample has fewer than two defined blocks.
    """
    stds = []
    for values in (values_a, values_b):
        values = np.asarray(values, float)
        values = values[np.isfinite(values)]
        stds.append(np.std(values, ddof=1) if values.size >= 2 else np.nan)
    return float(np.sqrt((stds[0] ** 2 + stds[1] ** 2) / 2))


def within_sample_wasserstein(blocks: Sequence[np.ndarray], *, min_particles: int = 5) -> float:
    """Mean Wasserstein distance between the size distributions of pairs of sub-blocks.

    Blocks with fewer than ``min_particles`` particles are skipped; NaN if fewer than two remain.
    """
    usable = [b for b in blocks if len(b) >= min_particles]
    pairs = [wasserstein_distance(x, y) for x, y in itertools.combinations(usable, 2)]
    return float(np.mean(pairs)) if pairs else float("nan")

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


def in_plane_blocks(shape: Sequence[int], *, depth_axis: int,
                    blocks_per_axis: int) -> list[tuple[slice, ...]]:
    """Slices tiling the in-plane axes into ``blocks_per_axis`` parts each, depth kept whole.

    Examples
    --------
    >>> len(in_plane_blocks((6, 10, 6), depth_axis=1, blocks_per_axis=2))
    4
    """
    per_axis = []
    for axis, n in enumerate(shape):
        if axis == depth_axis:
            per_axis.append([slice(None)])
            continue
        edges = np.linspace(0, n, min(blocks_per_axis, n) + 1).round().astype(int)
        per_axis.append([slice(a, b) for a, b in zip(edges[:-1], edges[1:])])
    return [tuple(combo) for combo in itertools.product(*per_axis)]


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


def _block_of(centroid: np.ndarray, blocks: list[tuple[slice, ...]], shape) -> np.ndarray:
    index = np.full(len(centroid), -1)
    for b, block in enumerate(blocks):
        inside = np.ones(len(centroid), bool)
        for axis, s in enumerate(block):
            lo, hi, _ = s.indices(shape[axis])
            inside &= (centroid[:, axis] >= lo) & (centroid[:, axis] < hi)
        index[inside & (index < 0)] = b
    return index


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
        Sub-blocks per in-plane axis (3 → 9 blocks for a volume, 3 for a 2D image).
    """
    opts = {"depth_axis": depth_axis, "phases": phases, "ignore_value": ignore_value}
    blocks = in_plane_blocks(labels.shape, depth_axis=depth_axis, blocks_per_axis=blocks_per_axis)
    whole = pba_profile(labels, **opts)
    block_pba = [pba_profile(labels[b], **opts) for b in blocks]
    block_vf = [volume_fractions(labels[b], phases=phases, ignore_value=ignore_value) for b in blocks]
    log_volume, centroid = _particles(labels, voxel_size, depth_axis, phases, ignore_value)
    owner = _block_of(centroid, blocks, labels.shape)
    return DownstreamValues(
        fractions=dict(volume_fractions(labels, phases=phases, ignore_value=ignore_value).fractions),
        pba_pooled=whole.pooled, pba_per_depth=list(whole.per_depth),
        particle_log10_volume=log_volume,
        block_fractions={p: np.array([_nan(v.fractions[p]) for v in block_vf]) for p in phases},
        block_pba_pooled=np.array([_nan(p.pooled) for p in block_pba]),
        block_pba_per_depth=np.array([[_nan(v) for v in p.per_depth] for p in block_pba]),
        block_particle_log10_volume=[log_volume[owner == b] for b in range(len(blocks))],
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

"""Electronic connectivity of the active material to the current collector.

An AM particle can only exchange electrons with the current collector if a chain of solid
(AM or carbon-binder) voxels joins it to the collector face. Cycling that detaches the CBD
(seed paper 000) or cracks particles (seed paper 002) isolates AM; this module measures the share
of AM volume so cut off.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import fastremap
import numpy as np

from electroseg import DEFAULT_PHASES
from electroseg.analysis._validate import check_depth_axis, check_labels, phase_index
from electroseg.analysis.particles import mask_components
from electroseg.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["Connectivity", "electronic_connectivity"]


@dataclass(frozen=True)
class Connectivity:
    """Shares of AM volume by how they reach the current-collector face.

    Attributes
    ----------
    depth_axis : int
        Axis running from separator (index 0) to current collector.
    collector_index : int
        Depth index of the collector face (the last plane along ``depth_axis``).
    am_voxels : int
        AM voxels in the labels.
    particles : int
        AM particles (face-connected AM components).
    direct_fraction : float
        Share of AM volume in particles that touch the collector face themselves.
    via_cbd_fraction : float
        Share of AM volume in particles that reach the collector face only through CBD.
    connected_fraction : float
        ``direct_fraction + via_cbd_fraction``.
    isolated_fraction : float
        ``1 - connected_fraction``: share of AM volume with no solid path to the collector.
    direct_particles, via_cbd_particles, isolated_particles : int
        Particle counts in each class.

    The fractions are NaN when there is no AM voxel.
    """

    depth_axis: int
    collector_index: int
    am_voxels: int
    particles: int
    direct_fraction: float
    via_cbd_fraction: float
    connected_fraction: float
    isolated_fraction: float
    direct_particles: int
    via_cbd_particles: int
    isolated_particles: int

    def to_dict(self) -> dict:
        """JSON-ready dict of every field; NaN becomes None."""
        return {key: (None if isinstance(value, float) and not np.isfinite(value) else value)
                for key, value in self.__dict__.items()}


def electronic_connectivity(labels: np.ndarray, *, depth_axis: int = 1,
                            phases: Sequence[str] = DEFAULT_PHASES, ignore_value: int = 255,
                            am_phase: str = "am", cbd_phase: str = "cbd",
                            particles: np.ndarray | None = None) -> Connectivity:
    """Share of AM volume electronically connected to the current-collector face.

    Parameters
    ----------
    labels : ndarray, shape (Z, Y, X) or (Y, X), uint8
        Phase indices; ``ignore_value`` voxels conduct nothing.
    depth_axis : int
        Axis running from separator (index 0) to current collector (last index).
    phases : sequence of str
        Phase names in label order.
    ignore_value : int
        Label of unlabelled voxels.
    am_phase, cbd_phase : str
        Names of the active-material and the carbon-binder phases in ``phases``.
    particles : ndarray of int, same shape as ``labels``, optional
        Ready-made AM particle ids, 0 outside AM: the face-connected AM components, as from
        ``label_particles(labels, phase=am_phase, connectivity=1)``. Saves labelling them again.

    Returns
    -------
    Connectivity

    Notes
    -----
    All connectivity is face connectivity (6 neighbours in 3-D, 4 in 2-D).

    - *Particle*: connected component of AM voxels.
    - *Solid cluster*: connected component of AM ∪ CBD voxels.
    - The *collector face* is the plane ``labels.take(-1, axis=depth_axis)``.
    - A particle is *connected* if its solid cluster has a voxel on the collector face; it is
      *direct* if the particle itself has a voxel on that face, *via CBD* if it is connected but
      not direct (with face connectivity two particles never touch, so every path from it to the
      face passes through CBD), *isolated* otherwise.

    Each ``*_fraction`` is (AM voxels in particles of that class) / (all AM voxels).

    Only the cluster labels are a second full-size array: particle sizes come from one counting
    pass (``fastremap.unique``), the particle → cluster map from one joint pass over both label
    images (``fastremap.inverse_component_map``) and the face flags from the last plane.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[2, 0, 2],
    ...                    [1, 0, 0],
    ...                    [1, 2, 0]], dtype=np.uint8)
    >>> c = electronic_connectivity(labels, depth_axis=0)
    >>> c.direct_fraction, c.via_cbd_fraction, c.isolated_fraction
    (0.3333333333333333, 0.3333333333333333, 0.3333333333333333)
    """
    labels = check_labels(labels, phases=phases, ignore_value=ignore_value)
    axis = check_depth_axis(depth_axis, labels.ndim)
    am_index, cbd_index = _phase_pair(phases, am_phase, cbd_phase)
    neighbours = 6 if labels.ndim == 3 else 4
    if particles is None:
        particles = mask_components(labels == am_index, neighbours, out_dtype=np.uint32)
    else:
        particles = _check_particles(particles, labels.shape)
    ids, sizes = fastremap.unique(particles, return_counts=True)
    sizes = np.where(ids == 0, 0, sizes).astype(np.int64)
    _check_volume(int(sizes.sum()), np.count_nonzero(labels == am_index), am_phase)
    clusters = _solid_clusters(labels, am_index, cbd_index, neighbours)
    cluster_of = _cluster_of_particles(particles, clusters, ids)
    connected = np.isin(cluster_of, _ids_on_face(clusters, axis))
    direct = np.isin(ids, _ids_on_face(particles, axis))
    keep = ids != 0
    return _summarise(axis, labels.shape[axis] - 1, sizes[keep], connected[keep], direct[keep])


def _phase_pair(phases: Sequence[str], am_phase: str, cbd_phase: str) -> tuple[int, int]:
    am_index = phase_index(phases, am_phase, argument="am_phase")
    cbd_index = phase_index(phases, cbd_phase, argument="cbd_phase")
    if am_index == cbd_index:
        raise InputError(f"am_phase, cbd_phase: expected two different phases, got "
                         f"{am_phase!r} for both")
    return am_index, cbd_index


def _check_particles(particles: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if not isinstance(particles, np.ndarray):
        raise TypeError(f"particles: expected a numpy array of particle ids, got "
                        f"{type(particles).__name__}")
    if particles.shape != shape:
        raise InputError(f"particles: expected the shape of labels {shape}, got "
                         f"{particles.shape}")
    if not np.issubdtype(particles.dtype, np.integer):
        raise InputError(f"particles: expected integer particle ids, got dtype {particles.dtype}")
    return particles


def _check_volume(particle_voxels: int, am_voxels: int, am_phase: str) -> None:
    if particle_voxels != am_voxels:
        raise InputError(f"particles: expected ids > 0 exactly on the {am_phase!r} voxels, got "
                         f"{particle_voxels} particle voxels for {am_voxels} {am_phase!r} voxels")


def _solid_clusters(labels: np.ndarray, am_index: int, cbd_index: int,
                    neighbours: int) -> np.ndarray:
    """Face-connected components of AM ∪ CBD, uint32 (the mask is freed on return)."""
    solid = labels == am_index
    np.logical_or(solid, labels == cbd_index, out=solid)
    return mask_components(solid, neighbours, out_dtype=np.uint32)


def _cluster_of_particles(particles: np.ndarray, clusters: np.ndarray,
                          ids: np.ndarray) -> np.ndarray:
    """Solid-cluster id of each particle in ``ids`` (0 for the background id 0).

    A particle that is one face-connected set of AM voxels lies in exactly one cluster; any
    other particle array (ids on non-solid voxels, diagonal-only links) is refused.
    """
    parents = fastremap.inverse_component_map(particles, clusters)
    cluster_of = np.zeros(ids.size, dtype=np.int64)
    for i, particle in enumerate(ids.tolist()):
        if particle == 0:
            continue
        found = parents[particle]
        if len(found) != 1 or found[0] == 0:
            raise InputError(f"particles: expected face-connected AM components (as from "
                             f"label_particles(labels, connectivity=1)); particle {particle} "
                             f"spans solid clusters {sorted(found)[:5]}")
        cluster_of[i] = found[0]
    return cluster_of


def _ids_on_face(components: np.ndarray, axis: int) -> np.ndarray:
    """Nonzero component ids present on the last plane along ``axis``."""
    on_face = fastremap.unique(np.take(components, -1, axis=axis))
    return on_face[on_face != 0]


def _summarise(axis: int, collector_index: int, sizes: np.ndarray, connected: np.ndarray,
               direct: np.ndarray) -> Connectivity:
    """Volume shares and counts from per-particle sizes and flags (one entry per particle)."""
    via_cbd = connected & ~direct
    total = int(sizes.sum())
    if total == 0:
        logger.warning("labels: no AM voxel; electronic connectivity fractions are NaN")

    def share(mask: np.ndarray) -> float:
        return float(sizes[mask].sum() / total) if total else float("nan")

    return Connectivity(
        depth_axis=axis, collector_index=int(collector_index), am_voxels=total,
        particles=int(sizes.size), direct_fraction=share(direct), via_cbd_fraction=share(via_cbd),
        connected_fraction=share(connected), isolated_fraction=share(~connected),
        direct_particles=int(direct.sum()), via_cbd_particles=int(via_cbd.sum()),
        isolated_particles=int((~connected).sum()))

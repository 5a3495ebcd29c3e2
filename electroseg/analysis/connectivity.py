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

import cc3d
import numpy as np

from electroseg import DEFAULT_PHASES
from electroseg.analysis._validate import check_depth_axis, check_labels, phase_index
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
                            am_phase: str = "am", cbd_phase: str = "cbd") -> Connectivity:
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
    am_index = phase_index(phases, am_phase, argument="am_phase")
    cbd_index = phase_index(phases, cbd_phase, argument="cbd_phase")
    if am_index == cbd_index:
        raise InputError(f"am_phase, cbd_phase: expected two different phases, got "
                         f"{am_phase!r} for both")
    face_connectivity = 6 if labels.ndim == 3 else 4
    am = labels == am_index
    solid = am | (labels == cbd_index)
    particles, n_particles = cc3d.connected_components(am, connectivity=face_connectivity,
                                                       return_N=True)
    clusters = cc3d.connected_components(solid, connectivity=face_connectivity)
    reaching = _ids_on_face(clusters, axis)
    touching = _ids_on_face(particles, axis)
    # Every voxel of a particle lies in the same cluster; take one cluster id per particle.
    cluster_of = np.zeros(n_particles + 1, dtype=np.int64)
    cluster_of[particles[am]] = clusters[am]
    connected = reaching[cluster_of]
    sizes = np.bincount(particles[am], minlength=n_particles + 1)
    return _summarise(axis, labels.shape[axis] - 1, sizes, connected, touching)


def _ids_on_face(components: np.ndarray, axis: int) -> np.ndarray:
    """Boolean lookup table: True for component ids present on the last plane along ``axis``.

    cc3d numbers components 1..N, so the table has N + 1 entries (index 0 = background).
    """
    face = np.take(components, -1, axis=axis)
    table = np.zeros(int(components.max()) + 1, dtype=bool)
    table[np.unique(face)] = True
    table[0] = False
    return table


def _summarise(axis: int, collector_index: int, sizes: np.ndarray, connected: np.ndarray,
               direct: np.ndarray) -> Connectivity:
    """Volume shares and counts from per-particle sizes and flags (index 0 = background)."""
    sizes, connected, direct = sizes[1:], connected[1:], direct[1:]
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

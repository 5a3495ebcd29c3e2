"""Artefact cleanup of label images: small islands and holes in particles."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import cc3d
import numpy as np

from electroseg.errors import InputError

logger = logging.getLogger(__name__)

_CONNECTIVITY_2D = {6: 4, 18: 8, 26: 8, 4: 4, 8: 8}


@dataclass(frozen=True)
class CleanupOptions:
    """Options of `clean_labels`.

    Attributes
    ----------
    min_size : int or mapping phase -> int
        Connected regions of a phase with fewer voxels are given to the neighbouring phase
        they share the most faces with.
    hole_phases : tuple of str
        Phases whose enclosed holes are filled (default AM particles).
    max_hole_size : int
        Largest region (voxels) fully enclosed by a ``hole_phases`` phase that is filled.
    connectivity : {6, 18, 26}
        Voxel connectivity of regions in 3-D (4 or 8 is used in 2-D).
    """

    min_size: int | Mapping[str, int] = 8
    hole_phases: tuple[str, ...] = ("am",)
    max_hole_size: int = 200
    connectivity: int = 6

    def __post_init__(self) -> None:
        if self.connectivity not in _CONNECTIVITY_2D:
            raise InputError(f"cleanup.connectivity: expected 6, 18 or 26, got {self.connectivity!r}")
        object.__setattr__(self, "hole_phases", tuple(self.hole_phases))

    def size_for(self, phase: str) -> int:
        if isinstance(self.min_size, Mapping):
            return int(self.min_size.get(phase, 0))
        return int(self.min_size)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["min_size"] = dict(self.min_size) if isinstance(self.min_size, Mapping) else self.min_size
        out["hole_phases"] = list(self.hole_phases)
        return out


def _component_phase(components: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Phase of every component (all voxels of a component share it), slice by slice."""
    phase = np.zeros(count + 1, np.uint8)
    if labels.ndim == 2:
        phase[components] = labels
        return phase
    for comp_plane, label_plane in zip(components, labels):
        phase[comp_plane] = label_plane
    return phase


def _border_components(components: np.ndarray) -> np.ndarray:
    faces = []
    for axis in range(components.ndim):
        faces += [np.take(components, 0, axis=axis).ravel(), np.take(components, -1, axis=axis).ravel()]
    return np.unique(np.concatenate(faces))


def _component_sizes(components: np.ndarray, count: int) -> np.ndarray:
    """Voxels per component, counted slice by slice (np.bincount casts to int64: a full-volume
    call would need 8 bytes per voxel of scratch memory)."""
    sizes = np.zeros(count + 1, np.int64)
    for plane in components.reshape((-1,) + components.shape[-2:]):
        sizes += np.bincount(plane.reshape(-1), minlength=count + 1)
    return sizes


def _candidate_contacts(
    components: np.ndarray, phase: np.ndarray, is_candidate: np.ndarray, num_phases: int
) -> tuple[np.ndarray, np.ndarray]:
    """Face contacts of every candidate component with each phase.

    Only voxels of candidate components are visited: for each of them and each face
    neighbour (2 per axis) in another component, one contact with that neighbour's phase.

    Returns (candidate ids, contact counts of shape (n_candidates, num_phases)).
    """
    ids = np.flatnonzero(is_candidate)
    rank = np.full(is_candidate.size, -1, np.int64)
    rank[ids] = np.arange(ids.size)
    flat = components.reshape(-1)
    voxels = np.flatnonzero(is_candidate[components].reshape(-1))
    own = flat[voxels]
    table = np.zeros(ids.size * num_phases, np.int64)
    strides = np.cumprod((1,) + components.shape[::-1])[:-1][::-1]
    for axis, (n, stride) in enumerate(zip(components.shape, strides)):
        coordinate = (voxels // stride) % n
        for step in (-1, 1):
            valid = (coordinate + step >= 0) & (coordinate + step < n)
            other = flat[voxels[valid] + step * stride]
            mine = own[valid]
            touching = other != mine
            key = rank[mine[touching]] * num_phases + phase[other[touching]]
            table += np.bincount(key, minlength=table.size)
    return ids, table.reshape(ids.size, num_phases)


def clean_labels(
    labels: np.ndarray, *, phases: Sequence[str], options: CleanupOptions = CleanupOptions()
) -> tuple[np.ndarray, np.ndarray]:
    """Remove small islands of every phase and fill small holes inside particles.

    Parameters
    ----------
    labels : ndarray of uint8, shape (Y, X) or (Z, Y, X)
        Phase indices into ``phases``.
    phases : sequence of str
    options : CleanupOptions

    Returns
    -------
    labels : ndarray of uint8
        Cleaned copy.
    changed : ndarray of bool
        Voxels whose label changed.

    Notes
    -----
    One multi-label connected-component pass (cc3d) finds the regions; a region is replaced
    (i) if smaller than ``min_size`` of its phase, by the phase it shares most voxel faces
    with (faces are counted whatever the connectivity), or
    (ii) if at most ``max_hole_size`` voxels, not on the image border and touching only one
    ``hole_phases`` phase, by that phase. Replaced regions never seed others (one pass).
    """
    connectivity = options.connectivity if labels.ndim == 3 else _CONNECTIVITY_2D[options.connectivity]
    # cc3d treats 0 as background: shift labels by one (uint8 is enough below 255 phases)
    components, count = cc3d.connected_components(
        labels + np.uint8(1), connectivity=connectivity, return_N=True
    )
    sizes = _component_sizes(components, count)
    phase = _component_phase(components, labels, count)
    min_size = np.array([options.size_for(name) for name in phases] + [0] * (256 - len(phases)))
    hole_labels = [phases.index(name) for name in options.hole_phases if name in phases]
    candidate = sizes < min_size[phase]
    hole_candidate = (sizes <= options.max_hole_size) & ~np.isin(phase, hole_labels)
    hole_candidate[_border_components(components)] = False
    lookup = phase.copy()
    if np.any(candidate[1:] | hole_candidate[1:]):
        ids, areas = _candidate_contacts(components, phase, candidate | hole_candidate, len(phases))
        touching = areas > 0
        single = touching.sum(axis=1) == 1
        enclosing = np.argmax(touching, axis=1)
        fill = hole_candidate[ids] & single & np.isin(enclosing, hole_labels)
        lookup[ids[fill]] = enclosing[fill]
        small = candidate[ids] & ~fill
        lookup[ids[small]] = np.argmax(areas[small], axis=1)
    cleaned = lookup[components]
    changed = cleaned != labels
    logger.info("cleanup: %d voxels relabelled (%d regions)", int(changed.sum()), int(np.sum(lookup != phase)))
    return cleaned, changed

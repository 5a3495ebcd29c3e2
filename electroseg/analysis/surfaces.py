"""Specific interface area of every phase pair, from voxel faces or marching cubes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from electroseg import DEFAULT_PHASES
from electroseg.analysis._validate import check_labels, check_voxel_size
from electroseg.analysis.contacts import FacePairCounts, face_pair_counts
from electroseg.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["InterfaceAreas", "face_areas", "interface_areas", "interface_areas_from_pairs"]


@dataclass(frozen=True, eq=False)
class InterfaceAreas:
    """Interface area between every pair of phases.

    Attributes
    ----------
    phases : tuple of str
    method : {"faces", "marching_cubes"}
    voxel_size : tuple of float
    area_um2 : dict of str to float or None
        Interface area per pair, keyed ``"<p>-<q>"`` in phase order (length in µm for 2-D).
    volume_um3 : float
        Counted volume (ignored voxels excluded; area in µm² for 2-D).
    per_um : dict of str to float or None
        ``area_um2 / volume_um3``, the specific interface area.
    faces : dict of str to int
        Voxel faces per pair ("faces" method; empty otherwise).
    """

    phases: tuple[str, ...]
    method: str
    voxel_size: tuple[float, ...]
    area_um2: dict
    volume_um3: float
    per_um: dict
    faces: dict

    def phase_area_um2(self, phase: str) -> float:
        """Total interface area of one phase with every other phase."""
        return float(sum(v for k, v in self.area_um2.items()
                         if v is not None and phase in k.split("-")))

    def to_dict(self) -> dict:
        """The ``surface`` entry of metrics.json: ``{"<p>-<q>": per_um, ..., "unit": "per_um"}``."""
        return {**self.per_um, "unit": "per_um"}

    def as_table(self):
        """pandas DataFrame: pair, faces, area_um2, per_um."""
        import pandas as pd

        return pd.DataFrame({"pair": list(self.per_um),
                             "faces": [self.faces.get(k) for k in self.per_um],
                             "area_um2": [self.area_um2[k] for k in self.per_um],
                             "per_um": [self.per_um[k] for k in self.per_um]})


def face_areas(voxel_size: Sequence[float]) -> np.ndarray:
    """Area of a voxel face normal to each axis: ``Π_{j≠i} voxel_size[j]``, shape (ndim,)."""
    sizes = np.asarray(voxel_size, dtype=np.float64)
    return np.array([np.prod(np.delete(sizes, i)) for i in range(sizes.size)])


def interface_areas(labels: np.ndarray, *, voxel_size: Sequence[float],
                    phases: Sequence[str] = DEFAULT_PHASES, method: str = "faces",
                    ignore_value: int = 255, smoothing: float = 1.0) -> InterfaceAreas:
    """Specific interface area of every pair of phases.

    Parameters
    ----------
    labels : ndarray, shape (Z, Y, X) or (Y, X), uint8
    voxel_size : sequence of float
        µm, array order; required.
    phases : sequence of str
    method : {"faces", "marching_cubes"}
        Count voxel faces (exact for the voxel geometry; overestimates smooth surfaces by up
        to ~1.5x) or sum smoothed marching-cubes meshes (3-D, three phases or fewer, no ignore).
    ignore_value : int
    smoothing : float
        Gaussian sigma in voxels applied to each phase indicator before marching cubes (0 for
        none: binary masks overestimate a sphere's area by ~8-10 %; 1 voxel brings a 15-voxel
        ball within 1 %).

    Returns
    -------
    InterfaceAreas

    Notes
    -----
    Faces: ``A_pq = Σ_axes n_pq(axis) · Π_{j≠axis} voxel_size[j]`` where ``n_pq`` counts face
    pairs p|q; ``a_pq = A_pq / (N_counted · Π voxel_size)`` in µm⁻¹. Interior faces only.
    Marching cubes: phase areas ``A_p`` from ``skimage.measure.marching_cubes(spacing=voxel_size)``
    at level 0.5, pairs from ``A_p = Σ_q A_pq``: ``A_pq = (A_p + A_q - A_r) / 2``.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[[0, 2]]], dtype=np.uint8)
    >>> interface_areas(labels, voxel_size=(1, 1, 2)).area_um2["pore-am"]
    1.0
    """
    labels = check_labels(labels, phases=phases, ignore_value=ignore_value)
    sizes = check_voxel_size(voxel_size, labels.ndim, what="interface areas")
    if method == "faces":
        counts = face_pair_counts(labels, depth_axis=0, phases=phases, ignore_value=ignore_value)
        return interface_areas_from_pairs(counts, voxel_size=sizes)
    if method == "marching_cubes":
        return _marching_cubes(labels, sizes, tuple(phases), ignore_value, float(smoothing))
    raise InputError(f"method: expected 'faces' or 'marching_cubes', got {method!r}")


def interface_areas_from_pairs(counts: FacePairCounts, *,
                               voxel_size: Sequence[float]) -> InterfaceAreas:
    """Face-counting :class:`InterfaceAreas` from precomputed :class:`FacePairCounts`."""
    sizes = check_voxel_size(voxel_size, counts.pairs.shape[1], what="interface areas")
    per_axis = counts.symmetric().sum(axis=0)            # (ndim, n, n)
    area = np.tensordot(face_areas(sizes), per_axis, axes=1)
    faces_total = per_axis.sum(axis=0)
    volume = float(counts.voxels.sum()) * float(np.prod(sizes))
    n = len(counts.phases)
    area_um2, per_um, faces = {}, {}, {}
    for i, j in combinations(range(n), 2):
        key = f"{counts.phases[i]}-{counts.phases[j]}"
        faces[key] = int(faces_total[i, j])
        area_um2[key] = float(area[i, j])
        per_um[key] = float(area[i, j]) / volume if volume > 0 else None
    return InterfaceAreas(counts.phases, "faces", sizes, area_um2, volume, per_um, faces)


def _marching_cubes(labels: np.ndarray, sizes: tuple[float, ...], phases: tuple[str, ...],
                    ignore_value: int, smoothing: float) -> InterfaceAreas:
    from scipy.ndimage import gaussian_filter
    from skimage.measure import marching_cubes, mesh_surface_area

    if labels.ndim != 3 or len(phases) > 3:
        raise InputError(f"method='marching_cubes': needs a 3-D label volume with at most 3 "
                         f"phases, got shape {labels.shape} and phases {list(phases)}; "
                         f"use method='faces'")
    if np.any(labels == ignore_value):
        raise InputError(f"method='marching_cubes': labels contain ignore_value={ignore_value}; "
                         f"use method='faces', which skips ignored voxels")
    phase_area = []
    for i in range(len(phases)):
        mask = (labels == i).astype(np.float32)
        if smoothing > 0:
            mask = gaussian_filter(mask, smoothing, mode="nearest")
        if mask.min() >= 0.5 or mask.max() <= 0.5:
            phase_area.append(0.0)
            continue
        verts, tris, _, _ = marching_cubes(mask, level=0.5, spacing=sizes)
        phase_area.append(float(mesh_surface_area(verts, tris)))
    # Each interface bounds two phases: A_p = Σ_q A_pq, solved for pairs of 2 or 3 phases.
    total = sum(phase_area)
    volume = float(labels.size) * float(np.prod(sizes))
    area_um2 = {}
    for i, j in combinations(range(len(phases)), 2):
        area_um2[f"{phases[i]}-{phases[j]}"] = (phase_area[i] + phase_area[j] - (
            total - phase_area[i] - phase_area[j])) / 2.0
    per_um = {k: v / volume for k, v in area_um2.items()}
    return InterfaceAreas(phases, "marching_cubes", sizes, area_um2, volume, per_um, {})

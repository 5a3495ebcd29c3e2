"""The generator's particle instances as truth: particles, their fragments, equivalent diameters.

A **particle** is one placed secondary particle: every AM voxel carrying its id in
``Sample.particle_ids`` (particles.tif). A **fragment** is a face-connected piece of one
particle; a crack (or, rarely, an earlier particle cutting through it) leaves several. The
definitions are those of docs/particles.md, which the analysis (`electroseg.analysis.particles`)
measures from the labels alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cc3d
import numpy as np

__all__ = ["MIN_VOXELS", "fragment_ids", "particle_truth"]

MIN_VOXELS = 27
"""Particles and fragments smaller than this (a 3x3x3 block) are left out of the counts."""


def fragment_ids(particle_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Face-connected pieces of every particle of an instance map.

    Returns
    -------
    fragments : ndarray of uint32, same shape
        Fragment ids 1..m, 0 outside particles.
    parent : ndarray of int64, shape (m + 1,)
        ``parent[f]`` is the particle id of fragment ``f`` (``parent[0] = 0``).
    """
    ids = np.asarray(particle_ids)
    fragments, count = cc3d.connected_components(ids, connectivity=6 if ids.ndim == 3 else 4,
                                                 return_N=True, out_dtype=np.uint32)
    parent = np.zeros(count + 1, np.int64)
    flat_f, flat_p = fragments.ravel(), ids.ravel()
    inside = np.flatnonzero(flat_f)
    parent[flat_f[inside]] = flat_p[inside]
    return fragments, parent


def particle_truth(particle_ids: np.ndarray, *, voxel_size: Sequence[float],
                   min_voxels: int = MIN_VOXELS) -> dict[str, Any]:
    """The ``particles`` record of truth.json for an instance map.

    ``count`` is the number of particles with at least ``min_voxels`` voxels; per particle
    (all of them, ids ascending): voxels, equivalent-sphere diameter ``(6 V / π)^(1/3)`` in µm,
    whether it touches a face of the volume, and the voxels of its fragments (face-connected
    pieces, largest first; two or more = cracked).
    """
    ids = np.asarray(particle_ids)
    voxel_um3 = float(np.prod(voxel_size))
    voxels = np.bincount(ids.ravel())
    present = np.flatnonzero(voxels)
    present = present[present > 0]
    stats = cc3d.statistics(ids.astype(np.uint32, copy=False), no_slice_conversion=True)
    boxes = np.asarray(stats["bounding_boxes"], np.int64).reshape(len(voxels), -1)[present]
    upper = np.asarray(ids.shape) - 1
    touches = (boxes[:, 0::2] == 0).any(axis=1) | (boxes[:, 1::2] >= upper).any(axis=1)
    fragments, parent = fragment_ids(ids)
    piece_voxels = np.bincount(fragments.ravel(), minlength=parent.size)
    pieces: dict[int, list[int]] = {}
    for f in np.argsort(-piece_voxels[1:], kind="stable") + 1:
        pieces.setdefault(int(parent[f]), []).append(int(piece_voxels[f]))
    counted = voxels[present] >= min_voxels
    big_pieces = {p: [v for v in pieces[p] if v >= min_voxels] for p in present.tolist()}
    diameter = np.cbrt(6.0 * voxels[present] * voxel_um3 / np.pi)
    return {
        "definition": "particle = the AM voxels of one placed particle (particles.tif id); "
                      "fragment = a face-connected piece of one particle; counts leave out "
                      f"particles and fragments under {min_voxels} voxels",
        "min_voxels": int(min_voxels),
        "count": int(counted.sum()),
        "count_all": int(present.size),
        "fragment_count": int(sum(len(v) for v in big_pieces.values())),
        "cracked_count": int(sum(len(v) >= 2 for v in big_pieces.values())),
        "id": present.tolist(),
        "voxels": voxels[present].tolist(),
        "diameter_um": [round(float(d), 6) for d in diameter],
        "touches_border": touches.tolist(),
        "fragment_voxels": [pieces[p] for p in present.tolist()],
    }

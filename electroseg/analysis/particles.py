"""Particles: connected components of a phase, optional watershed split, per-particle table."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import cc3d
import numpy as np

from electroseg import DEFAULT_PHASES
from electroseg.analysis._validate import (
    check_depth_axis,
    check_labels,
    check_voxel_size,
    phase_index,
)
from electroseg.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_EDGES_UM3", "ParticleTable", "SizeHistogram", "label_particles",
           "particle_table", "size_histogram", "split_touching"]

_NEIGHBOURS = {2: {1: 4, 2: 8}, 3: {1: 6, 2: 18, 3: 26}}


def neighbour_count(connectivity: int, ndim: int) -> int:
    """cc3d neighbour count for ``connectivity`` given as rank (1..ndim) or as 4/8 or 6/18/26."""
    table = _NEIGHBOURS[ndim]
    if connectivity in table:
        return table[connectivity]
    if connectivity in table.values():
        return int(connectivity)
    raise InputError(f"connectivity: expected 1..{ndim} (1 = faces) or one of "
                     f"{sorted(table.values())} for {ndim}-D labels, got {connectivity!r}")


def connectivity_rank(connectivity: int, ndim: int) -> int:
    """Rank form (1 = faces ... ndim = full) of a connectivity given either way."""
    neighbours = neighbour_count(connectivity, ndim)
    return {v: k for k, v in _NEIGHBOURS[ndim].items()}[neighbours]


@dataclass(frozen=True, eq=False)
class ParticleTable:
    """One row per particle (connected component of one phase).

    Attributes
    ----------
    phase : str
    shape : tuple of int
        Shape of the label array.
    voxel_size : tuple of float
        µm, array order.
    depth_axis : int
    connectivity : int
        Rank form: 1 = faces (6 in 3-D, 4 in 2-D), ndim = full (26 / 8).
    split : str
        "none" or "watershed".
    label : ndarray, shape (n,), int64
        Particle id in the particle label image.
    voxels : ndarray, shape (n,), int64
    size : ndarray, shape (n,), float64
        ``voxels * prod(voxel_size)``: volume in µm³ (3-D) or area in µm² (2-D).
    diameter_um : ndarray, shape (n,), float64
        Equivalent sphere ``(6 V / π)^(1/3)`` (3-D) or circle ``2 (A / π)^(1/2)`` (2-D).
    centroid_voxel : ndarray, shape (n, ndim), float64
        Mean voxel index (voxel centres at integer indices).
    touches_border : ndarray, shape (n,), bool
        True when the particle has a voxel on any face of the array.
    """

    phase: str
    shape: tuple[int, ...]
    voxel_size: tuple[float, ...]
    depth_axis: int
    connectivity: int
    split: str
    label: np.ndarray
    voxels: np.ndarray
    size: np.ndarray
    diameter_um: np.ndarray
    centroid_voxel: np.ndarray
    touches_border: np.ndarray

    @property
    def count(self) -> int:
        return int(self.label.size)

    @property
    def size_name(self) -> str:
        """``"volume_um3"`` for volumes, ``"area_um2"`` for 2-D images."""
        return "volume_um3" if len(self.shape) == 3 else "area_um2"

    @property
    def centroid_um(self) -> np.ndarray:
        """Centroid in µm, shape (n, ndim): ``centroid_voxel * voxel_size``."""
        return self.centroid_voxel * np.asarray(self.voxel_size)

    @property
    def depth_um(self) -> np.ndarray:
        """Depth of the centroid along ``depth_axis`` in µm, shape (n,)."""
        return self.centroid_um[:, self.depth_axis]

    def to_dict(self) -> dict:
        """The ``particles`` summary of metrics.json (histogram added by the caller)."""
        size = {"mean": float(self.size.mean()) if self.count else None,
                "median": float(np.median(self.size)) if self.count else None}
        return {"count": self.count, "connectivity": self.connectivity, self.size_name: size}

    def as_table(self):
        """pandas DataFrame, one row per particle, units in the column names."""
        import pandas as pd

        axes = "zyx"[-len(self.shape):]
        columns = {"label": self.label, "voxels": self.voxels, self.size_name: self.size,
                   "diameter_um": self.diameter_um}
        for i, name in enumerate(axes):
            columns[f"centroid_{name}_um"] = self.centroid_um[:, i]
        for i, name in enumerate(axes):
            columns[f"centroid_{name}_voxel"] = self.centroid_voxel[:, i]
        columns["depth_um"] = self.depth_um
        columns["touches_border"] = self.touches_border
        return pd.DataFrame(columns)


def label_particles(labels: np.ndarray, *, phase: str = "am",
                    phases: Sequence[str] = DEFAULT_PHASES, connectivity: int = 1,
                    ignore_value: int = 255) -> np.ndarray:
    """Connected components of one phase.

    Parameters
    ----------
    labels : ndarray, shape (Z, Y, X) or (Y, X), uint8
    phase : str
        Phase whose components are labelled (default the active material).
    phases : sequence of str
    connectivity : int
        1 = face neighbours (default; 6 in 3-D, 4 in 2-D), ndim = full (26 / 8); the cc3d
        counts 4, 8, 6, 18, 26 are accepted too.
    ignore_value : int

    Returns
    -------
    ndarray, same shape, unsigned int
        0 outside the phase, particles numbered 1..n.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[2, 0, 2], [2, 0, 0]], dtype=np.uint8)
    >>> int(label_particles(labels).max())
    2
    """
    labels = check_labels(labels, phases=phases, ignore_value=ignore_value)
    index = phase_index(phases, phase)
    neighbours = neighbour_count(connectivity, labels.ndim)
    return cc3d.connected_components(labels == index, connectivity=neighbours)


def split_touching(mask: np.ndarray, *, voxel_size: Sequence[float], connectivity: int = 1,
                   markers: str = "peaks", h_um: float | None = None,
                   min_distance_um: float | None = None) -> np.ndarray:
    """Split touching particles of a binary mask with a distance-transform watershed.

    Parameters
    ----------
    mask : ndarray of bool, shape (Z, Y, X) or (Y, X)
    voxel_size : sequence of float
        µm, array order; the distance transform is anisotropic.
    connectivity : int
        Neighbourhood of the watershed flooding (rank 1..ndim or cc3d count).
    markers : {"peaks", "h_maxima"}
        Seeds: local maxima of the distance within a box of half-width ``min_distance_um``
        per axis (default ``2 * max(voxel_size)``; fast, separable maximum filter), or
        regional maxima at least ``h_um`` high (default ``max(voxel_size)``; morphological
        reconstruction, several times slower, fewer spurious splits).

    Returns
    -------
    ndarray of uint32, same shape: 0 outside the mask, particles 1..n.

    Notes
    -----
    Distance ``d`` from the exact anisotropic EDT (``edt`` package); flooding of ``-d`` from the
    markers with ``skimage.segmentation.watershed`` restricted to the mask.
    """
    import edt
    from skimage.segmentation import watershed

    mask = np.asarray(mask, dtype=bool)
    sizes = check_voxel_size(voxel_size, mask.ndim, what="the watershed split", source="labels")
    distance = edt.edt(mask, anisotropy=sizes, black_border=False, parallel=2)
    seeds = _markers(distance, mask, sizes, markers, h_um, min_distance_um)
    rank = connectivity_rank(connectivity, mask.ndim)
    split = watershed(-distance, seeds, mask=mask, connectivity=rank)
    return split.astype(np.uint32, copy=False)


def _markers(distance: np.ndarray, mask: np.ndarray, sizes: tuple[float, ...], kind: str,
             h_um: float | None, min_distance_um: float | None) -> np.ndarray:
    if kind == "h_maxima":
        from skimage.morphology import h_maxima

        h = float(h_um) if h_um is not None else max(sizes)
        peaks = h_maxima(distance, h) > 0
    elif kind == "peaks":
        from scipy.ndimage import maximum_filter

        spacing = (float(min_distance_um) if min_distance_um is not None else 2 * max(sizes))
        window = [2 * max(1, int(round(spacing / s))) + 1 for s in sizes]
        # separable box maximum (O(n) per axis); plateaus become one marker each below
        peaks = distance == maximum_filter(distance, size=window, mode="constant")
    else:
        raise InputError(f"markers: expected 'h_maxima' or 'peaks', got {kind!r}")
    return cc3d.connected_components(peaks & mask, connectivity=3 ** mask.ndim - 1)


def particle_table(labels: np.ndarray, *, voxel_size: Sequence[float], depth_axis: int = 1,
                   phase: str = "am", phases: Sequence[str] = DEFAULT_PHASES,
                   connectivity: int = 1, split: str = "none", ignore_value: int = 255,
                   markers: str = "peaks", h_um: float | None = None,
                   particle_labels: np.ndarray | None = None) -> ParticleTable:
    """Per-particle sizes, equivalent diameters, centroids and border contact.

    Parameters
    ----------
    labels : ndarray, shape (Z, Y, X) or (Y, X), uint8
    voxel_size : sequence of float
        µm, array order; required.
    depth_axis : int
    phase : str
        Phase whose particles are measured ("am"; "pore" gives pore bodies).
    phases : sequence of str
    connectivity : int
        1 = faces (default), ndim = full; see :func:`label_particles`.
    split : {"none", "watershed"}
        "watershed" separates touching particles (:func:`split_touching`).
    ignore_value : int
    markers, h_um
        Watershed seeds, see :func:`split_touching`.
    particle_labels : ndarray, optional
        A ready particle label image (skips labelling).

    Returns
    -------
    ParticleTable

    Notes
    -----
    ``V = N · Πvoxel_size``; ``d = (6V/π)^(1/3)`` in 3-D, ``d = 2(A/π)^(1/2)`` in 2-D. Volumes,
    centroids and bounding boxes come from ``cc3d.statistics`` in one pass.
    """
    labels = check_labels(labels, phases=phases, ignore_value=ignore_value)
    sizes = check_voxel_size(voxel_size, labels.ndim, what="particle sizes")
    axis = check_depth_axis(depth_axis, labels.ndim)
    rank = connectivity_rank(connectivity, labels.ndim)
    if split not in ("none", "watershed"):
        raise InputError(f"split: expected 'none' or 'watershed', got {split!r}")
    if particle_labels is None:
        if split == "watershed":
            mask = labels == phase_index(phases, phase)
            particle_labels = split_touching(mask, voxel_size=sizes, connectivity=rank,
                                             markers=markers, h_um=h_um)
        else:
            particle_labels = label_particles(labels, phase=phase, phases=phases,
                                              connectivity=rank, ignore_value=ignore_value)
    return _table_from_labels(particle_labels, phase=phase, sizes=sizes, axis=axis,
                              rank=rank, split=split)


def _table_from_labels(particle_labels: np.ndarray, *, phase: str, sizes: tuple[float, ...],
                       axis: int, rank: int, split: str) -> ParticleTable:
    stats = cc3d.statistics(particle_labels, no_slice_conversion=True)
    voxels = np.asarray(stats["voxel_counts"], dtype=np.int64)[1:]
    keep = np.flatnonzero(voxels > 0)
    voxels = voxels[keep]
    ndim = particle_labels.ndim
    centroids = np.asarray(stats["centroids"], dtype=np.float64)[1:][keep].reshape(-1, ndim)
    boxes = np.asarray(stats["bounding_boxes"], dtype=np.int64)[1:][keep].reshape(-1, 2 * ndim)
    upper = np.asarray(particle_labels.shape) - 1
    touches = (boxes[:, 0::2] == 0).any(axis=1) | (boxes[:, 1::2] >= upper).any(axis=1)
    size = voxels * float(np.prod(sizes))
    if ndim == 3:
        diameter = np.cbrt(6.0 * size / np.pi)
    else:
        diameter = 2.0 * np.sqrt(size / np.pi)
    if voxels.size == 0:
        logger.warning("labels: no %r particles; particle statistics are null", phase)
    return ParticleTable(phase, tuple(particle_labels.shape), sizes, axis, rank, split,
                         keep.astype(np.int64) + 1, voxels, size, diameter, centroids,
                         touches)


DEFAULT_EDGES_UM3: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3)
"""Default size-bin edges (µm³, or µm² for 2-D): decades from 1e-3 to 1e3."""


@dataclass(frozen=True, eq=False)
class SizeHistogram:
    """Particle size distribution, overall and per depth region.

    Attributes
    ----------
    edges : ndarray, shape (n_bins + 1,)
        Bin edges in µm³ (µm² for 2-D); bin i is ``edges[i] <= size < edges[i+1]``.
    counts : ndarray, shape (n_bins,), int64
    number_fraction : ndarray, shape (n_bins,)
        Particles in the bin / all particles (those outside the edges count in the total).
    volume_fraction : ndarray, shape (n_bins,)
        Summed size in the bin / summed size of all particles.
    region_edges_um : ndarray, shape (n_regions + 1,)
        Depth boundaries of the regions (equal slabs along the depth axis).
    region_number_fraction, region_volume_fraction : ndarray, shape (n_regions, n_bins)
        The same per region, particles assigned by the depth of their centroid (NaN where a
        region has no particle).
    """

    size_name: str
    edges: np.ndarray
    counts: np.ndarray
    number_fraction: np.ndarray
    volume_fraction: np.ndarray
    region_edges_um: np.ndarray
    region_number_fraction: np.ndarray
    region_volume_fraction: np.ndarray

    def to_dict(self) -> dict:
        """The ``histogram`` entry of metrics.json."""
        unit = "um3" if self.size_name == "volume_um3" else "um2"
        return {f"edges_{unit}": self.edges.tolist(),
                "number_fraction": _nan_to_none(self.number_fraction),
                "volume_fraction": _nan_to_none(self.volume_fraction)}

    def as_table(self):
        """pandas DataFrame: one row per (region, bin); region "all" is the whole volume."""
        import pandas as pd

        rows = []
        regions = [("all", self.number_fraction, self.volume_fraction)]
        regions += [(str(r), n, v) for r, (n, v) in
                    enumerate(zip(self.region_number_fraction, self.region_volume_fraction))]
        for region, number, volume in regions:
            for i in range(len(self.counts)):
                rows.append({"region": region, "bin_low": self.edges[i],
                             "bin_high": self.edges[i + 1], "number_fraction": number[i],
                             "volume_fraction": volume[i]})
        return pd.DataFrame(rows)


def size_histogram(table: ParticleTable, *, edges: Sequence[float] = DEFAULT_EDGES_UM3,
                   n_regions: int = 5) -> SizeHistogram:
    """Number- and volume-weighted size distribution of a :class:`ParticleTable`.

    Notes
    -----
    ``number_fraction[i] = n_i / n`` and ``volume_fraction[i] = Σ_{bin i} V / Σ V``. Regions
    are ``n_regions`` equal slabs of the depth extent ``[0, n_depth)`` voxels; a particle with
    centroid index ``c`` belongs to slab ``floor((c + 0.5) n_regions / n_depth)``.
    """
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise InputError(f"edges: expected at least two increasing bin edges, got {edges.tolist()}")
    if int(n_regions) < 1:
        raise InputError(f"n_regions: expected a positive integer, got {n_regions!r}")
    n_depth = table.shape[table.depth_axis]
    centre = table.centroid_voxel[:, table.depth_axis] + 0.5
    region = np.clip((centre * n_regions / n_depth).astype(np.int64), 0, n_regions - 1)
    number, volume, counts = _fractions(table.size, edges)
    region_number = np.empty((n_regions, edges.size - 1))
    region_volume = np.empty((n_regions, edges.size - 1))
    for r in range(n_regions):
        region_number[r], region_volume[r], _ = _fractions(table.size[region == r], edges)
    step = table.voxel_size[table.depth_axis] * n_depth / n_regions
    region_edges = np.arange(n_regions + 1) * step - 0.5 * table.voxel_size[table.depth_axis]
    return SizeHistogram(table.size_name, edges, counts, number, volume, region_edges,
                         region_number, region_volume)


def _fractions(sizes: np.ndarray, edges: np.ndarray):
    counts, _ = np.histogram(sizes, bins=edges)
    weights, _ = np.histogram(sizes, bins=edges, weights=sizes)
    # np.histogram closes the last bin; keep every bin half-open as documented.
    on_edge = sizes == edges[-1]
    counts[-1] -= int(on_edge.sum())
    weights[-1] -= float(sizes[on_edge].sum())
    total_n, total_v = sizes.size, float(sizes.sum())
    number = counts / total_n if total_n else np.full(counts.shape, np.nan)
    volume = weights / total_v if total_v > 0 else np.full(counts.shape, np.nan)
    return number, volume, counts.astype(np.int64)


def _nan_to_none(values: np.ndarray) -> list:
    return [None if np.isnan(v) else float(v) for v in values]

"""Block-wise analysis of label volumes larger than memory, on Dask (local or remote cluster).

Every metric here is a sum of counts, so blocks are counted independently and the counts added:
phase voxels per depth plane, face pairs by phase (inside each block, plus the pairs straddling
each block boundary, counted from the two boundary planes), particles and solid clusters
(connected components labelled per block with cc3d, then merged with a union-find over the
labels facing each other across block boundaries). The totals equal the in-memory counts
exactly; the results are the dataclasses the in-memory functions return. The sub-block
uncertainty runs one in-memory task per sub-block.

Dask and distributed are imported inside the functions: importing this module stays cheap and
needs neither.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cc3d
import numpy as np

from electroseg import DEFAULT_PHASES
from electroseg.analysis._validate import check_depth_axis, check_phases, check_voxel_size
from electroseg.analysis.contacts import FacePairCounts, PBAProfile, face_pair_counts, pba_from_pairs
from electroseg.analysis.fractions import VolumeFractionProfile
from electroseg.analysis.particles import (
    DEFAULT_EDGES_UM3,
    ParticleTable,
    connectivity_rank,
    mask_components,
    size_histogram,
)
from electroseg.analysis.metrics import AnalysisResult
from electroseg.analysis.surfaces import interface_areas_from_pairs
from electroseg.errors import InputError
from electroseg.parallel import compute, dask_client  # noqa: F401  (re-exported: older imports)

logger = logging.getLogger(__name__)

__all__ = ["BlockwiseCounts", "analyze_blockwise", "as_dask_array", "blockwise_counts", "compute",
           "dask_client"]


@dataclass(frozen=True, eq=False)
class BlockwiseCounts:
    """Exact whole-volume counts gathered block by block.

    Attributes
    ----------
    shape : tuple of int
    voxel_size : tuple of float
        µm, array order.
    blocks : int
        Number of blocks the volume was cut into.
    pair_counts : FacePairCounts
        Equal to ``face_pair_counts(labels, depth_axis=...)`` of the whole volume (its
        ``voxels`` and ``ignored`` are the per-plane phase counts).
    particles : ParticleTable or None
        Face-connected particles of "am" (None when "am" is not a phase), numbered 1..n in
        raster order of their first voxel, as cc3d numbers the whole volume.
    connectivity : Connectivity or None
        As ``electronic_connectivity`` (None unless asked for and "am", "cbd" are phases).
    """

    shape: tuple[int, ...]
    voxel_size: tuple[float, ...]
    blocks: int
    pair_counts: FacePairCounts
    particles: ParticleTable | None
    connectivity: Any = None

    def to_dict(self) -> dict:
        """Summary: shape, blocks, voxels per phase, particle count."""
        counts = self.pair_counts
        return {"shape": list(self.shape), "blocks": self.blocks,
                "voxels": dict(zip(counts.phases, counts.voxels.sum(axis=0).tolist())),
                "ignored": int(counts.ignored.sum()),
                "particles": None if self.particles is None else self.particles.count}

    def as_table(self):
        """pandas DataFrame, one row per particle (see :meth:`ParticleTable.as_table`)."""
        import pandas as pd

        return pd.DataFrame() if self.particles is None else self.particles.as_table()


def as_dask_array(labels: Any, *, chunks: Sequence[int] | None = None,
                  voxel_size: Sequence[float] | None = None) -> tuple[Any, Any, str]:
    """``(dask array, voxel_size, name)`` for a Zarr path, zarr/dask/NumPy array or Volume.

    The voxel size given wins over the one in file metadata. Zarr inputs keep their storage
    chunks unless ``chunks`` is given.
    """
    import dask.array as da

    name, data, found = "labels", labels, None
    if isinstance(labels, (str, os.PathLike)):
        from electroseg.io import read_volume

        labels = read_volume(labels, lazy=True)
        name = str(labels.source or name)
    if hasattr(labels, "voxel_size") and hasattr(labels, "data"):
        data, found, name = labels.data, labels.voxel_size, str(labels.source or name)
    if not hasattr(data, "shape") or not hasattr(data, "dtype"):
        raise TypeError(f"{name}: expected a Zarr path or an array of phase indices, "
                        f"got {type(data).__name__}")
    if isinstance(data, da.Array):
        array = data if chunks is None else data.rechunk(tuple(chunks))
    else:
        stored = getattr(data, "chunks", None)
        default = stored if isinstance(stored, tuple) and len(stored) == len(data.shape) else "auto"
        array = da.from_array(data, chunks=tuple(chunks) if chunks is not None else default)
    if found is None and hasattr(data, "attrs") and "voxel_size_um" in data.attrs:
        found = tuple(data.attrs["voxel_size_um"])
    if array.ndim not in (2, 3) or not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"{name}: expected a 2-D or 3-D integer label array (uint8 phase "
                         f"indices), got shape {array.shape} and dtype {array.dtype}")
    return array, (voxel_size if voxel_size is not None else found), name


def _check_supported(*, pba_method: str, split: str, surface_method: str,
                     particle_phases: Sequence[str], image: Any) -> None:
    """InputError for options of ``analyze_labels`` that only work in memory."""
    wanted = [particle_phases] if isinstance(particle_phases, str) else list(particle_phases)
    checks = [("pba_method", pba_method == "face", "'face'", repr(pba_method)),
              ("split", split == "none", "'none'", repr(split)),
              ("surface_method", surface_method == "faces", "'faces'", repr(surface_method)),
              ("particle_phases", set(wanted) <= {"am"}, "['am']", repr(wanted)),
              ("image", image is None, "None", f"a {type(image).__name__}")]
    for key, ok, expected, got in checks:
        if not ok:
            raise InputError(f"{key}: block-wise analysis supports {expected} only, got {got}; "
                             f"analyse in memory (executor=local) for this option")


def blockwise_counts(labels: Any, *, voxel_size: Sequence[float] | None = None,
                     depth_axis: int = 1, phases: Sequence[str] = DEFAULT_PHASES,
                     ignore_value: int = 255, label_values: Sequence[int] | None = None,
                     connectivity: int = 1, collector_connectivity: bool = False,
                     chunks: Sequence[int] | None = None, client: Any = None,
                     scheduler_address: str | None = None) -> BlockwiseCounts:
    """Face-pair counts and "am" particles of a label volume, counted block by block on Dask.

    Parameters
    ----------
    labels : path, zarr array, dask array, ndarray or Volume, shape (Z, Y, X) or (Y, X)
        uint8 phase indices; a ``.zarr`` path (or OME-Zarr) is read lazily.
    voxel_size : sequence of float, optional
        µm, array order; default the file's metadata; required one way or the other.
    depth_axis, phases, ignore_value
        As in :func:`electroseg.analysis.face_pair_counts`.
    label_values : sequence of int, optional
        Stored value of each phase (e.g. ``[0, 85, 170]``), mapped block by block as
        :func:`electroseg.io.read_labels` does; default the values are the phase indices.
    connectivity : int
        Particle connectivity; only 1 (faces: 6 in 3-D, 4 in 2-D) is supported block-wise.
    collector_connectivity : bool
        Also the electronic connectivity of AM to the collector face (needs "am" and "cbd"):
        solid (AM or CBD) clusters labelled per block and merged like the particles.
    chunks : sequence of int, optional
        Block shape; default the storage chunks.
    client : distributed.Client, optional
        Run on this client; else on ``scheduler_address``; else on dask's default scheduler.
    scheduler_address : str, optional

    Returns
    -------
    BlockwiseCounts

    Notes
    -----
    A pair of adjacent voxels belongs to the block holding its lower voxel: block ``b`` counts
    its inner pairs with :func:`face_pair_counts`; the pairs across its upper face along axis
    ``a`` are counted from its last plane and the next block's first plane, per depth plane.
    Particles: per-block cc3d labels; labels ``(u, v)`` facing each other across a boundary are
    edges of a graph whose connected components are the particles (summing voxels, coordinate
    sums and bounding boxes). Memory per task: one block, its uint32 labels and its faces.
    """
    array, voxel_size, name = as_dask_array(labels, chunks=chunks, voxel_size=voxel_size)
    # with label_values the stored ignore_value may be any value they do not use: blocks map it to 255
    names = check_phases(phases, ignore_value=ignore_value if label_values is None else 255)
    sizes = check_voxel_size(voxel_size, array.ndim, what="block-wise analysis (particle "
                             "volumes, interface areas)", source=name)
    axis = check_depth_axis(depth_axis, array.ndim)
    i_am = names.index("am") if "am" in names else None
    if connectivity_rank(connectivity, array.ndim) != 1:
        raise InputError(f"connectivity: block-wise particles support face connectivity (1) "
                         f"only, got {connectivity!r}; use the in-memory particle_table")
    values = None if label_values is None else [int(v) for v in label_values]
    i_cbd = names.index("cbd") if collector_connectivity and "cbd" in names else None
    summaries, boundaries = _build_graph(array, axis, names, int(ignore_value), values, i_am,
                                         i_cbd if i_am is not None else None, name)
    logger.info("%s: counting %s in %d blocks of %s", name, array.shape, len(summaries),
                array.chunksize)
    summaries, boundaries = compute(summaries, boundaries, client=client,
                                    scheduler_address=scheduler_address)
    counts = _assemble_counts(array, summaries, boundaries, axis, names)
    table = (None if i_am is None else
             _merge_particles(array.shape, array.numblocks, summaries, boundaries, sizes, axis))
    connectivity = (None if i_am is None or i_cbd is None else _merge_connectivity(
        array.shape, array.numblocks, summaries, boundaries, table, axis))
    return BlockwiseCounts(tuple(int(n) for n in array.shape), sizes, len(summaries), counts,
                           table, connectivity)


def analyze_blockwise(labels: Any, *, voxel_size: Sequence[float] | None = None,
                      depth_axis: int = 1, phases: Sequence[str] = DEFAULT_PHASES,
                      ignore_value: int = 255, label_values: Sequence[int] | None = None,
                      connectivity: int = 1, pba_method: str = "face",
                      histogram_edges: Sequence[float] = DEFAULT_EDGES_UM3, n_regions: int = 5,
                      collector_connectivity: bool = True, uncertainty: bool = True,
                      n_blocks: int | Sequence[int] | None = None, seed: int = 0,
                      split: str = "none", surface_method: str = "faces",
                      particle_phases: Sequence[str] = ("am",), image: Any = None,
                      source: str | None = None, chunks: Sequence[int] | None = None,
                      client: Any = None,
                      scheduler_address: str | None = None) -> AnalysisResult:
    """:func:`electroseg.analysis.analyze_labels` for volumes beyond memory, on Dask.

    Same parameters, result and values as ``analyze_labels`` with its default options (face
    PBA, face-counted surfaces, face-connected "am" particles), plus ``label_values``,
    ``chunks``, ``client`` and ``scheduler_address`` of :func:`blockwise_counts`. ``split``,
    ``surface_method``, ``particle_phases`` and ``image`` are accepted so that the in-memory
    options pass through unchanged, but only their defaults work block-wise: anything else is
    an InputError naming the option (``source`` names the input in messages).

    Returns
    -------
    AnalysisResult
        ``to_dict()`` equals the in-memory one exactly, and so does the electronic
        ``connectivity``. Not computed block-wise (None): per-particle channel statistics.

    Notes
    -----
    Uncertainty (``uncertainty=True``): each of the ``n_blocks`` in-plane sub-blocks (default
    2 per axis, depth whole) is one task that runs ``subblock_metrics`` on it in memory, so a
    worker needs memory for one sub-block (volume / n_blocks²): raise ``n_blocks`` for very
    large volumes, or pass ``uncertainty=False``.
    """
    _check_supported(pba_method=pba_method, split=split, surface_method=surface_method,
                     particle_phases=particle_phases, image=image)
    plain_array = not isinstance(labels, (str, os.PathLike)) and not hasattr(labels, "voxel_size")
    if source is not None and plain_array:
        from electroseg.io import Volume

        labels = Volume(data=labels, voxel_size=None, source=str(source))
    counts = blockwise_counts(labels, voxel_size=voxel_size, depth_axis=depth_axis,
                              phases=phases, ignore_value=ignore_value,
                              label_values=label_values, connectivity=connectivity,
                              collector_connectivity=collector_connectivity,
                              chunks=chunks, client=client,
                              scheduler_address=scheduler_address)
    pairs, names = counts.pair_counts, counts.pair_counts.phases
    profile = VolumeFractionProfile.from_counts(pairs.voxels, phases=names,
                                                depth_axis=pairs.depth_axis,
                                                ignored=pairs.ignored)
    fractions = profile.overall()
    absent = tuple(p for p in names if fractions.counts[p] == 0)
    pba = None
    if "am" in names and "cbd" in names:
        zeros = np.zeros(pairs.voxels.shape[0], np.int64)
        pba = (PBAProfile.from_counts(zeros, zeros, depth_axis=pairs.depth_axis)
               if {"am", "cbd"} & set(absent) else pba_from_pairs(pairs))
    particles, histograms = {}, {}
    if counts.particles is not None:
        particles["am"] = counts.particles
        histograms["am"] = size_histogram(counts.particles, edges=histogram_edges,
                                          n_regions=n_regions)
    spread = None
    if uncertainty:
        array, _, _ = as_dask_array(labels, chunks=chunks, voxel_size=voxel_size)
        spread = _blockwise_uncertainty(
            array, sizes=counts.voxel_size, axis=pairs.depth_axis, phases=names,
            ignore_value=int(ignore_value), label_values=label_values, n_blocks=n_blocks,
            seed=int(seed), client=client, scheduler_address=scheduler_address)
    return AnalysisResult(names, counts.voxel_size, pairs.depth_axis, counts.shape, fractions,
                          profile, pba, particles, histograms,
                          interface_areas_from_pairs(pairs, voxel_size=counts.voxel_size),
                          connectivity=counts.connectivity, uncertainty=spread, absent=absent)


def _block_starts(array: Any) -> list[np.ndarray]:
    return [np.concatenate([[0], np.cumsum(c)]).astype(np.int64) for c in array.chunks]


def _build_graph(array: Any, axis: int, phases: tuple[str, ...], ignore_value: int,
                 label_values: list[int] | None, i_am: int | None, i_cbd: int | None,
                 name: str) -> tuple[list, list]:
    """Delayed per-block summaries (in block order) and per-boundary counts."""
    import dask

    starts = _block_starts(array)
    blocks = array.to_delayed()
    summary_task = dask.delayed(_block_summary, nout=2, pure=True)
    summaries, faces, boundaries = [], {}, []
    for index in np.ndindex(*array.numblocks):
        start = tuple(int(starts[a][i]) for a, i in enumerate(index))
        summary, faces[index] = summary_task(blocks[index], start=start, shape=array.shape,
                                             depth_axis=axis, phases=phases,
                                             ignore_value=ignore_value,
                                             label_values=label_values, am_index=i_am,
                                             cbd_index=i_cbd, name=name)
        summaries.append(summary)
    for index in np.ndindex(*array.numblocks):
        for a in range(array.ndim):
            upper = tuple(i + (d == a) for d, i in enumerate(index))
            if upper[a] < array.numblocks[a]:
                boundaries.append((index, a, dask.delayed(_boundary, pure=True)(
                    faces[index], faces[upper], axis=a, depth_axis=axis, n=len(phases))))
    keys = [(index, a) for index, a, _ in boundaries]
    return summaries, list(zip(keys, [task for _, _, task in boundaries]))


@dataclass(frozen=True)
class _Summary:
    """What one block returns: its counts and its particles (global voxel coordinates)."""

    start: tuple[int, ...]       # voxel index of the block's first voxel
    pairs: np.ndarray            # (n_depth_block, ndim, n, n)
    voxels: np.ndarray           # (n_depth_block, n)
    ignored: np.ndarray          # (n_depth_block,)
    particle_voxels: np.ndarray  # (m,) int64
    coordinate_sum: np.ndarray   # (m, ndim) float64: centroid * voxels
    box_low: np.ndarray          # (m, ndim) int64, inclusive
    box_high: np.ndarray         # (m, ndim) int64, inclusive
    first_voxel: np.ndarray      # (m,) int64: global flat index of the first voxel in raster order
    particle_cluster: np.ndarray  # (m,) int64: local solid-cluster id of each particle (1-based)
    on_collector: np.ndarray     # (n_clusters,) bool: cluster has a voxel on the collector face


def _block_summary(block: np.ndarray, *, start: tuple[int, ...], shape: tuple[int, ...],
                   depth_axis: int, phases: tuple[str, ...], ignore_value: int,
                   label_values: list[int] | None, am_index: int | None,
                   cbd_index: int | None, name: str) -> tuple[_Summary, list]:
    block = np.ascontiguousarray(block)
    where = f"{name}[{', '.join(f'{s}:{s + n}' for s, n in zip(start, block.shape))}]"
    if label_values is not None:  # stored values -> phase indices, ignore -> 255
        from electroseg.io.labels import to_phase_indices

        block = to_phase_indices(block, phases=phases, label_values=label_values,
                                 ignore_value=ignore_value, name=where)
        ignore_value = 255
    try:
        counts = face_pair_counts(block, depth_axis=depth_axis, phases=phases,
                                  ignore_value=ignore_value)
    except InputError as err:
        raise InputError(f"{where}: {err}") from None
    particles, stats = _block_particles(block, start, shape, am_index)
    clusters, cluster_stats = _block_clusters(block, start, shape, stats[-1], am_index,
                                              cbd_index, depth_axis)
    faces = [(np.take(block, 0, axis=a), np.take(block, -1, axis=a),
              *[np.take(ids, side, axis=a).astype(np.uint32) if ids is not None else None
                for ids in (particles, clusters) for side in (0, -1)])
             for a in range(block.ndim)]
    summary = _Summary(tuple(int(s) for s in start), counts.pairs, counts.voxels,
                       counts.ignored, *stats, *cluster_stats)
    return summary, faces


def _block_clusters(block: np.ndarray, start: tuple[int, ...], shape: tuple[int, ...],
                    first_voxel: np.ndarray, am_index: int | None, cbd_index: int | None,
                    depth_axis: int) -> tuple[np.ndarray | None, tuple]:
    """Solid (AM or CBD) clusters of a block for the collector connectivity: their labels,
    the cluster of each particle and which clusters reach the collector face."""
    if am_index is None or cbd_index is None:
        return None, (np.zeros(first_voxel.size, np.int64), np.zeros(0, bool))
    solid = (block == am_index) | (block == cbd_index)
    clusters, n = mask_components(solid, 2 * block.ndim, return_N=True)
    local = np.unravel_index(first_voxel, shape)
    local = tuple(c - s for c, s in zip(local, start))
    particle_cluster = clusters[local].astype(np.int64) if first_voxel.size else \
        np.zeros(0, np.int64)
    on_collector = np.zeros(n + 1, bool)
    if start[depth_axis] + block.shape[depth_axis] == shape[depth_axis]:
        on_collector[np.unique(np.take(clusters, -1, axis=depth_axis))] = True
    return clusters, (particle_cluster, on_collector[1:])


def _block_particles(block: np.ndarray, start: tuple[int, ...], shape: tuple[int, ...],
                     am_index: int | None) -> tuple[np.ndarray, tuple]:
    """Face-connected AM components of a block (cc3d numbers them in raster order) and their
    voxels, coordinate sums, bounding boxes and first voxels, in global coordinates."""
    import fastremap

    ndim, origin = block.ndim, np.asarray(start, dtype=np.int64)
    if am_index is None:
        particles, n = np.zeros(block.shape, np.uint8), 0
    else:
        particles, n = mask_components(block == am_index, 2 * ndim, return_N=True)
    if n == 0:
        empty = np.zeros((0, ndim), np.int64)
        return particles, (np.zeros(0, np.int64), np.zeros((0, ndim)), empty, empty,
                           np.zeros(0, np.int64))
    stats = cc3d.statistics(particles, no_slice_conversion=True)
    voxels = np.asarray(stats["voxel_counts"], np.int64)[1:n + 1]
    centroid = np.asarray(stats["centroids"], np.float64)[1:n + 1].reshape(-1, ndim)
    boxes = np.asarray(stats["bounding_boxes"], np.int64)[1:n + 1].reshape(-1, 2 * ndim)
    ids, first = fastremap.unique(particles, return_index=True)
    local = np.unravel_index(np.asarray(first, np.int64)[np.asarray(ids) > 0], block.shape)
    first = np.ravel_multi_index(tuple(c + o for c, o in zip(local, origin)), shape)
    return particles, (voxels, (centroid + origin) * voxels[:, None], boxes[:, 0::2] + origin,
                       boxes[:, 1::2] + origin, first.astype(np.int64))


def _boundary(lower: list, upper: list, *, axis: int, depth_axis: int,
              n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pair counts across one block boundary and the particle labels facing each other.

    Returns ``(counts, particle_edges, cluster_edges)``: counts shape (rows, n, n) with rows = 1
    when ``axis`` is the depth axis (all pairs lie in the lower block's last depth plane), else
    one row per depth plane of the boundary; edges (m, 2) uint32 of (lower label, upper label).
    """
    k = n + 1
    low = np.minimum(lower[axis][1], n).astype(np.int64)
    high = np.minimum(upper[axis][0], n).astype(np.int64)
    code = low * k + high
    if axis == depth_axis:
        rows = np.bincount(code.ravel(), minlength=k * k).reshape(1, k, k)
    else:
        plane_axis = depth_axis - (depth_axis > axis)
        code = np.moveaxis(code, plane_axis, 0).reshape(code.shape[plane_axis], -1)
        code = code + (np.arange(code.shape[0]) * k * k)[:, None]
        rows = np.bincount(code.ravel(), minlength=code.shape[0] * k * k).reshape(-1, k, k)
    return (rows[:, :n, :n], _facing(lower[axis][3], upper[axis][2]),
            _facing(lower[axis][5], upper[axis][4]))


def _facing(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray:
    """Distinct (a, b) label pairs facing each other across a boundary, both non-zero; (m, 2)."""
    if a is None or b is None:
        return np.zeros((0, 2), np.uint32)
    touching = (a > 0) & (b > 0)
    joined = np.unique((a[touching].astype(np.uint64) << np.uint64(32)) | b[touching])
    edges = np.stack([joined >> np.uint64(32), joined & np.uint64(0xFFFFFFFF)], axis=1)
    return edges.astype(np.uint32)


def _assemble_counts(array: Any, summaries: list, boundaries: list, axis: int,
                     phases: tuple[str, ...]) -> FacePairCounts:
    """Whole-volume :class:`FacePairCounts` from block and boundary counts."""
    n, n_depth = len(phases), array.shape[axis]
    depth_starts = _block_starts(array)[axis]
    pairs = np.zeros((n_depth, array.ndim, n, n), dtype=np.int64)
    voxels = np.zeros((n_depth, n), dtype=np.int64)
    ignored = np.zeros(n_depth, dtype=np.int64)
    for summary in summaries:
        d0 = summary.start[axis]
        d1 = d0 + summary.voxels.shape[0]
        pairs[d0:d1] += summary.pairs
        voxels[d0:d1] += summary.voxels
        ignored[d0:d1] += summary.ignored
    for (index, a), (rows, *_) in boundaries:
        d0 = int(depth_starts[index[axis]])
        if a == axis:
            pairs[int(depth_starts[index[axis] + 1]) - 1, a] += rows[0]
        else:
            pairs[d0:d0 + rows.shape[0], a] += rows
    return FacePairCounts(phases, axis, pairs, voxels, ignored)


def _merge_particles(shape: tuple[int, ...], numblocks: tuple[int, ...], summaries: list,
                     boundaries: list, sizes: tuple[float, ...], axis: int) -> ParticleTable:
    """Union of per-block particles joined across boundaries, as one :class:`ParticleTable`
    numbered in raster order of first voxels, as cc3d numbers the whole volume."""
    ndim = len(shape)
    component, m = _components(numblocks, [s.particle_voxels.size for s in summaries],
                               [edges for _, (_, edges, _) in boundaries],
                               [key for key, _ in boundaries])

    def merged(field: str, reduce=None, fill=0):
        parts = np.concatenate([getattr(s, field) for s in summaries])
        parts = parts.reshape(len(component), ndim if parts.ndim > 1 else 1)
        if reduce is None:
            return np.stack([np.bincount(component, weights=parts[:, d], minlength=m)
                             for d in range(parts.shape[1])], axis=1)
        out = np.full((m, parts.shape[1]), fill, dtype=np.int64)
        reduce.at(out, component, parts)
        return out

    first = merged("first_voxel", np.minimum, np.iinfo(np.int64).max)[:, 0]
    order = np.argsort(first, kind="stable")
    voxels = np.rint(merged("particle_voxels")[order, 0]).astype(np.int64)
    centroid = merged("coordinate_sum")[order] / np.maximum(voxels, 1)[:, None]
    low = merged("box_low", np.minimum, np.iinfo(np.int64).max)[order]
    high = merged("box_high", np.maximum, -1)[order]
    touches = (low == 0).any(axis=1) | (high >= np.asarray(shape) - 1).any(axis=1)
    size = voxels * float(np.prod(sizes))
    diameter = np.cbrt(6.0 * size / np.pi) if ndim == 3 else 2.0 * np.sqrt(size / np.pi)
    if m == 0:
        logger.warning("labels: no 'am' particles; particle statistics are null")
    return ParticleTable("am", tuple(int(s) for s in shape), sizes, axis, 1, "none",
                         np.arange(1, m + 1, dtype=np.int64), voxels, size, diameter,
                         centroid.reshape(m, ndim), touches)


def _components(numblocks: tuple[int, ...], counts: list[int], pairs: list[np.ndarray],
                keys: list[tuple]) -> tuple[np.ndarray, int]:
    """Global component of every per-block component (numbered 1..counts[b] in block b), by a
    union-find (scipy connected_components) over the label pairs facing across boundaries."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    offsets = dict(zip(np.ndindex(*numblocks), np.cumsum([0] + counts[:-1])))
    total = int(sum(counts))
    if total == 0:
        return np.zeros(0, np.int64), 0
    edges = [np.zeros((0, 2), np.int64)]
    for (index, a), facing in zip(keys, pairs):
        upper = tuple(i + (d == a) for d, i in enumerate(index))
        edges.append(np.stack([facing[:, 0].astype(np.int64) - 1 + offsets[index],
                               facing[:, 1].astype(np.int64) - 1 + offsets[upper]], axis=1))
    edges = np.concatenate(edges)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(total, total))
    m, component = connected_components(graph, directed=False)
    return component, int(m)


def _merge_connectivity(shape: tuple[int, ...], numblocks: tuple[int, ...], summaries: list,
                        boundaries: list, table: ParticleTable, axis: int) -> Any:
    """:class:`Connectivity` as ``electronic_connectivity`` computes it, from per-block solid
    clusters merged across boundaries like the particles."""
    from electroseg.analysis.connectivity import Connectivity

    keys = [key for key, _ in boundaries]
    part, m = _components(numblocks, [s.particle_voxels.size for s in summaries],
                          [edges for _, (_, edges, _) in boundaries], keys)
    cluster, n = _components(numblocks, [s.on_collector.size for s in summaries],
                             [edges for _, (_, _, edges) in boundaries], keys)
    reaching = np.zeros(n, bool)
    np.logical_or.at(reaching, cluster, np.concatenate([s.on_collector for s in summaries]))
    offsets = np.cumsum([0] + [s.on_collector.size for s in summaries[:-1]])
    part_cluster = np.concatenate([s.particle_cluster - 1 + o for s, o in zip(summaries, offsets)])
    connected = np.zeros(m, bool)
    np.logical_or.at(connected, part, reaching[cluster[part_cluster.astype(np.int64)]])
    first = np.full(m, np.iinfo(np.int64).max)
    np.minimum.at(first, part, np.concatenate([s.first_voxel for s in summaries]))
    connected = connected[np.argsort(first, kind="stable")]  # the table's particle order
    last = shape[axis] - 1
    direct = np.zeros(m, bool)
    hits = np.concatenate([s.box_high[:, axis] for s in summaries]) == last if m else []
    np.logical_or.at(direct, part, hits)
    direct = direct[np.argsort(first, kind="stable")]
    sizes, via_cbd, total = table.voxels, connected & ~direct, int(table.voxels.sum())

    def share(mask: np.ndarray) -> float:  # AM voxels of a class / all AM voxels
        return float(sizes[mask].sum() / total) if total else float("nan")

    return Connectivity(
        depth_axis=axis, collector_index=int(last), am_voxels=total, particles=int(sizes.size),
        direct_fraction=share(direct), via_cbd_fraction=share(via_cbd),
        connected_fraction=share(connected), isolated_fraction=share(~connected),
        direct_particles=int(direct.sum()), via_cbd_particles=int(via_cbd.sum()),
        isolated_particles=int((~connected).sum()))


def _blockwise_uncertainty(array: Any, *, sizes: tuple[float, ...], axis: int,
                           phases: tuple[str, ...], ignore_value: int,
                           label_values: Sequence[int] | None, n_blocks: Any, seed: int,
                           client: Any, scheduler_address: str | None) -> Any:
    """``summarize_uncertainty`` of the in-plane sub-blocks of ``analyze_labels``, each
    sub-block analysed in memory by one task (memory: one sub-block, not the volume)."""
    import dask

    from electroseg.analysis.uncertainty import BlockMetrics, summarize_uncertainty

    start, stop = _tile_edges(array.shape, axis, n_blocks)
    tasks = [dask.delayed(_tile_metrics, pure=True)(
        array[tuple(slice(a, b) for a, b in zip(lo, hi))], voxel_size=sizes, depth_axis=axis,
        phases=phases, ignore_value=ignore_value, label_values=label_values)
        for lo, hi in zip(start, stop)]
    rows = compute(*tasks, client=client, scheduler_address=scheduler_address)
    names = rows[0].names
    values = np.concatenate([row.values for row in rows]).reshape(len(rows), len(names))
    blocks = BlockMetrics(names, values, start, stop, axis)
    return summarize_uncertainty(blocks, seed=seed)


def _tile_edges(shape: tuple[int, ...], axis: int, n_blocks: Any) -> tuple[np.ndarray, ...]:
    """Sub-block starts and stops (n, ndim) as ``analyze_labels`` lays them: edges at
    ``round(linspace(0, length, n + 1))`` along every in-plane axis, depth kept whole."""
    in_plane = [a for a in range(len(shape)) if a != axis]
    if n_blocks is None:  # as analyze_labels: 2 per in-plane axis, 1 where it is one voxel thick
        n_blocks = [min(2, shape[a]) for a in in_plane]
    counts = [n_blocks] * len(in_plane) if np.isscalar(n_blocks) else list(n_blocks)
    if len(counts) != len(in_plane) or not all(int(c) >= 1 for c in counts):
        raise InputError(f"n_blocks: expected a positive int or {len(in_plane)} of them (one per "
                         f"in-plane axis), got {n_blocks!r}")
    edges = [[0, n] for n in shape]
    for a, count in zip(in_plane, counts):
        if int(count) > shape[a]:
            raise InputError(f"n_blocks: expected at most {shape[a]} along axis {a} (labels "
                             f"shape {tuple(shape)}), got {count}")
        edges[a] = np.round(np.linspace(0, shape[a], int(count) + 1)).astype(int).tolist()
    index = np.stack([g.ravel() for g in np.meshgrid(
        *[np.arange(len(e) - 1) for e in edges], indexing="ij")], axis=1)
    start = np.array([[edges[a][i] for a, i in enumerate(row)] for row in index], np.int64)
    stop = np.array([[edges[a][i + 1] for a, i in enumerate(row)] for row in index], np.int64)
    return start, stop


def _tile_metrics(region: np.ndarray, *, voxel_size: tuple[float, ...], depth_axis: int,
                  phases: tuple[str, ...], ignore_value: int,
                  label_values: Sequence[int] | None) -> Any:
    from electroseg.analysis.uncertainty import subblock_metrics

    if label_values is not None:
        from electroseg.io.labels import to_phase_indices

        region = to_phase_indices(region, phases=phases, label_values=label_values,
                                  ignore_value=ignore_value)
        ignore_value = 255
    n_blocks = [1] * (region.ndim - 1)
    return subblock_metrics(region, voxel_size=voxel_size, n_blocks=n_blocks,
                            depth_axis=depth_axis, phases=phases, ignore_value=ignore_value)

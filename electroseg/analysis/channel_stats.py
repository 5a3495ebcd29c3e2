"""Per-particle statistics of a second image aligned with the labels.

Seed paper 002 plots, for every NMC fragment, the mean and spread of the Ni K-edge energy (a
state-of-charge proxy from X-ray spectro-tomography) against the fragment volume. This module
computes such tables for any image aligned voxel-for-voxel with the labels, with one sort of the
particle voxels instead of a Python loop over particles.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cc3d
import fastremap
import numpy as np

from electroseg import DEFAULT_PHASES
from electroseg.analysis._group_stats import group_statistics
from electroseg.analysis._validate import (
    check_depth_axis,
    check_labels,
    check_voxel_size,
)
from electroseg.analysis.particles import DEFAULT_EDGES_UM3, label_particles
from electroseg.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["ChannelStats", "particle_channel_stats", "plot_channel_vs_size"]

_STAT_FIELDS = ("mean", "std", "median", "p10", "p90")


@dataclass(frozen=True, eq=False)
class ChannelStats:
    """Statistics of an image over each particle; arrays have one entry per particle.

    Attributes
    ----------
    channel : str
        Name of the image (e.g. ``"ni_k_edge_ev"``).
    ndim : int
        2 or 3; for 2-D images "volume" is an area (µm²) and the diameter that of a circle.
    shape : tuple of int
        Shape of the label array.
    voxel_size : tuple of float
        µm, array order.
    depth_axis : int
    label : ndarray (n,), int64
        Particle id in the particle label image (ascending).
    voxels : ndarray (n,), int64
        Voxels in each particle.
    volume_um3 : ndarray (n,), float64
        ``voxels * prod(voxel_size)``; an area in µm² for 2-D input (tables call it ``area_um2``).
    diameter_um : ndarray (n,), float64
        Equivalent sphere diameter ``(6 V / π)^(1/3)`` (3-D) or circle diameter
        ``(4 A / π)^(1/2)`` (2-D).
    centroid : ndarray (n, ndim), float64
        Centroid in voxel index coordinates, array axis order.
    depth_um : ndarray (n,), float64
        ``centroid[:, depth_axis] * voxel_size[depth_axis]``: depth of the centroid below the
        separator-side face (plane 0 at 0 µm).
    touches_border : ndarray (n,), bool
        True if the particle has a voxel on any face of the array (its size is truncated).
    count : ndarray (n,), int64
        Voxels with a finite image value (NaN/inf voxels are left out of the statistics).
    mean, std, median, p10, p90 : ndarray (n,), float64
        Image statistics over those voxels; ``std`` is the population standard deviation
        (``ddof=0``); percentiles by linear interpolation (``numpy.percentile`` default). NaN
        where ``count == 0``.
    """

    channel: str
    ndim: int
    shape: tuple[int, ...]
    voxel_size: tuple[float, ...]
    depth_axis: int
    label: np.ndarray
    voxels: np.ndarray
    volume_um3: np.ndarray
    diameter_um: np.ndarray
    centroid: np.ndarray
    depth_um: np.ndarray
    touches_border: np.ndarray
    count: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    median: np.ndarray
    p10: np.ndarray
    p90: np.ndarray

    def __len__(self) -> int:
        return int(self.label.size)

    def as_table(self):
        """pandas DataFrame, one row per particle (CSV-ready)."""
        import pandas as pd

        size_name = "volume_um3" if self.ndim == 3 else "area_um2"
        columns = {"label": self.label, "voxels": self.voxels, size_name: self.volume_um3,
                   "diameter_um": self.diameter_um}
        for i, axis_name in enumerate("zyx"[3 - self.ndim:]):
            columns[f"centroid_{axis_name}"] = self.centroid[:, i]
        columns.update({"depth_um": self.depth_um, "touches_border": self.touches_border,
                        "count": self.count})
        columns.update({name: getattr(self, name) for name in _STAT_FIELDS})
        return pd.DataFrame(columns)

    def binned(self, *, by: str = "size", edges: Sequence[float] = DEFAULT_EDGES_UM3,
               n_regions: int = 5):
        """Particles grouped by size bin or depth region, with the spread of their means.

        Parameters
        ----------
        by : {"size", "depth"}
            Bins of ``volume_um3`` (``edges``, as in `size_histogram`; the last bin includes its
            right edge, particles outside are left out) or ``n_regions`` equal depth slabs (a
            particle with centroid index ``c`` is in slab ``floor((c + 0.5) n_regions / n_depth)``).
        edges : sequence of float
            Size bin edges in µm³ (µm² for 2-D), increasing.
        n_regions : int

        Returns
        -------
        pandas.DataFrame
            One row per bin: ``low``, ``high`` (µm³ or µm of depth), ``particles``,
            ``volume_um3`` (sum), ``mean_of_means`` and ``std_of_means`` (``ddof=1``) over the
            particles' means, ``voxel_mean`` (the mean over all their finite voxels) and
            ``mean_within_std`` (mean of the particles' ``std``) — the between- and
            within-fragment spread of seed paper 002, Fig. 5.
        """
        group, low, high = self._bins(by, edges, n_regions)
        return _binned_table(self, group, low, high)

    def _bins(self, by, edges, n_regions):
        if by == "size":
            edges = np.asarray(edges, dtype=np.float64)
            if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
                raise InputError(f"edges: expected at least two increasing bin edges, got "
                                 f"{edges.tolist()}")
            group = np.searchsorted(edges, self.volume_um3, side="right") - 1
            group[self.volume_um3 == edges[-1]] = edges.size - 2
            return group, edges[:-1], edges[1:]
        if by != "depth":
            raise InputError(f"by: expected 'size' or 'depth', got {by!r}")
        if isinstance(n_regions, bool) or not isinstance(n_regions, (int, np.integer)) \
                or n_regions < 1:
            raise InputError(f"n_regions: expected a positive integer, got {n_regions!r}")
        n_depth, size = self.shape[self.depth_axis], self.voxel_size[self.depth_axis]
        centre = self.centroid[:, self.depth_axis] + 0.5
        group = np.clip((centre * n_regions / n_depth).astype(np.int64), 0, n_regions - 1)
        region_edges = np.arange(n_regions + 1) * size * n_depth / n_regions - 0.5 * size
        return group, region_edges[:-1], region_edges[1:]

    def to_dict(self) -> dict:
        """JSON-ready dict: channel, depth_axis and the table as column lists (NaN → None)."""
        table = self.as_table()
        columns = {name: [None if isinstance(v, float) and math.isnan(v) else v
                          for v in table[name].tolist()] for name in table.columns}
        return {"channel": self.channel, "depth_axis": self.depth_axis,
                "particles": len(self), "columns": columns}


def particle_channel_stats(labels: np.ndarray | None, image: np.ndarray, *,
                           voxel_size: Sequence[float], depth_axis: int = 1,
                           phases: Sequence[str] = DEFAULT_PHASES, phase: str = "am",
                           connectivity: int = 1, particles: np.ndarray | None = None,
                           ignore_value: int = 255, channel: str = "image") -> ChannelStats:
    """Mean, spread and percentiles of ``image`` over every particle of ``phase``.

    Parameters
    ----------
    labels : ndarray, shape (Z, Y, X) or (Y, X), uint8, or None
        Phase indices. May be None when ``particles`` is given.
    image : ndarray, same shape as ``labels``
        Any real-valued map aligned with the labels (e.g. Ni K-edge energy in eV). Cast once to
        float64. NaN/inf voxels count in the particle volume but not in its statistics.
    voxel_size : sequence of float
        µm per axis, array order.
    depth_axis : int
        Axis running from separator (index 0) to current collector.
    phases : sequence of str
        Phase names in label order.
    phase : str
        Phase whose connected components are the particles (default AM).
    connectivity : int
        1 = face neighbours (default), 2 = also edges, 3 = also corners (3-D only); the cc3d
        counts 4/8 and 6/18/26 are accepted too (as in `particle_table`).
    particles : ndarray of int, same shape, optional
        Precomputed particle ids (0 = background), e.g. after a watershed split; used instead
        of labelling ``phase``. Ids need not be consecutive.
    ignore_value : int
        Label of unlabelled voxels (never part of a particle).
    channel : str
        Name of the image, carried into the result.

    Returns
    -------
    ChannelStats
        One entry per particle, in ascending particle id.

    Notes
    -----
    Particle voxels are sorted once by (particle id, value); each percentile ``q`` of a particle
    with ``n`` values sorted as ``v_0 ≤ … ≤ v_{n-1}`` is ``v_i + f (v_{i+1} − v_i)`` with
    ``i + f = q (n − 1) / 100``, the linear rule of ``numpy.percentile``. Means and standard
    deviations come from ``numpy.bincount`` sums (two passes).

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[2, 2, 0, 2]], dtype=np.uint8)
    >>> image = np.array([[1.0, 3.0, 9.0, 5.0]])
    >>> s = particle_channel_stats(labels, image, voxel_size=(1.0, 0.5), depth_axis=0)
    >>> s.mean.tolist(), s.std.tolist(), s.volume_um3.tolist()
    ([2.0, 5.0], [1.0, 0.0], [1.0, 0.5])
    """
    ids = _particle_ids(labels, image, particles, phases=phases, phase=phase,
                        connectivity=connectivity, ignore_value=ignore_value)
    axis = check_depth_axis(depth_axis, ids.ndim)
    sizes = check_voxel_size(voxel_size, ids.ndim, what="particle volumes")
    ids, label = _consecutive(ids, renumber=particles is not None)
    group, values = _particle_values(ids, image)
    if label.size == 0:
        logger.warning("%s: no particle found; the per-particle table is empty", channel)
    stats = group_statistics(group, values, label.size)
    geometry = _geometry(ids, label.size, sizes, axis)
    order = np.argsort(label, kind="stable")  # ascending original particle id
    fields = {name: value[order] for name, value in {**geometry, **stats}.items()}
    return ChannelStats(channel=str(channel), ndim=ids.ndim, shape=tuple(ids.shape),
                        voxel_size=sizes, depth_axis=axis, label=label[order], **fields)


def _particle_values(ids: np.ndarray, image) -> tuple[np.ndarray, np.ndarray]:
    """Group ``id - 1`` (int64) and image value (float64) of every particle voxel, raster order."""
    where = np.flatnonzero(ids.reshape(-1))
    group = ids.reshape(-1)[where].astype(np.int64)
    group -= 1
    return group, np.asarray(image).reshape(-1)[where].astype(np.float64)


def _binned_table(stats: ChannelStats, group: np.ndarray, low: np.ndarray, high: np.ndarray):
    """Per-bin summary of the particle statistics (see `ChannelStats.binned`)."""
    import pandas as pd

    n = low.size
    keep = (group >= 0) & (group < n)
    g = group[keep]
    defined = keep & (stats.count > 0)
    gd, means = group[defined], stats.mean[defined]
    particles = np.bincount(gd, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_of_means = np.bincount(gd, means, minlength=n) / particles
        squares = np.bincount(gd, (means - mean_of_means[gd]) ** 2, minlength=n)
        std_of_means = np.where(particles > 1, np.sqrt(squares / (particles - 1)), np.nan)
        voxel_mean = (np.bincount(gd, means * stats.count[defined], minlength=n)
                      / np.bincount(gd, stats.count[defined], minlength=n))
        within = np.bincount(gd, stats.std[defined], minlength=n) / particles
    return pd.DataFrame({"low": low, "high": high, "particles": np.bincount(g, minlength=n),
                         "volume_um3": np.bincount(g, stats.volume_um3[keep], minlength=n),
                         "mean_of_means": mean_of_means, "std_of_means": std_of_means,
                         "voxel_mean": voxel_mean, "mean_within_std": within})


def _consecutive(ids: np.ndarray, *, renumber: bool) -> tuple[np.ndarray, np.ndarray]:
    """Ids renumbered 1..n (0 kept as background) and the original id of each, shape (n,)."""
    if not renumber:  # cc3d output is already numbered 1..n
        return ids, np.arange(1, int(ids.max(initial=0)) + 1, dtype=np.int64)
    renumbered, mapping = fastremap.renumber(ids, in_place=False, preserve_zero=True)
    original = np.zeros(max(mapping.values(), default=0) + 1, dtype=np.int64)
    for old, new in mapping.items():
        original[new] = old
    return renumbered, original[1:]


def _particle_ids(labels, image, particles, *, phases, phase, connectivity,
                  ignore_value) -> np.ndarray:
    """Validate the inputs and return the particle id image (0 = background)."""
    if not hasattr(image, "shape") or not hasattr(image, "dtype"):
        raise TypeError(f"image: expected a numpy array, got {type(image).__name__}")
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)
            or image.dtype == bool):
        raise InputError(f"image: expected a real-valued (integer or float) array, got dtype "
                         f"{image.dtype}")
    if labels is None and particles is None:
        raise InputError("labels: expected a label array (or particles=...), got None")
    if labels is not None:
        labels = check_labels(labels, phases=phases, ignore_value=ignore_value)
        _check_same_shape(image, labels.shape, "image")
    if particles is not None:
        return _check_particles(particles, image.shape)
    return label_particles(labels, phase=phase, phases=phases, connectivity=connectivity,
                           ignore_value=ignore_value)


def _check_same_shape(array: np.ndarray, shape: tuple[int, ...], name: str) -> None:
    if tuple(array.shape) != tuple(shape):
        raise InputError(f"{name}: expected the same shape as labels {tuple(shape)}, "
                         f"got shape {tuple(array.shape)}")


def _check_particles(particles: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    particles = np.asarray(particles)
    if particles.ndim not in (2, 3):
        raise InputError(f"particles: expected a 2-D or 3-D particle id array, got shape "
                         f"{particles.shape}")
    _check_same_shape(particles, shape, "particles")
    if not np.issubdtype(particles.dtype, np.integer):
        raise InputError(f"particles: expected integer particle ids, got dtype {particles.dtype}")
    if particles.size and particles.min() < 0:
        raise InputError(f"particles: expected ids >= 0 (0 = background), got minimum "
                         f"{particles.min()}")
    return particles


def _geometry(ids: np.ndarray, n: int, sizes, axis: int) -> dict[str, np.ndarray]:
    """voxels, volume_um3, diameter_um, centroid, depth_um, touches_border of ids 1..n."""
    found = cc3d.statistics(ids) if n else {"voxel_counts": np.zeros(1, np.int64),
                                             "centroids": np.zeros((1, ids.ndim)),
                                             "bounding_boxes": [()]}
    voxels = np.asarray(found["voxel_counts"][1:n + 1], dtype=np.int64)
    centroid = np.asarray(found["centroids"][1:n + 1], dtype=np.float64).reshape(n, ids.ndim)
    touches = np.array([any(box.start == 0 or box.stop == length
                            for box, length in zip(boxes, ids.shape))
                        for boxes in found["bounding_boxes"][1:n + 1]], dtype=bool)
    volume = voxels * float(np.prod(sizes))
    if ids.ndim == 3:
        diameter = np.cbrt(6.0 * volume / np.pi)
    else:
        diameter = np.sqrt(4.0 * volume / np.pi)
    return {"voxels": voxels, "volume_um3": volume, "diameter_um": diameter, "centroid": centroid,
            "depth_um": centroid[:, axis] * sizes[axis], "touches_border": touches}


def plot_channel_vs_size(stats: ChannelStats, path: str | Path, *, ylabel: str | None = None,
                         log_size: bool = True, dpi: int = 150) -> Path:
    """Scatter plot of each particle's mean image value against its size (PNG, atomic write).

    Parameters
    ----------
    stats : ChannelStats
    path : str or Path
        Output image; the format follows the suffix (``.png``, ``.pdf``, ``.svg``).
    ylabel : str, optional
        Y-axis label; default ``"<channel> (mean ± std)"``.
    log_size : bool
        Logarithmic size axis (default, as fragment volumes span decades).
    dpi : int

    Returns
    -------
    Path
        The written file.

    Notes
    -----
    One point per particle at (``volume_um3``, ``mean``) with a vertical bar of ± ``std``,
    coloured by ``depth_um`` — the layout of the fragment state-of-charge plot of seed paper 002
    (Fig. 5c). Particles touching the array border are drawn hollow: their size is truncated.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from electroseg.io import atomic_output

    if not isinstance(stats, ChannelStats):
        raise InputError(f"stats: expected a ChannelStats, got {type(stats).__name__}")
    figure = Figure(figsize=(5.0, 3.8))
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.errorbar(stats.volume_um3, stats.mean, yerr=stats.std, fmt="none", ecolor="0.7",
                elinewidth=0.8, zorder=1)
    inner, border = ~stats.touches_border, stats.touches_border
    points = ax.scatter(stats.volume_um3[inner], stats.mean[inner], c=stats.depth_um[inner],
                        s=14, cmap="viridis", zorder=2)
    ax.scatter(stats.volume_um3[border], stats.mean[border], s=14, facecolors="none",
               edgecolors="0.4", zorder=2, label="touches border")
    if log_size and np.any(stats.volume_um3 > 0):
        ax.set_xscale("log")
    ax.set_xlabel("particle volume (µm³)" if stats.ndim == 3 else "particle area (µm²)")
    ax.set_ylabel(ylabel or f"{stats.channel} (mean ± std)")
    figure.colorbar(points, ax=ax, label="centroid depth (µm)")
    if border.any():
        ax.legend(loc="best", fontsize="small")
    figure.tight_layout()
    with atomic_output(path) as tmp:
        figure.savefig(tmp, dpi=dpi)
    return Path(path)

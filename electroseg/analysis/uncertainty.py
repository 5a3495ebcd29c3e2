"""Sampling uncertainty of metrics from sub-blocks tiled across the in-plane axes.

One FIB-SEM volume covers a few tens of micrometres; seed paper 000 reports how much volume
fractions and PBA vary between sub-volumes of one electrode. Here each metric is recomputed on
blocks tiled across the in-plane axes (the depth axis is kept whole, so every block spans
separator to collector), and summarised by its mean, standard deviation and a percentile
bootstrap interval of the mean.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from electroseg import DEFAULT_PHASES
from electroseg.analysis._bootstrap import (
    bootstrap_means,
    bootstrap_ratio,
    check_bootstrap,
    column_summary,
    nan_to_none,
    none_if_nan,
    percentile_interval,
    pooled_ratio,
    resample_index,
)
from electroseg.analysis._validate import check_depth_axis, check_labels, check_voxel_size
from electroseg.analysis.connectivity import electronic_connectivity
from electroseg.analysis.contacts import pba_profile
from electroseg.analysis.fractions import volume_fractions
from electroseg.analysis.particles import particle_table, volume_weighted_median
from electroseg.analysis.surfaces import interface_areas
from electroseg.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["BlockMetrics", "Uncertainty", "subblock_metrics", "summarize_uncertainty",
           "block_values", "bootstrap_means", "bootstrap_ratio"]


@dataclass(frozen=True, eq=False)
class BlockMetrics:
    """Scalar metrics of every sub-block.

    Attributes
    ----------
    names : tuple of str
        Metric (column) names.
    values : ndarray, shape (n_blocks, n_metrics), float64
        NaN where a metric is undefined in a block (e.g. PBA of a block without AM).
    start, stop : ndarray, shape (n_blocks, ndim), int64
        Block ``b`` is ``labels[tuple(slice(start[b, i], stop[b, i]) for i in range(ndim))]``.
    depth_axis : int
    """

    names: tuple[str, ...]
    values: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    depth_axis: int

    @property
    def n_blocks(self) -> int:
        return int(self.values.shape[0])

    def column(self, name: str) -> np.ndarray:
        """Values of one metric over the blocks, shape (n_blocks,)."""
        if name not in self.names:
            raise InputError(f"metric: expected one of {list(self.names)}, got {name!r}")
        return self.values[:, self.names.index(name)]

    def as_table(self):
        """pandas DataFrame: one row per block, ``start_<axis>``/``stop_<axis>`` then metrics."""
        import pandas as pd

        columns: dict[str, np.ndarray] = {"block": np.arange(self.n_blocks)}
        for i in range(self.start.shape[1]):
            columns[f"start_{i}"], columns[f"stop_{i}"] = self.start[:, i], self.stop[:, i]
        columns.update({name: self.values[:, j] for j, name in enumerate(self.names)})
        return pd.DataFrame(columns)

    def to_dict(self) -> dict:
        """JSON-ready: depth_axis, start, stop and the per-block values of each metric."""
        return {"depth_axis": self.depth_axis, "start": self.start.tolist(),
                "stop": self.stop.tolist(),
                "values": {name: nan_to_none(self.values[:, j])
                           for j, name in enumerate(self.names)}}

    @classmethod
    def from_dict(cls, data: Mapping) -> BlockMetrics:
        """Inverse of :meth:`to_dict` (e.g. the ``uncertainty.blocks`` entry of metrics.json)."""
        try:
            names = tuple(data["values"])
            values = np.array([[np.nan if v is None else v for v in data["values"][n]]
                               for n in names], dtype=np.float64).T.reshape(-1, len(names))
            start = np.asarray(data["start"], dtype=np.int64)
            stop = np.asarray(data["stop"], dtype=np.int64)
            return cls(names, values, start, stop, int(data["depth_axis"]))
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"blocks: expected a dict with depth_axis, start, stop and values "
                             f"(as written by BlockMetrics.to_dict), got {err!r}") from None


@dataclass(frozen=True, eq=False)
class Uncertainty:
    """Per-metric mean, standard deviation and bootstrap interval over sub-blocks.

    Attributes
    ----------
    names : tuple of str
    n : ndarray (n_metrics,), int64
        Blocks where the metric is defined.
    mean, std, ci_low, ci_high : ndarray (n_metrics,), float64
        Mean over blocks, sample standard deviation (``ddof=1``; NaN when ``n < 2``) and the
        percentile bootstrap interval of the mean at level ``confidence``.
    pba_pooled : ndarray (3,), float64 or None
        ``(ΣC/ΣS, ci_low, ci_high)`` from the per-block PBA counts (``pba_contacts``,
        ``pba_surface``) resampled together; None when those columns are absent.
    particle_weighted_median : ndarray (3,), float64 or None
        ``(D50, ci_low, ci_high)``: the volume-weighted median diameter (µm) of the particles
        whose centroid lies in a block, and its interval from the same resamples (the drawn
        blocks' particles pooled); None without a particle table.
    confidence : float
    n_boot : int
    seed : int
    blocks : BlockMetrics
        The per-block values summarised (kept for two-sample comparisons).
    """

    names: tuple[str, ...]
    n: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    pba_pooled: np.ndarray | None
    confidence: float
    n_boot: int
    seed: int
    blocks: BlockMetrics
    particle_weighted_median: np.ndarray | None = None

    def as_table(self):
        """pandas DataFrame, one row per metric: metric, n, mean, std, ci_low, ci_high."""
        import pandas as pd

        return pd.DataFrame({"metric": list(self.names), "n": self.n, "mean": self.mean,
                             "std": self.std, "ci_low": self.ci_low, "ci_high": self.ci_high})

    def to_dict(self) -> dict:
        """The ``uncertainty`` entry of metrics.json (NaN → None)."""
        metrics = {name: {"n": int(self.n[j]), "mean": none_if_nan(self.mean[j]),
                          "std": none_if_nan(self.std[j]), "ci_low": none_if_nan(self.ci_low[j]),
                          "ci_high": none_if_nan(self.ci_high[j])}
                   for j, name in enumerate(self.names)}
        pooled = None if self.pba_pooled is None else dict(
            zip(("estimate", "ci_low", "ci_high"), nan_to_none(self.pba_pooled)))
        weighted = None if self.particle_weighted_median is None else dict(
            zip(("estimate", "ci_low", "ci_high"), nan_to_none(self.particle_weighted_median)))
        return {"method": "percentile bootstrap of the mean over in-plane sub-blocks",
                "n_blocks": self.blocks.n_blocks, "confidence": self.confidence,
                "n_boot": self.n_boot, "seed": self.seed, "metrics": metrics,
                "pba_pooled_from_counts": pooled,
                "particle_volume_weighted_median_from_particles": weighted,
                "blocks": self.blocks.to_dict()}


def subblock_metrics(labels: np.ndarray, *, voxel_size: Sequence[float],
                     n_blocks: int | Sequence[int] | None = None,
                     block_size: int | Sequence[int] | None = None, depth_axis: int = 1,
                     phases: Sequence[str] = DEFAULT_PHASES, ignore_value: int = 255,
                     metrics: Sequence[str] | Mapping[str, Callable] | None = None,
                     particles: Any = None) -> BlockMetrics:
    """Recompute scalar metrics on blocks tiled across the in-plane axes.

    Parameters
    ----------
    labels : ndarray, shape (Z, Y, X) or (Y, X), uint8
    voxel_size : sequence of float
        µm per axis, array order.
    n_blocks : int or sequence of int, optional
        Blocks per in-plane axis (one value per axis other than ``depth_axis``, in array order,
        or one int for all). Block edges at ``round(linspace(0, length, n + 1))``. Default 2.
    block_size : int or sequence of int, optional
        Block length in voxels per in-plane axis instead of ``n_blocks``; the remainder at the
        far end of each axis is left out.
    depth_axis : int
        Kept whole: every block spans all depths.
    phases : sequence of str
    ignore_value : int
    metrics : sequence of str or mapping of str to callable, optional
        Names from ``METRICS`` ("volume_fraction", "pba", "particles", "surface",
        "connectivity"; default all but "connectivity"), or ``{name: function}`` where
        ``function(block, *, voxel_size, depth_axis, phases, ignore_value)`` returns a float
        (column ``name``) or a mapping ``{column: float}``.
    particles : ParticleTable, optional
        The particles of the whole volume (e.g. ``split="merged"``). Then the "particles" metric
        of a block is the mean size of the particles whose centroid lies in it: each particle
        counted once, whole, as the headline metric counts it. Without it, the "am" clusters of
        the block itself (cut by its edges).

    Returns
    -------
    BlockMetrics

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((4, 3, 4), dtype=np.uint8); labels[:, :, :2] = 2
    >>> b = subblock_metrics(labels, voxel_size=(1, 1, 1), n_blocks=(2, 2),
    ...                      metrics=["volume_fraction"])
    >>> b.n_blocks, b.column("volume_fraction_am").tolist()
    (4, [1.0, 0.0, 1.0, 0.0])
    """
    labels = check_labels(labels, phases=phases, ignore_value=ignore_value)
    axis = check_depth_axis(depth_axis, labels.ndim)
    sizes = check_voxel_size(voxel_size, labels.ndim, what="sub-block metrics")
    functions = _metric_functions(metrics)
    start, stop = _tiles(labels.shape, axis, n_blocks, block_size)
    rows = []
    for lo, hi in zip(start, stop):
        block = labels[tuple(slice(a, b) for a, b in zip(lo, hi))]
        chosen = functions
        if particles is not None and "particles" in functions and "am" in phases:
            chosen = {**functions, "particles": partial(_particles_by_centroid, table=particles, lo=lo, hi=hi)}
        rows.append(evaluate_metrics(block, chosen, voxel_size=sizes, depth_axis=axis,
                                     phases=tuple(phases), ignore_value=ignore_value))
    names = tuple(rows[0])
    if not names:
        raise InputError(f"metrics: none of {list(functions)} applies to phases {list(phases)} "
                         f"(pba, particles and connectivity need phases named 'am' and 'cbd')")
    if any(tuple(row) != names for row in rows):
        raise InputError(f"metrics: every block must give the same columns, got "
                         f"{sorted({tuple(row) for row in rows})}")
    values = np.array([[row[n] for n in names] for row in rows], dtype=np.float64)
    logger.info("sub-block metrics: %d blocks x %d metrics", len(rows), len(names))
    return BlockMetrics(names, values.reshape(len(rows), len(names)), start, stop, axis)


def _metric_functions(metrics) -> dict[str, Callable]:
    if metrics is None:
        return {name: METRICS[name] for name in DEFAULT_METRICS}
    if isinstance(metrics, Mapping):
        bad = [k for k, f in metrics.items() if not callable(f)]
        if bad:
            raise InputError(f"metrics: expected callables, got non-callable values for {bad}")
        return dict(metrics)
    if isinstance(metrics, str):
        metrics = [metrics]
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise InputError(f"metrics: expected names from {list(METRICS)}, got {list(metrics)}")
    return {m: METRICS[m] for m in metrics}


def _tiles(shape, axis, n_blocks, block_size) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop indices of every block, shape (n_blocks, ndim) each."""
    in_plane = [a for a in range(len(shape)) if a != axis]
    if n_blocks is not None and block_size is not None:
        raise InputError(f"n_blocks, block_size: expected one of them, got both "
                         f"({n_blocks!r}, {block_size!r})")
    use_size = block_size is not None
    counts = _per_axis(block_size if use_size else (2 if n_blocks is None else n_blocks),
                       len(in_plane), "block_size" if use_size else "n_blocks")
    edges = [[0, shape[a]] for a in range(len(shape))]
    for a, value in zip(in_plane, counts):
        if value > shape[a]:
            raise InputError(f"{'block_size' if use_size else 'n_blocks'}: expected at most "
                             f"{shape[a]} along axis {a} (labels shape {tuple(shape)}), "
                             f"got {value}")
        if use_size:
            edges[a] = list(range(0, shape[a] - value + 1, value))
            edges[a].append(edges[a][-1] + value)
        else:
            edges[a] = np.round(np.linspace(0, shape[a], value + 1)).astype(int).tolist()
    grids = np.meshgrid(*[np.arange(len(e) - 1) for e in edges], indexing="ij")
    index = np.stack([g.ravel() for g in grids], axis=1)
    start = np.array([[edges[a][i] for a, i in enumerate(row)] for row in index], np.int64)
    stop = np.array([[edges[a][i + 1] for a, i in enumerate(row)] for row in index], np.int64)
    return start, stop


def _per_axis(value, n_axes: int, name: str) -> tuple[int, ...]:
    values = (value,) * n_axes if np.isscalar(value) else tuple(value)
    def positive(v) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1

    if len(values) != n_axes or not all(positive(v) for v in values):
        raise InputError(f"{name}: expected a positive integer or {n_axes} positive integers "
                         f"(one per in-plane axis), got {value!r}")
    return tuple(int(v) for v in values)


def summarize_uncertainty(table, *, n_boot: int = 2000, seed: int = 0,
                          confidence: float = 0.95, particles: Any = None) -> Uncertainty:
    """Mean, standard deviation and bootstrap interval of every metric over the blocks.

    Parameters
    ----------
    table : BlockMetrics, pandas DataFrame or dict
        Per-block values: the result of `subblock_metrics`, its ``as_table()`` (or any frame
        with one numeric column per metric, one row per block) or its ``to_dict()``.
    n_boot : int
        Bootstrap resamples.
    seed : int
        Seed of ``numpy.random.default_rng``: the same seed gives the same interval.
    confidence : float
        Level of the interval, in (0, 1).
    particles : ParticleTable, optional
        The whole volume's particles (``table`` must hold the blocks' start and stop). Each is
        put in the block holding its centroid, and the volume-weighted median diameter of the
        pooled particles gets its interval from the same resampled blocks
        (``Uncertainty.particle_weighted_median``).

    Returns
    -------
    Uncertainty

    Notes
    -----
    Blocks are resampled with replacement ``n_boot`` times (the same resampled blocks for
    every metric); the interval is the ``(1 ± confidence) / 2`` percentiles of the resampled
    means (percentile bootstrap; Efron & Tibshirani 1993, ch. 13). Blocks where a metric is NaN
    are left out of that metric. With PBA counts present, the pooled PBA ``ΣC / ΣS`` over
    blocks gets its interval from the same resamples (a ratio of sums, not a mean of ratios).
    With a handful of blocks the interval is narrow-biased: report the block count with it.

    Examples
    --------
    Four blocks, each holding one particle of diameter 1, 1, 1 and 2 µm (cubes 1, 1, 1, 8):
    the pooled D50 by volume is 2 µm; a resample without the large particle gives 1 µm.

    >>> from types import SimpleNamespace
    >>> start = np.array([[0, 0], [0, 2], [2, 0], [2, 2]]); stop = start + 2
    >>> blocks = BlockMetrics(("x",), np.zeros((4, 1)), start, stop, 1)
    >>> table = SimpleNamespace(count=4, diameter_um=np.array([1.0, 1.0, 1.0, 2.0]),
    ...                         centroid_voxel=start + 0.5)
    >>> summarize_uncertainty(blocks, particles=table).particle_weighted_median.tolist()
    [2.0, 1.0, 2.0]
    """
    blocks = block_values(table, name="table")
    check_bootstrap(n_boot, seed, confidence)
    values = blocks.values
    n, mean, std = column_summary(values)
    rng = np.random.default_rng(seed)
    index = resample_index(rng, blocks.n_blocks, n_boot)
    low, high = percentile_interval(bootstrap_means(values, index), confidence)
    pooled = None
    if {"pba_contacts", "pba_surface"} <= set(blocks.names):
        estimate, boot = pooled_ratio(blocks.column("pba_contacts"),
                                      blocks.column("pba_surface"), index)
        pooled = np.array([estimate, *percentile_interval(boot, confidence)], dtype=np.float64)
    weighted = None
    if particles is not None and particles.count:
        weighted = _pooled_weighted_median(particles, blocks, index, confidence)
    return Uncertainty(blocks.names, n.astype(np.int64), mean, std, low, high, pooled,
                       float(confidence), int(n_boot), int(seed), blocks, weighted)


def _pooled_weighted_median(particles: Any, blocks: BlockMetrics, index: np.ndarray,
                            confidence: float) -> np.ndarray:
    """``(D50, ci_low, ci_high)`` of the volume-weighted median diameter, particles put in the
    block holding their centroid (as ``_particles_by_centroid``), the blocks of every resample
    pooled with their multiplicity. NaN where no particle lies in a block."""
    centre = np.asarray(particles.centroid_voxel, np.float64)
    inside = _centroid_in(centre[:, None, :], blocks.start[None], blocks.stop[None])   # (particles, blocks)
    found = inside.any(axis=1)
    if not found.any():
        return np.full(3, np.nan)
    block = inside[found].argmax(axis=1)
    d = np.asarray(particles.diameter_um, np.float64)[found]
    order = np.argsort(d, kind="stable")
    d, block = d[order], block[order]
    # cumulative d³ per block at every particle in increasing diameter: (blocks, particles)
    cubes = np.zeros((blocks.n_blocks, d.size))
    cubes[block, np.arange(d.size)] = d ** 3
    cumulative = np.cumsum(cubes, axis=1)
    estimate = volume_weighted_median(d)
    n_boot, n_blocks = index.shape
    multiplicity = np.zeros((n_boot, n_blocks))
    np.add.at(multiplicity, (np.repeat(np.arange(n_boot), n_blocks), index.ravel()), 1.0)
    boot = np.full(n_boot, np.nan)
    step = max(1, 4_000_000 // d.size)   # resamples per chunk: (step, particles) float64 at most 32 MB
    for r in range(0, n_boot, step):
        f = multiplicity[r:r + step] @ cumulative                                # (step, particles)
        total = f[:, -1]
        at = np.argmax(f >= 0.5 * total[:, None], axis=1)
        boot[r:r + step] = np.where(total > 0, d[at], np.nan)
    return np.array([estimate, *percentile_interval(boot, confidence)], dtype=np.float64)


def block_values(data, *, name: str = "table") -> BlockMetrics:
    """Per-block values from a BlockMetrics, Uncertainty, pandas DataFrame or ``to_dict()``."""
    if isinstance(data, BlockMetrics):
        return data
    if isinstance(data, Uncertainty):
        return data.blocks
    if isinstance(data, Mapping):
        return BlockMetrics.from_dict(data.get("blocks", data))
    if hasattr(data, "columns") and hasattr(data, "to_numpy"):
        return _from_frame(data, name)
    raise InputError(f"{name}: expected BlockMetrics, Uncertainty, a pandas DataFrame or a dict "
                     f"of per-block values, got {type(data).__name__}")


def _from_frame(frame, name: str) -> BlockMetrics:
    position = [c for c in frame.columns if c == "block" or str(c).startswith(("start_", "stop_"))]
    names = tuple(str(c) for c in frame.columns if c not in position)
    if len(frame) == 0 or not names:
        raise InputError(f"{name}: expected at least one block row and one metric column, got "
                         f"{len(frame)} rows and columns {list(frame.columns)}")
    try:
        values = frame[list(names)].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected numeric metric columns, got dtypes "
                         f"{frame[list(names)].dtypes.astype(str).to_dict()}") from None
    starts = sorted(c for c in position if str(c).startswith("start_"))
    stops = sorted(c for c in position if str(c).startswith("stop_"))
    empty = np.zeros((len(frame), 0), dtype=np.int64)
    start = frame[starts].to_numpy(np.int64) if starts else empty
    stop = frame[stops].to_numpy(np.int64) if stops else empty
    return BlockMetrics(names, values, start, stop, depth_axis=-1)


def _volume_fraction(block, *, phases, ignore_value, **_) -> dict:
    fractions = volume_fractions(block, phases=phases, ignore_value=ignore_value).fractions
    return {f"volume_fraction_{p}": fractions[p] for p in phases}


def _pba(block, *, depth_axis, phases, ignore_value, **_) -> dict:
    if not {"am", "cbd"} <= set(phases):
        return {}
    profile = pba_profile(block, depth_axis=depth_axis, phases=phases, ignore_value=ignore_value)
    return {"pba_pooled": profile.pooled, "pba_depth_mean": profile.depth_mean,
            "pba_contacts": int(profile.contacts.sum()), "pba_surface": int(profile.surface.sum())}


def _particles(block, *, voxel_size, depth_axis, phases, ignore_value, **_) -> dict:
    if "am" not in phases:
        return {}
    table = particle_table(block, voxel_size=voxel_size, depth_axis=depth_axis, phases=phases,
                           ignore_value=ignore_value)
    return {f"particle_{table.size_name}_mean": table.to_dict()[table.size_name]["mean"]}


def _particles_by_centroid(block, *, table, lo, hi, **_) -> dict:
    """Mean size of the whole-volume particles whose centroid lies in [lo, hi) (NaN if none)."""
    centre = np.asarray(table.centroid_voxel, np.float64)
    inside = _centroid_in(centre, np.asarray(lo), np.asarray(hi)) if centre.size else np.zeros(0, bool)
    sizes = np.asarray(table.size)[inside]
    return {f"particle_{table.size_name}_mean": float(sizes.mean()) if sizes.size else None}


def _centroid_in(centre: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Whether each centroid (voxel centres at integer indices) lies in the block [lo, hi):
    a voxel ``i`` spans ``[i - 0.5, i + 0.5)``. Broadcasts over leading axes (the last is the
    axis of coordinates)."""
    return np.all((centre >= lo - 0.5) & (centre < hi - 0.5), axis=-1)


def _surface(block, *, voxel_size, phases, ignore_value, **_) -> dict:
    per_um = interface_areas(block, voxel_size=voxel_size, phases=phases,
                             ignore_value=ignore_value).per_um
    return {f"surface_{pair}_per_um": value for pair, value in per_um.items()}


def _connectivity(block, *, depth_axis, phases, ignore_value, **_) -> dict:
    if not {"am", "cbd"} <= set(phases):
        return {}
    result = electronic_connectivity(block, depth_axis=depth_axis, phases=phases,
                                     ignore_value=ignore_value)
    return {"am_connected_fraction": result.connected_fraction,
            "am_isolated_fraction": result.isolated_fraction}


METRICS: dict[str, Callable] = {"volume_fraction": _volume_fraction, "pba": _pba,
                                "particles": _particles, "surface": _surface,
                                "connectivity": _connectivity}
"""Named block metrics; "pba", "particles" and "connectivity" need phases named am and cbd.
Particles (unless `subblock_metrics` is given the whole volume's) and connectivity are those of
the block: particles cut by block edges count in part."""

DEFAULT_METRICS: tuple[str, ...] = ("volume_fraction", "pba", "particles", "surface")


def evaluate_metrics(block: np.ndarray, functions: Mapping[str, Callable], **options) -> dict:
    """Run every metric function on one block; returns ``{column: float}`` (None → NaN)."""
    row: dict[str, float] = {}
    for name, function in functions.items():
        value = function(block, **options)
        items = value.items() if isinstance(value, Mapping) else [(name, value)]
        for column, number in items:
            if number is not None and not isinstance(number, (int, float, np.number)):
                raise InputError(f"metrics[{name!r}]: expected a number or a mapping of "
                                 f"numbers, got {type(number).__name__} for {column!r}")
            row[column] = np.nan if number is None else float(number)
    return row

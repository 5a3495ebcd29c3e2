"""One call for every metric of a label volume, and the files that report them.

``analyze_labels`` computes volume fractions, PBA, particles, interface areas (and, when their
modules are present, electronic connectivity, per-particle channel statistics and sub-block
uncertainty) sharing one pass of face-pair counting; ``write_analysis`` writes metrics.json in
the docs/reference-metrics.md schema, CSV tables and figures.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastremap
import numpy as np

from electroseg import DEFAULT_PHASES
from electroseg.analysis._bootstrap import none_if_nan
from electroseg.analysis._validate import (
    check_depth_axis,
    check_labels,
    check_voxel_size,
    phase_index,
)
from electroseg.analysis.contacts import PBAProfile, face_pair_counts, pba_from_pairs, pba_profile
from electroseg.analysis.fractions import VolumeFractionProfile, VolumeFractions
from electroseg.analysis.particles import (
    DEFAULT_CRACK_MERGE,
    DEFAULT_EDGES_UM3,
    DEFAULT_MERGE,
    ParticleTable,
    SizeHistogram,
    check_split,
    connectivity_rank,
    find_particles,
    fragment_table,
    label_particles,
    particle_table,
    size_histogram,
    volume_weighted_median,
)
from electroseg.analysis.surfaces import InterfaceAreas, interface_areas, interface_areas_from_pairs
from electroseg.analysis.tortuosity import check_tortuosity_phases
from electroseg.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["AnalysisResult", "analyze_labels", "write_analysis"]


@dataclass(frozen=True, eq=False)
class AnalysisResult:
    """Every metric of one label volume.

    Attributes
    ----------
    phases : tuple of str
    voxel_size : tuple of float
        µm, array order.
    depth_axis : int
    shape : tuple of int
    fractions : VolumeFractions
    profile : VolumeFractionProfile
        Fractions per depth plane.
    pba : PBAProfile or None
        None when the phases have no "am" or no "cbd".
    particles : dict of str to ParticleTable
        Per measured phase (always "am" when present in ``phases``).
    histograms : dict of str to SizeHistogram
    surface : InterfaceAreas
    connectivity, channel_stats, uncertainty : object or None
        Results of the optional analysis modules, None when not computed.
    clusters : dict or None
        Connected clusters of "am" (face or full connectivity as the particles):
        ``{"count": n, "largest_fraction": f}``, the share of AM in the largest cluster.
    fragments : ParticleTable or None
        The connected pieces of every "am" particle (cracked particles have several), None
        when the particles are the clusters (``split="none"``).
    fragment_histogram : SizeHistogram or None
        Their size distribution, overall and per depth region.
    """

    phases: tuple[str, ...]
    voxel_size: tuple[float, ...]
    depth_axis: int
    shape: tuple[int, ...]
    fractions: VolumeFractions
    profile: VolumeFractionProfile
    pba: PBAProfile | None
    particles: dict[str, ParticleTable]
    histograms: dict[str, SizeHistogram]
    surface: InterfaceAreas
    connectivity: Any = None
    channel_stats: Any = None
    uncertainty: Any = None
    absent: tuple[str, ...] = field(default=())
    clusters: dict | None = None
    fragments: ParticleTable | None = None
    fragment_histogram: SizeHistogram | None = None
    tortuosity: dict | None = None
    representative_volume: dict | None = None
    segmentation_check: dict | None = None

    def to_dict(self) -> dict:
        """metrics.json content, exactly the docs/reference-metrics.md schema (null for undefined values), plus
        ``tortuosity`` {phase: TauFactor result} when it was asked for."""
        metrics = {"phases": list(self.phases), "voxel_size_um": list(self.voxel_size),
                   "depth_axis": self.depth_axis, "shape": list(self.shape),
                   "volume_fraction": dict(self.fractions.fractions),
                   "pba": self.pba.to_dict() if self.pba is not None else None,
                   "particles": self._particles_dict("am"),
                   "surface": self._surface_dict(),
                   "uncertainty": (self.uncertainty.to_dict()
                                   if self.uncertainty is not None else None)}
        if self.segmentation_check is not None:
            check = dict(self.segmentation_check)
            entries = {"segmentation": check.pop("segmentation", None), "total": check.pop("total", None),
                       "segmentation_check": check}
            metrics["uncertainty"] = {**(metrics["uncertainty"] or {}), **entries}
        if self.tortuosity is not None:
            metrics["tortuosity"] = self.tortuosity
        if self.representative_volume is not None:
            metrics["representative_volume"] = self.representative_volume
        return metrics

    def _particles_dict(self, phase: str) -> dict | None:
        if phase not in self.particles:
            return None
        table = self.particles[phase]
        summary = table.to_dict()
        summary["split"] = table.split
        summary["counted"] = _COUNTED[table.split]
        clusters = self.clusters
        if clusters is None and table.split == "none":  # the particles are the clusters
            total = float(table.voxels.sum())
            clusters = {"count": table.count, "largest_fraction":
                        float(table.voxels.max()) / total if table.count else None}
        summary["clusters"] = None if clusters is None else clusters["count"]
        summary["largest_cluster_fraction"] = None if clusters is None else \
            clusters["largest_fraction"]
        summary["diameter_um"] = _diameters(table)
        summary["histogram"] = self.histograms[phase].to_dict()
        if phase == "am":
            summary["fragments"] = self._fragments_dict()
        return summary

    def _fragments_dict(self) -> dict | None:
        if self.fragments is None:
            return None
        table = self.fragments
        hist = self.fragment_histogram
        parents = np.asarray(table.parent if table.parent is not None else [], np.int64)
        counts = np.bincount(parents) if parents.size else np.zeros(0, np.int64)
        return {"count": table.count, "cracked_particles": int((counts >= 2).sum()),
                table.size_name: table.to_dict()[table.size_name],
                "histogram": hist.to_dict(),
                "region_edges_um": hist.region_edges_um.tolist(),
                "region_number_fraction": [_none_list(r) for r in hist.region_number_fraction],
                "region_volume_fraction": [_none_list(r) for r in hist.region_volume_fraction],
                "region_count": _region_counts(table, hist)}

    def _surface_dict(self) -> dict:
        surface = self.surface.to_dict()
        for key in list(surface):
            if key != "unit" and set(key.split("-")) & set(self.absent):
                surface[key] = None
        return surface


def analyze_labels(labels: np.ndarray, *, voxel_size: Sequence[float] | None,
                   depth_axis: int = 1, phases: Sequence[str] = DEFAULT_PHASES,
                   ignore_value: int = 255, image: np.ndarray | None = None,
                   connectivity: int = 1, split: str = "merged", pba_method: str = "face",
                   surface_method: str = "faces",
                   histogram_edges: Sequence[float] = DEFAULT_EDGES_UM3, n_regions: int = 5,
                   particle_phases: Sequence[str] = ("am",), collector_connectivity: bool = True,
                   uncertainty: bool = True, n_blocks: int | Sequence[int] | None = None, seed: int = 0,
                   source: str = "labels", merge: float = DEFAULT_MERGE,
                   crack_merge: float | None = DEFAULT_CRACK_MERGE,
                   crack_gap_um: float | None = None,
                   tortuosity_phases: Sequence[str] = (), tortuosity_axes: str = "depth",
                   hand_labels: np.ndarray | None = None, slice_errors=None,
                   hand_labels_source: str = "hand labels") -> AnalysisResult:
    """Compute every metric of docs/reference-metrics.md on one label volume.

    Parameters
    ----------
    labels : ndarray, shape (Z, Y, X) or (Y, X), uint8
        Phase indices; ``ignore_value`` excluded everywhere.
    voxel_size : sequence of float
        µm, array order; required (physical metrics are never computed from a guess).
    depth_axis : int
    phases : sequence of str
    ignore_value : int
    image : ndarray, optional
        Channel aligned with ``labels`` for per-particle statistics (``channel_stats`` module).
    connectivity : int
        Particle connectivity: 1 = faces (default), ndim = full.
    split : {"merged", "none", "watershed"}
        What a particle is (docs/particles.md): "merged" (default) splits the AM clusters into
        particles (:func:`find_particles`); "none" counts connected clusters; "watershed" is
        the raw watershed split. The clusters are counted in every case.
    merge, crack_merge, crack_gap_um : float
        Options of the "merged" split (:func:`split_touching`).
    tortuosity_phases : sequence of str
        Phases whose tortuosity factor through the depth axis is computed with TauFactor
        (:func:`electroseg.analysis.tortuosity.tortuosity_factor`; the ``tortuosity`` extra,
        torch, minutes on the CPU for 256³) into ``tortuosity`` of metrics.json.
    tortuosity_axes : {"depth", "all"}
        ``"all"`` also solves along every other axis: ``tortuosity[phase]["by_axis"]`` holds
        one result per array axis (the depth result stays at ``tortuosity[phase]``).
    pba_method : {"face", "voxel"}
    surface_method : {"faces", "marching_cubes"}
    histogram_edges : sequence of float
        Particle size bin edges (µm³, µm² in 2-D).
    n_regions : int
        Depth slabs for the per-region size distributions.
    particle_phases : sequence of str
        Phases whose particles are measured ("am" always when it is a phase; add "pore").
    collector_connectivity : bool
        Share of AM electronically connected to the current collector (``connectivity``
        module; needs "am" and "cbd" phases). About 2/3 of the run time on large volumes.
    uncertainty : bool
        Sub-block uncertainty (``uncertainty`` module) with ``n_blocks`` blocks per in-plane
        axis (default 2, or 1 along an axis one voxel thick), and the representative-volume
        check (``rve`` module: how the spread of the volume fractions and of pooled PBA falls
        with block volume, the precision the imaged volume supports and the volume a stated
        precision needs) into ``representative_volume`` of metrics.json.
    seed : int
        Bootstrap seed.
    hand_labels : ndarray, optional
        Hand labels of this volume (``ignore_value`` where unlabelled; same shape), not used to
        make the segmentation. The metric errors on its labelled slices give
        ``uncertainty.segmentation`` and ``uncertainty.total`` (``segmentation_error`` module);
        slices less than half labelled are left out (scribbles avoid the phase boundaries where
        the errors are).
    slice_errors : SliceErrors or mapping, optional
        Errors measured elsewhere, e.g. on a checkpoint's held-out slices, used when
        ``hand_labels`` is not given.
    hand_labels_source : str
        Where those came from, written into ``uncertainty.segmentation_check.source``.
    source : str
        Name of the input, used in error messages.

    Returns
    -------
    AnalysisResult

    Notes
    -----
    Definitions as in :func:`volume_fractions`, :func:`pba_profile`, :func:`particle_table`,
    :func:`interface_areas`. Face pairs are counted once and shared by the fractions, the
    face-method PBA and the face-counting interface areas.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((2, 4, 4), dtype=np.uint8)
    >>> labels[:, 1:3, 1:3] = 2
    >>> labels[:, 1:3, 3] = 1
    >>> result = analyze_labels(labels, voxel_size=(1, 1, 1), uncertainty=False)
    >>> result.pba.pooled, result.particles["am"].count
    (0.5, 1)
    """
    labels = check_labels(labels, phases=phases, ignore_value=ignore_value, name=source)
    hand_labels, slice_errors = _check_hand_labels(labels, hand_labels, slice_errors, hand_labels_source,
                                                   phases=tuple(phases), ignore_value=ignore_value,
                                                   depth_axis=depth_axis, source=source)
    sizes = check_voxel_size(voxel_size, labels.ndim, what="analysis", source=source)
    axis = check_depth_axis(depth_axis, labels.ndim)
    phases = tuple(phases)
    tortuosity_phases = check_tortuosity_phases(tortuosity_phases, phases)  # before any computing
    if tortuosity_axes not in ("depth", "all"):
        raise InputError(f"tortuosity_axes: expected depth or all, got {tortuosity_axes!r}")
    counts = face_pair_counts(labels, depth_axis=axis, phases=phases, ignore_value=ignore_value)
    profile = VolumeFractionProfile.from_counts(counts.voxels, phases=phases, depth_axis=axis,
                                                ignored=counts.ignored)
    fractions = profile.overall()
    absent = tuple(p for p in phases if fractions.counts[p] == 0)
    for phase in absent:
        logger.warning("%s: phase %r is absent; its metrics are null", source, phase)
    pba = _pba(labels, counts, axis, phases, pba_method, ignore_value, absent)
    surface = (interface_areas_from_pairs(counts, voxel_size=sizes) if surface_method == "faces"
               else interface_areas(labels, voxel_size=sizes, phases=phases,
                                    method=surface_method, ignore_value=ignore_value))
    check_split(split)
    options = dict(voxel_size=sizes, depth_axis=axis, phases=phases, ignore_value=ignore_value,
                   connectivity=connectivity, split=split)
    split_options = dict(merge=merge, crack_merge=crack_merge, crack_gap_um=crack_gap_um)
    particles, histograms, am_ids = {}, {}, None
    for phase in _particle_phases(phases, particle_phases):
        ids = find_particles(labels, phase=phase, **{k: v for k, v in options.items()
                                                       if k != "depth_axis"}, **split_options)
        particles[phase] = particle_table(labels, phase=phase, particle_labels=ids, **options)
        histograms[phase] = size_histogram(particles[phase], edges=histogram_edges,
                                           n_regions=n_regions)
        am_ids = ids if phase == "am" else am_ids
    clusters = fragments = fragment_histogram = None
    split_am = am_ids is not None and split != "none"
    if split_am:
        fragments = _fragment_table(am_ids, options)
        fragment_histogram = size_histogram(fragments, edges=histogram_edges, n_regions=n_regions)
        if image is None:  # the particle ids are not needed further: freed before more labelling
            am_ids = ids = None
    am_clusters = am_ids if split == "none" else None  # the connected AM clusters, when labelled
    if split_am:
        clusters, am_clusters = _clusters(labels, options)
    face_clusters = am_clusters if connectivity_rank(connectivity, labels.ndim) == 1 else None
    # the collector connectivity reuses the face-connected AM clusters (one labelling pass fewer)
    extras = _optional_modules(labels, image, am_ids, options, collector_connectivity,
                               uncertainty, n_blocks, seed, particles.get("am"), face_clusters)
    del am_clusters, face_clusters
    if tortuosity_phases:
        extras["tortuosity"] = _tortuosity(labels, tortuosity_phases, options, tortuosity_axes)
    extras["segmentation_check"] = _segmentation_check(
        labels, hand_labels, slice_errors, hand_labels_source, options, pba, extras["uncertainty"],
        particles.get("am"), seed, counts)
    return AnalysisResult(phases, sizes, axis, tuple(labels.shape), fractions, profile, pba,
                          particles, histograms, surface, absent=absent, clusters=clusters,
                          fragments=fragments, fragment_histogram=fragment_histogram, **extras)


_COUNTED = {
    "merged": "particles: AM clusters split at necks (distance-transform watershed, pieces "
              "merged by saddle ratio, cracked pieces rejoined); see docs/particles.md",
    "watershed": "watershed pieces: AM split at every distance peak (over-splits particles)",
    "none": "connected clusters of AM (touching particles count as one)",
}
"""What ``particles.count`` counted, by ``split`` (metrics.json ``particles.counted``)."""


def _clusters(labels: np.ndarray, options: dict) -> tuple[dict, np.ndarray]:
    """The AM clusters' count and largest share, and their labels."""
    ids = label_particles(labels, phase="am", phases=options["phases"],
                          connectivity=options["connectivity"],
                          ignore_value=options["ignore_value"])
    found, counts = fastremap.unique(ids, return_counts=True)  # (np.bincount casts to intp first: 10x slower)
    voxels = counts[found > 0]
    return {"count": int(voxels.size),
            "largest_fraction": float(voxels.max() / voxels.sum()) if voxels.size else None}, ids


def _fragment_table(am_ids: np.ndarray, options: dict) -> ParticleTable:
    """The fragments of the AM particles, with the particle of each (``parent``)."""
    return fragment_table(am_ids, voxel_size=options["voxel_size"],
                          depth_axis=options["depth_axis"],
                          connectivity=options["connectivity"])


def _diameters(table: ParticleTable) -> dict:
    """Median and volume-weighted median equivalent diameter, all and whole particles."""
    whole = table.diameter_um[~table.touches_border]
    return {"median": float(np.median(table.diameter_um)) if table.count else None,
            "volume_weighted_median": volume_weighted_median(table.diameter_um),
            "whole_count": int(whole.size),
            "whole_volume_weighted_median": volume_weighted_median(whole)}


def _none_list(values: np.ndarray) -> list:
    return [None if np.isnan(v) else float(v) for v in values]


def _region_counts(table: ParticleTable, hist: SizeHistogram) -> list[int]:
    n_regions = hist.region_number_fraction.shape[0]
    n_depth = table.shape[table.depth_axis]
    centre = table.centroid_voxel[:, table.depth_axis] + 0.5
    region = np.clip((centre * n_regions / n_depth).astype(np.int64), 0, n_regions - 1)
    return np.bincount(region, minlength=n_regions).tolist()


def _pba(labels, counts, axis, phases, method, ignore_value, absent) -> PBAProfile | None:
    if "am" not in phases or "cbd" not in phases:
        logger.warning("phases %s have no 'am' and 'cbd'; PBA is not computed", list(phases))
        return None
    if "am" in absent or "cbd" in absent:
        return PBAProfile.from_counts(np.zeros(labels.shape[axis], np.int64),
                                      np.zeros(labels.shape[axis], np.int64),
                                      method=method, depth_axis=axis)
    if method == "face":
        return pba_from_pairs(counts)
    return pba_profile(labels, depth_axis=axis, phases=phases, method=method,
                       ignore_value=ignore_value)


def _particle_phases(phases: tuple[str, ...], requested: Sequence[str]) -> list[str]:
    if isinstance(requested, str):
        requested = [requested]
    wanted = (["am"] if "am" in phases else []) + [p for p in requested if p != "am"]
    for phase in wanted:
        phase_index(phases, phase, argument="particle_phases")
    return wanted


def _tortuosity(labels, wanted: tuple[str, ...], options: dict, axes: str = "depth") -> dict:
    """TauFactor's tortuosity factor of each phase in ``wanted`` (checked) through the depth axis
    (and, with ``axes="all"``, along every axis), after logging how long it should take."""
    from electroseg.analysis.tortuosity import estimate_seconds, tortuosity_factor

    depth = options["depth_axis"]
    order = [depth] + ([a for a in range(labels.ndim) if a != depth] if axes == "all" else [])
    each = [estimate_seconds(labels.shape, a) for a in order]
    seconds = None if None in each else sum(each) * len(wanted)
    logger.info("tortuosity: %d solve(s) (%s along axes %s); estimated %s", len(order) * len(wanted),
                ", ".join(wanted), order, _duration(seconds))
    out = {}
    for phase in wanted:
        results = {a: tortuosity_factor(labels, phase=phase, axis=a, phases=options["phases"],
                                        ignore_value=options["ignore_value"],
                                        voxel_size=options["voxel_size"]).to_dict() for a in order}
        out[phase] = dict(results[depth])
        if axes == "all":
            out[phase]["by_axis"] = {str(a): r for a, r in results.items()}
        logger.info("tortuosity factor of %s: %s", phase, {a: r.get("tau") for a, r in results.items()})
    return out


def _duration(seconds: float | None) -> str:
    """``"about 40 s on the CPU"``-style text; ``None``: the GPU, no CPU estimate."""
    if seconds is None:
        return "on the GPU"
    return f"about {seconds:.0f} s on the CPU" if seconds < 120 else f"about {seconds / 60:.0f} min on the CPU"


def _check_hand_labels(labels, hand_labels, slice_errors, hand_source, *, phases, ignore_value,
                       depth_axis, source):
    """Hand labels checked against the segmentation (shape, values), or the slice errors parsed;
    before any computing."""
    if hand_labels is None and slice_errors is None:
        return None, None
    if labels.ndim == 3 and depth_axis in (0, -3):
        raise InputError(f"{hand_source}: the labelled slices are planes across axis 0, which is the depth "
                         f"axis of {source}; hand-label checks need depth_axis 1 or 2")
    if hand_labels is not None:
        hand = check_labels(hand_labels, phases=phases, ignore_value=ignore_value, name=hand_source)
        if hand.shape != labels.shape:
            raise InputError(f"{hand_source}: expected the shape of {source} {labels.shape}, got {hand.shape}")
        return hand, None
    from electroseg.analysis.segmentation_error import SliceErrors, slice_depth

    errors = slice_errors if isinstance(slice_errors, SliceErrors) else SliceErrors.from_dict(slice_errors)
    if errors.phases != phases:
        raise InputError(f"slice errors of {hand_source}: phases {list(errors.phases)} differ from the "
                         f"analysis's {list(phases)}")
    depth = slice_depth(labels.ndim, depth_axis)
    if errors.depth != depth:
        raise InputError(f"slice errors of {hand_source}: measured with the depth along slice axis "
                         f"{errors.depth}, but {source} has it along slice axis {depth}")
    return None, errors


def _segmentation_check(labels, hand_labels, slice_errors, hand_source, options, pba, uncertainty,
                        am_particles, seed, counts) -> dict | None:
    """``uncertainty.segmentation`` / ``total`` (with ``segmentation_check``): from the hand
    labels' slices, else from ``slice_errors``; a note saying why not when neither serves."""
    from electroseg.analysis.segmentation_error import (
        dense_slices,
        measure_slice_errors,
        segmentation_intervals,
    )

    common = dict(phases=options["phases"], ignore_value=options["ignore_value"])
    if hand_labels is not None:
        dense, skipped = dense_slices(hand_labels, ignore_value=options["ignore_value"])
        errors = measure_slice_errors(labels, dense, depth_axis=options["depth_axis"], source=hand_source, **common)
        if errors is None:
            return {"segmentation": None, "total": None, "source": hand_source,
                    "note": (f"no slice of {hand_source} is at least half labelled ({skipped} sparser "
                             "slices left out): scribbles miss the boundary errors that move PBA and the "
                             "interfaces, so the segmentation's error was not measured")}
    elif slice_errors is not None:
        errors, skipped = slice_errors, 0
    else:  # nothing to measure it on: metrics.json has no segmentation entries (the report says so)
        return None
    sampling = None
    if uncertainty is not None:  # the sub-block intervals (pooled PBA: from the block counts)
        sampling = {m: (none_if_nan(lo), none_if_nan(hi))
                    for m, lo, hi in zip(uncertainty.names, uncertainty.ci_low, uncertainty.ci_high)}
        if uncertainty.pba_pooled is not None:
            sampling["pba_pooled"] = tuple(none_if_nan(v) for v in uncertainty.pba_pooled[1:])
        if uncertainty.particle_weighted_median is not None:
            estimate, low, high = (none_if_nan(v) for v in uncertainty.particle_weighted_median)
            sampling["particle_volume_weighted_median_um"] = (low, high, estimate)  # skewed: sides apart
    counted = am_particles is not None and am_particles.count
    median = float(np.median(am_particles.diameter_um)) if counted else None
    split = counted and options["split"] != "none"  # clusters (split none): no particle sampling interval
    result = segmentation_intervals(
        labels, errors, voxel_size=options["voxel_size"], sampling=sampling,
        pba_pooled=None if pba is None else pba.pooled, pba_depth_mean=None if pba is None else pba.depth_mean,
        particle_median_um=median,
        particle_weighted_median_um=volume_weighted_median(am_particles.diameter_um) if split else None,
        seed=seed, source=hand_source, ignore_value=options["ignore_value"],
        counts=counts, transfer=hand_labels is None)  # stored errors: measured on other volumes
    if skipped:
        result["labelled"]["sparse_slices_left_out"] = skipped
    return result


def _optional_modules(labels, image, am_ids, options, collector, uncertainty, n_blocks,
                      seed, am_particles=None, face_clusters=None) -> dict:
    """Results of the colleague modules (connectivity, channel statistics, uncertainty).

    ``face_clusters``: the face-connected AM components, when already labelled."""
    from electroseg.analysis.channel_stats import particle_channel_stats
    from electroseg.analysis.connectivity import electronic_connectivity

    common = dict(depth_axis=options["depth_axis"], phases=options["phases"],
                  ignore_value=options["ignore_value"])
    extras: dict = {"connectivity": None, "channel_stats": None, "uncertainty": None, "representative_volume": None}
    if collector and "am" in options["phases"] and "cbd" in options["phases"]:
        extras["connectivity"] = electronic_connectivity(labels, particles=face_clusters, **common)
    if image is not None:
        if am_ids is None:
            raise InputError(f"image: per-particle statistics need an 'am' phase, got phases "
                             f"{list(options['phases'])}")
        rank = connectivity_rank(options["connectivity"], labels.ndim)
        extras["channel_stats"] = particle_channel_stats(
            labels, image, voxel_size=options["voxel_size"], particles=am_ids,
            connectivity=rank, **common)
    if uncertainty:
        from electroseg.analysis.uncertainty import subblock_metrics, summarize_uncertainty

        if n_blocks is None:  # 2 per in-plane axis, fewer where the axis is a single voxel
            n_blocks = tuple(min(2, n) for a, n in enumerate(labels.shape)
                             if a != options["depth_axis"])
        # the sub-blocks' particle sizes are those of the particles counted (by centroid)
        counted = am_particles if options["split"] != "none" else None
        blocks = subblock_metrics(labels, voxel_size=options["voxel_size"], n_blocks=n_blocks,
                                  particles=counted, **common)
        extras["uncertainty"] = summarize_uncertainty(blocks, seed=seed, particles=counted)
        from electroseg.analysis.rve import representative_volume

        extras["representative_volume"] = representative_volume(labels, voxel_size=options["voxel_size"], **common)
    return extras


def write_analysis(result: AnalysisResult | Mapping[str, AnalysisResult], out_dir: str | Path,
                   *, figures: bool = True) -> list[Path]:
    """Write metrics.json, CSV tables and figures for one result or several named samples.

    Parameters
    ----------
    result : AnalysisResult or mapping of str to AnalysisResult
        One sample (files go straight into ``out_dir``) or named samples (``out_dir/<name>/``
        per sample; figures in ``out_dir`` overlay every sample).
    out_dir : path
        Created if missing. Every file is written atomically.
    figures : bool
        Also write pba_vs_depth.png, psd.png, volume_fraction_profile.png and (when the
        particles were split) fragments_by_depth.png.

    Returns
    -------
    list of Path
        The files written.
    """
    from electroseg.analysis.figures import write_figures

    out_dir = Path(out_dir)
    samples = dict(result) if isinstance(result, Mapping) else {None: result}
    if not samples or not all(isinstance(r, AnalysisResult) for r in samples.values()):
        raise InputError(f"result: expected an AnalysisResult or a mapping of names to them, "
                         f"got {type(result).__name__}")
    written: list[Path] = []
    for name, sample in samples.items():
        folder = out_dir if name is None else out_dir / str(name)
        written += _write_sample(sample, folder)
    if figures:
        named = {("sample" if n is None else str(n)): r for n, r in samples.items()}
        written += write_figures(named, out_dir)
    return written


def _write_sample(result: AnalysisResult, folder: Path) -> list[Path]:
    from electroseg.io import write_json

    folder.mkdir(parents=True, exist_ok=True)
    written = [write_json(folder / "metrics.json", result.to_dict())]
    if result.pba is not None:
        written.append(_write_csv(result.pba.as_table(), folder / "pba_depth.csv"))
    written.append(_write_csv(result.profile.as_table(), folder / "volume_fraction_profile.csv"))
    written.append(_write_csv(result.surface.as_table(), folder / "surface.csv"))
    for phase, table in result.particles.items():
        stem = "particles" if phase == "am" else f"particles_{phase}"
        written.append(_write_csv(table.as_table(), folder / f"{stem}.csv"))
        written.append(_write_csv(result.histograms[phase].as_table(),
                                  folder / f"{stem}_histogram.csv"))
    if result.fragments is not None:
        written.append(_write_csv(result.fragments.as_table(), folder / "fragments.csv"))
        written.append(_write_csv(result.fragment_histogram.as_table(),
                                  folder / "fragments_histogram.csv"))
    if result.connectivity is not None:
        written.append(write_json(folder / "connectivity.json", result.connectivity.to_dict()))
    if result.channel_stats is not None:
        written.append(_write_csv(result.channel_stats.as_table(), folder / "channel_stats.csv"))
    return written


def _write_csv(table, path: Path) -> Path:
    from electroseg.io import atomic_output

    with atomic_output(path) as tmp:
        table.to_csv(tmp, index=False)
    return path

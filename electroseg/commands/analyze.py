"""``electroseg analyze``: metrics of one or several label volumes, tables and figures."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from electroseg.config import plain
from electroseg.errors import InputError
from electroseg.io.labels import UNLABELLED

HELP = "metrics of a label volume (fractions, PBA, particles, surfaces)"

logger = logging.getLogger(__name__)

_ANALYSIS_KEYS = ("depth_axis", "pba_method", "connectivity", "split",
                  "surface_method", "n_regions", "collector_connectivity", "uncertainty",
                  "n_blocks", "seed", "merge", "crack_merge", "crack_gap_um", "tortuosity_axes")
_SPLIT_KEYS = ("merge", "crack_merge", "crack_gap_um")


def _plain(cfg: DictConfig, key: str):
    return plain(cfg.get(key))


def _named_paths(cfg: DictConfig, key: str, single: str) -> dict[str, str]:
    """``{name: path}`` from a mapping key, else ``{stem: path}`` from the single-path key."""
    many = _plain(cfg, key)
    if many is not None:
        if not isinstance(many, dict) or not many:
            raise InputError(f"{key}: expected a mapping of sample names to files, e.g. "
                             f"{key}={{pristine: a.tif, cycled: b.tif}}, got {many!r}")
        return {str(k): str(v) for k, v in many.items()}
    path = cfg.get(single)
    if not path:
        raise InputError(f"{single}: expected a label file (or {key}={{name: file, ...}}), "
                         f"got nothing")
    return {Path(str(path)).stem: str(path)}


def run(cfg: DictConfig) -> int:
    """Read the labels, analyse every sample, write metrics, tables, figures, comparison."""
    from electroseg.analysis import analyze_labels, write_analysis

    samples = _named_paths(cfg, "inputs", "input")
    images = _images(cfg, samples)
    phases = tuple(_plain(cfg, "phases"))
    hand = _hand_labels(cfg, samples)
    options = {k: _plain(cfg, k) for k in _ANALYSIS_KEYS}
    options.update(phases=phases, histogram_edges=tuple(_plain(cfg, "histogram_edges")),
                   particle_phases=tuple(_plain(cfg, "particle_phases")),
                   tortuosity_phases=_tortuosity_phases(cfg, phases))
    if cfg.executor == "dask":
        if hand:
            raise InputError("hand_labels: the segmentation check runs in memory only; use executor=local")
        results = _analyze_on_dask(cfg, samples, images, options)
    elif cfg.executor == "local":
        results = {}
        hand_arrays = {name: _read(cfg, path, phases, name).numpy() for name, path in hand.items()}
        for name, path in samples.items():
            labels = _read(cfg, path, phases, name)
            results[name] = analyze_labels(
                labels.numpy(), voxel_size=labels.require_voxel_size("the analysis (µm units)"),
                image=images.get(name), source=str(path), hand_labels=hand_arrays.get(name),
                hand_labels_source=str(hand.get(name, "hand labels")),
                ignore_value=UNLABELLED, **options)  # read_labels maps the stored ignore_value to it
            logger.info("%s: analysed %s", name, path)
    else:
        raise InputError(f"executor: expected local or dask, got {cfg.executor!r}")
    single = cfg.get("inputs") is None
    written = write_analysis(next(iter(results.values())) if single else results, cfg.out,
                             figures=bool(cfg.figures))
    if len(results) > 1:
        written += _write_comparisons(results, Path(cfg.out), seed=int(cfg.seed))
    logger.info("analysis written to %s (%d files)", cfg.out, len(written))
    return 0


def _tortuosity_phases(cfg: DictConfig, phases: tuple[str, ...]) -> tuple[str, ...]:
    """``tortuosity`` as a tuple of phase names, checked before any computing."""
    from electroseg.analysis.tortuosity import check_tortuosity_phases

    wanted = _plain(cfg, "tortuosity") if "tortuosity" in cfg else None
    if wanted is True:
        return phases  # every phase
    wanted = [] if wanted in (None, False) else [wanted] if isinstance(wanted, str) else list(wanted)
    return check_tortuosity_phases(wanted, phases)


def _analyze_on_dask(cfg: DictConfig, samples: dict[str, str], images: dict, options: dict) -> dict:
    """Block-wise analysis of (Zarr) label volumes on a Dask cluster; same results as in memory."""
    from electroseg.analysis.blockwise import analyze_blockwise
    from electroseg.parallel import dask_client

    options.pop("tortuosity_axes")
    if options.pop("tortuosity_phases"):
        raise InputError("tortuosity: computed in memory only; use executor=local")
    options = {k: v for k, v in options.items() if k not in _SPLIT_KEYS}
    if options["split"] != "none":
        raise InputError(f"split={options['split']}: the particle split runs in memory only; "
                         f"block-wise analysis (executor=dask) counts connected clusters: pass "
                         f"split=none to count them, or executor=local for particles")
    results = {}
    with dask_client(**_plain(cfg, "dask")) as client:
        for name, path in samples.items():
            results[name] = analyze_blockwise(
                path, voxel_size=_plain(cfg, "voxel_size"), label_values=_label_values(cfg, name),
                ignore_value=int(cfg.ignore_value),  # blocks are read as stored and mapped there
                image=images.get(name), source=str(path), client=client, **options)
            logger.info("%s: analysed %s block-wise on dask", name, path)
    return results


def _read(cfg: DictConfig, path: str, phases: tuple[str, ...], name: str):
    from electroseg.io import read_labels

    return read_labels(path, phases=phases, label_values=_label_values(cfg, name),
                       ignore_value=int(cfg.ignore_value), voxel_size=_plain(cfg, "voxel_size"))


def _label_values(cfg: DictConfig, name: str) -> list[int] | None:
    """The stored phase values of sample ``name``'s files: ``label_values`` is one list for every
    file, or ``{sample: list}`` when the samples come from sources that store them differently."""
    given = _plain(cfg, "label_values")
    if not isinstance(given, dict):
        return given
    samples = set(_named_paths(cfg, "inputs", "input"))
    unknown = sorted(set(given) - samples)
    if unknown:
        raise InputError(f"label_values: names {unknown} are not among the samples {sorted(samples)}")
    return given.get(name)


def _per_sample(cfg: DictConfig, key: str, samples: dict[str, str]) -> dict[str, str]:
    """``{sample: file}`` from ``key`` (one path for a single input, or {name: path}), checked."""
    given = _plain(cfg, key)
    if given is None:
        return {}
    if isinstance(given, dict):
        unknown = sorted(set(given) - set(samples))
        if unknown:
            raise InputError(f"{key}: names {unknown} are not among the samples {sorted(samples)}")
        return {str(k): str(v) for k, v in given.items()}
    if len(samples) != 1:
        raise InputError(f"{key}: with several inputs give {key}={{name: file}}, got {given!r}")
    return {next(iter(samples)): str(given)}


def _hand_labels(cfg: DictConfig, samples: dict[str, str]) -> dict[str, str]:
    """``{sample: hand-label file}`` from ``hand_labels``."""
    return _per_sample(cfg, "hand_labels", samples)


def _images(cfg: DictConfig, samples: dict[str, str]) -> dict:
    from electroseg.io import read_volume

    return {k: read_volume(v).numpy() for k, v in _per_sample(cfg, "image", samples).items()}


def _write_comparisons(results: dict, out: Path, *, seed: int) -> list[Path]:
    """comparison.json (two samples) or comparison_<name>.json (each sample vs the first)."""
    from electroseg.analysis import compare_samples
    from electroseg.analysis.sample_comparison import total_differences
    from electroseg.io import write_json

    names = list(results)
    first = results[names[0]]
    if first.uncertainty is None:
        logger.warning("uncertainty=false: no sub-blocks, so no comparison.json is written")
        return []
    written = []
    for name in names[1:]:
        comparison = compare_samples(first.uncertainty, results[name].uncertainty,
                                     names=(names[0], name), seed=seed)
        # with hand labels for both: the difference of the corrected estimates, sampling and
        # segmentation errors together (null when either sample's error was not measured)
        total = total_differences(*((results[n].segmentation_check or {}).get("total") for n in (names[0], name)))
        target = "comparison.json" if len(names) == 2 else f"comparison_{name}.json"
        written.append(write_json(out / target, {**comparison.to_dict(), "total": total}))
        if total and total.get("pba_pooled"):
            found = total["pba_pooled"]
            logger.info("%s - %s, pooled PBA corrected for the segmentation's error: %+.4f (total 95 %% interval "
                        "%+.4f to %+.4f: %s)", name, names[0], found["difference"], found["ci_low"], found["ci_high"],
                        "significant" if found["excludes_zero"] else "not significant")
    return written

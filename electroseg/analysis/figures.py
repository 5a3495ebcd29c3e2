"""Figures of an analysis: PBA vs depth, particle size distribution, fraction profiles.

Several named samples (e.g. ``{"pristine": a, "cycled": b}``) overlay in each figure. Matplotlib
runs on the non-interactive Agg backend and every PNG is written atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["plot_fragments_by_depth", "plot_pba_vs_depth", "plot_psd",
           "plot_volume_fraction_profile", "write_figures"]

_LINESTYLES = ("-", "--", ":", "-.")


def write_figures(results: Mapping, out_dir: str | Path) -> list[Path]:
    """Write pba_vs_depth.png, psd.png and volume_fraction_profile.png into ``out_dir``.

    Parameters
    ----------
    results : mapping of str to AnalysisResult
        Named samples overlaid in each figure.
    out_dir : path

    Returns
    -------
    list of Path
        The figures written (pba_vs_depth.png is skipped when no sample has a PBA, psd.png
        when no sample has particles).
    """
    out_dir = Path(out_dir)
    written = []
    if any(r.pba is not None for r in results.values()):
        written.append(plot_pba_vs_depth(results, out_dir / "pba_vs_depth.png"))
    if any("am" in r.particles for r in results.values()):
        written.append(plot_psd(results, out_dir / "psd.png"))
    if any(getattr(r, "fragment_histogram", None) is not None for r in results.values()):
        written.append(plot_fragments_by_depth(results, out_dir / "fragments_by_depth.png"))
    written.append(plot_volume_fraction_profile(results, out_dir / "volume_fraction_profile.png"))
    if any(getattr(r, "representative_volume", None) for r in results.values()):
        written.append(plot_representative_volume(results, out_dir / "representative_volume.png"))
    return written


def _depth_um(result) -> np.ndarray:
    n = result.shape[result.depth_axis]
    return np.arange(n) * result.voxel_size[result.depth_axis]


def plot_pba_vs_depth(results: Mapping, path: str | Path) -> Path:
    """PBA per depth plane (solid) and pooled value (dashed) for each sample."""
    fig, ax = _figure()
    for i, (name, result) in enumerate(results.items()):
        if result.pba is None:
            continue
        values = np.array([np.nan if v is None else v for v in result.pba.per_depth], float)
        line, = ax.plot(_depth_um(result), values, lw=1.2, label=f"{name}")
        if result.pba.pooled is not None:
            ax.axhline(result.pba.pooled, color=line.get_color(), ls="--", lw=1,
                       label=f"{name} pooled = {result.pba.pooled:.3f}")
    ax.set(xlabel="depth from separator (µm)", ylabel="PBA (AM surface touching CBD)",
           ylim=(0, 1), title=f"PBA by neighbour counting ({_method(results)})")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _method(results: Mapping) -> str:
    methods = {r.pba.method for r in results.values() if r.pba is not None}
    return "/".join(sorted(methods))


def plot_psd(results: Mapping, path: str | Path, *, phase: str = "am") -> Path:
    """Number- and volume-weighted particle size distributions, samples overlaid: what was
    counted in the title, one legend under both panels (sample, count, clusters, and the share
    the bins leave out)."""
    fig, axes = _pyplot().subplots(1, 2, figsize=(10, 4.4), layout="constrained")
    unit = "µm³"
    for name, result in results.items():
        if phase not in result.histograms:
            continue
        hist = result.histograms[phase]
        unit = "µm³" if hist.size_name == "volume_um3" else "µm²"
        for ax, values in zip(axes, (hist.number_fraction, hist.volume_fraction)):
            ax.stairs(np.nan_to_num(values), hist.edges, label=_counted_label(name, result, phase), lw=1.5)
    for ax, title in zip(axes, ("number fraction", "volume fraction")):
        ax.set(xscale="log", xlabel=f"particle size ({unit})", ylabel=title, title=title)
    fig.suptitle(f"{phase} {_WHAT.get(_split(results, phase), 'particles')}", fontsize=11)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", fontsize=8, frameon=False)
    return _save(fig, path)


_WHAT = {"merged": "particles (split at necks, cracks rejoined)",
         "watershed": "watershed pieces", "none": "connected clusters"}


def _split(results: Mapping, phase: str) -> str:
    splits = {r.particles[phase].split for r in results.values() if phase in r.particles}
    return splits.pop() if len(splits) == 1 else "mixed"


def _counted_label(name: str, result, phase: str) -> str:
    """Legend: sample and how many were counted; the connected clusters beside split particles;
    the share of particles and of their volume outside every bin, when there is one."""
    table = result.particles[phase]
    text = f"{name}: {table.count} {'particles' if table.split != 'none' else 'clusters'}"
    clusters = getattr(result, "clusters", None)
    if phase == "am" and table.split != "none" and clusters is not None and clusters.get("largest_fraction") is not None:
        text += (f" ({clusters['count']} connected clusters, the largest "
                 f"{100 * clusters['largest_fraction']:.0f} % of AM)")
    hist = result.histograms.get(phase)
    outside = hist.outside() if hist is not None else {}
    if outside.get("number"):
        text += (f"; outside the bins: {100 * outside['number']:.1f} % of them, "
                 f"{100 * (outside['volume'] or 0):.1f} % of their {'volume' if hist.size_name == 'volume_um3' else 'area'}")
    return text


def plot_fragments_by_depth(results: Mapping, path: str | Path) -> Path:
    """Volume-weighted fragment size distribution per depth region, one panel per sample."""
    named = {n: r for n, r in results.items() if getattr(r, "fragment_histogram", None) is not None}
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(named), figsize=(5.5 * len(named), 4), squeeze=False,
                             constrained_layout=True)
    for ax, (name, result) in zip(axes[0], named.items()):
        hist = result.fragment_histogram
        unit = "µm³" if hist.size_name == "volume_um3" else "µm²"
        edges = hist.region_edges_um
        for r, values in enumerate(hist.region_volume_fraction):
            ax.stairs(np.nan_to_num(values), hist.edges, lw=1.3, color=_pyplot().cm.viridis(
                r / max(1, len(hist.region_volume_fraction) - 1)),
                label=f"region {r + 1}: {edges[r]:.3g}–{edges[r + 1]:.3g} µm")
        ax.set(xscale="log", xlabel=f"fragment size ({unit})", ylabel="volume fraction",
               title=f"{name}: {result.fragments.count} fragments of "
                     f"{result.particles['am'].count} particles, by depth")
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_volume_fraction_profile(results: Mapping, path: str | Path) -> Path:
    """Fraction of every phase per depth plane; one colour per phase, one line style per
    sample."""
    fig, ax = _figure()
    colours = {}
    for i, (name, result) in enumerate(results.items()):
        style = _LINESTYLES[i % len(_LINESTYLES)]
        for j, phase in enumerate(result.phases):
            colour = colours.setdefault(phase, f"C{len(colours)}")
            ax.plot(_depth_um(result), result.profile.fractions[:, j], color=colour, ls=style,
                    lw=1.2, label=f"{phase} ({name})" if len(results) > 1 else phase)
    ax.set(xlabel="depth from separator (µm)", ylabel="volume fraction", ylim=(0, 1),
           title="volume fraction profile")
    ax.legend(fontsize=8, ncol=2)
    return _save(fig, path)


def plot_representative_volume(results: Mapping, path: str | Path) -> Path:
    """Spread between blocks against block volume (log-log), per metric: the measured points,
    the fitted power law taken to the imaged volume (its 95 % half width divided by z, so it
    reads on the same axis) and the target. One colour per metric, one marker style per sample."""
    fig, ax = _figure()
    colours = {}
    for i, (name, result) in enumerate(results.items()):
        rve = getattr(result, "representative_volume", None)
        if not rve:
            continue
        style = _LINESTYLES[i % len(_LINESTYLES)]
        imaged = rve["imaged_volume_um3"]
        z = 1.959963984540054 if rve.get("confidence", 0.95) == 0.95 else None
        for metric, fit in rve["metrics"].items():
            points = [(v, s) for v, s in zip(fit["block_volume_um3"], fit["std"]) if s]
            if not points:
                continue
            colour = colours.setdefault(metric, f"C{len(colours)}")
            label = metric.replace("volume_fraction_", "fraction ") + (f" ({name})" if len(results) > 1 else "")
            ax.loglog(*zip(*points), "o", color=colour, label=label)
            if fit["slope"] is not None and z:
                v = np.array([min(p[0] for p in points), imaged])
                sigma_imaged = fit["half_width"] / z
                ax.loglog(v, sigma_imaged * (v / imaged) ** fit["slope"], color=colour, ls=style, lw=1)
                ax.plot([imaged], [sigma_imaged], "s", color=colour, mfc="none")
    ax.set(xlabel="analysed volume (µm³)", ylabel="spread between blocks (std)",
           title="representative volume: spread falls with volume (square: whole image)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure():
    return _pyplot().subplots(figsize=(6.5, 4), constrained_layout=True)


def _save(fig, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    from electroseg.io import atomic_output

    path = Path(path)
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=120, format="png")
    finally:
        plt.close(fig)
    logger.info("wrote %s", path)
    return path

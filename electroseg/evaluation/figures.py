"""Figures that show how two segmentations differ (matplotlib, Agg backend, returns Figures).

Each function takes arrays and returns a ``matplotlib.figure.Figure``; ``save_figure`` writes
it as PNG atomically. Nothing here opens a window.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

# pore dark, cbd orange, am light blue; further phases fall back on tab10
_PHASE_COLOURS = ("#222222", "#e08a1e", "#7fb8e6", "#59a14f", "#b07aa1", "#ff9da7")


def phase_colormap(n_phases: int) -> ListedColormap:
    """A fixed colour per phase index, so every figure paints a phase the same way."""
    return ListedColormap(list(_PHASE_COLOURS[:n_phases]))


def _middle_slice(arr: np.ndarray, axis: int) -> np.ndarray:
    if arr.ndim == 2:
        return arr
    return np.take(arr, arr.shape[axis] // 2, axis=axis)


def slices_figure(segmentations: Mapping[str, np.ndarray], *, phases: Sequence[str],
                  image: np.ndarray | None = None, axis: int = 0,
                  ignore_value: int = 255) -> Figure:
    """Side-by-side middle slices: the image (if given) then each segmentation over it.

    Parameters
    ----------
    segmentations : mapping of name to ndarray of uint8, shape (Z, Y, X) or (Y, X)
    phases : sequence of str
    image : ndarray, same spatial shape, optional
        Greyscale shown under the label overlays (alpha 0.45).
    axis : int
        Slicing axis for volumes (0: one FIB-SEM cross-section).
    """
    n_panels = len(segmentations) + (image is not None)
    fig = Figure(figsize=(3.2 * n_panels, 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n_panels))
    cmap = phase_colormap(len(phases))
    grey = None if image is None else _middle_slice(np.asarray(image, np.float32), axis)
    panels = ([("image", None)] if image is not None else []) + list(segmentations.items())
    for ax, (name, labels) in zip(axes, panels):
        if grey is not None:
            ax.imshow(grey, cmap="gray")
        if labels is not None:
            shown = np.ma.masked_equal(_middle_slice(labels, axis), ignore_value)
            ax.imshow(shown, cmap=cmap, vmin=-0.5, vmax=len(phases) - 0.5,
                      alpha=0.45 if grey is not None else 1.0, interpolation="nearest")
        ax.set_title(name)
        ax.set_axis_off()
    return fig


def confusion_figure(confusion: np.ndarray, *, phases: Sequence[str],
                     title: str = "confusion (row-normalised)") -> Figure:
    """Confusion matrix, rows = reference, columns = labels; cells show row fractions."""
    counts = np.asarray(confusion, dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    frac = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    fig = Figure(figsize=(3.6, 3.2), layout="constrained")
    ax = fig.subplots()
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for (i, j), value in np.ndenumerate(frac):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center",
                color="white" if value > 0.5 else "black")
    ax.set_xticks(range(len(phases)), phases)
    ax.set_yticks(range(len(phases)), phases)
    ax.set_xlabel("labels")
    ax.set_ylabel("reference")
    ax.set_title(title)
    return fig


def pba_depth_figure(profiles: Mapping[str, Sequence[float | None]], *,
                     depth_step_um: float | None = None) -> Figure:
    """PBA versus depth, one line per segmentation (None/NaN depths leave gaps)."""
    fig = Figure(figsize=(5.0, 3.4), layout="constrained")
    ax = fig.subplots()
    for name, values in profiles.items():
        y = np.array([np.nan if v is None else v for v in values], dtype=float)
        x = np.arange(y.size) * (depth_step_um or 1.0)
        ax.plot(x, y, label=name)
    ax.set_xlabel("depth (µm)" if depth_step_um else "depth index")
    ax.set_ylabel("PBA (AM surface touching CBD)")
    ax.set_ylim(0, 1)
    ax.legend()
    return fig


def size_distribution_figure(volumes_um3: Mapping[str, np.ndarray], *, two_d: bool = False) -> Figure:
    """Histogram of log10 particle volume (µm³; area in µm² for 2-D images), one outline per
    segmentation."""
    logs = {k: np.log10(np.asarray(v, float)[np.asarray(v, float) > 0])
            for k, v in volumes_um3.items()}
    finite = np.concatenate([v for v in logs.values()] + [np.zeros(0)])
    fig = Figure(figsize=(5.0, 3.4), layout="constrained")
    ax = fig.subplots()
    if finite.size:
        bins = np.linspace(finite.min(), finite.max() + 1e-9, 30)
        for name, v in logs.items():
            ax.hist(v, bins=bins, histtype="step", density=True, label=f"{name} (n={v.size})")
        ax.legend()
    ax.set_xlabel("log10 particle area (µm²)" if two_d else "log10 particle volume (µm³)")
    ax.set_ylabel("density")
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as PNG (dpi 100) to ``path`` via a temporary name; return the path."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=100)
    tmp.replace(path)
    logger.debug("wrote %s", path)
    return path

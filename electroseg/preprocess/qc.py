"""Quality-control products of preprocessing: shift tables and figures."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from electroseg.preprocess.pipeline import PreprocessResult

logger = logging.getLogger(__name__)


def _middle_slice(image: np.ndarray) -> np.ndarray:
    while image.ndim > 2:
        image = image[image.shape[0] // 2] if image.ndim == 3 else image[0]
    return image


def plot_shifts(shifts: np.ndarray, path: str | Path) -> Path:
    """Save a PNG of the per-slice drift ``(dy, dx)`` (pixels) against slice index."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.plot(shifts[:, 0], label="dy")
    axes.plot(shifts[:, 1], label="dx")
    axes.set_xlabel("slice")
    axes.set_ylabel("drift relative to slice 0 (px)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)


def plot_before_after(before: np.ndarray, after: np.ndarray, path: str | Path, *, label: str = "") -> Path:
    """Save a PNG with the middle slice before and after preprocessing side by side.

    ``label`` (e.g. the detector's name) is added to both titles.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, image, title in zip(axes, (before, after), ("before", "after")):
        ax.imshow(_middle_slice(np.asarray(image)), cmap="gray")
        ax.set_title(f"{title} (middle slice{', ' + label if label else ''})")
        ax.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)


def write_preprocess_qc(result: PreprocessResult, before: np.ndarray, out_dir: str | Path, *,
                        channel: int | None = None, label: str = "") -> list[Path]:
    """Write ``shifts.csv``, ``shifts.png`` (when registered) and ``qc_preprocess.png``.

    ``before`` is the raw image in the layout of ``result.image``. For a multichannel result
    (C, Z, Y, X), ``channel`` picks the channel shown in ``qc_preprocess.png`` (default 0) and
    ``label`` names it in the titles. Returns the paths written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if result.shifts is not None:
        table_path = out_dir / "shifts.csv"
        result.as_table().to_csv(table_path, index=False)
        written += [table_path, plot_shifts(result.shifts, out_dir / "shifts.png")]
    after = result.image
    if channel is not None or (after.ndim == 4 and before.ndim == 4):
        before, after = before[channel or 0], after[channel or 0]
    if before.ndim == after.ndim:
        written.append(plot_before_after(before, after, out_dir / "qc_preprocess.png", label=label))
    logger.info("preprocess QC written to %s", out_dir)
    return written

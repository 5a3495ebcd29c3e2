"""Write a `Comparison` to a folder: comparison.json and its figures."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Mapping

import numpy as np

from electroseg.evaluation.comparison import Comparison
from electroseg.evaluation.figures import (confusion_figure, pba_depth_figure, save_figure,
                                           size_distribution_figure, slices_figure)
from electroseg.io import write_json

logger = logging.getLogger(__name__)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()


def write_comparison(comparison: Comparison, out_dir: str | Path, *,
                     segmentations: Mapping[str, np.ndarray], image: np.ndarray | None = None,
                     depth_step_um: float | None = None, ignore_value: int = 255) -> list[Path]:
    """Write ``comparison.json`` and the figures into ``out_dir``; return the written paths.

    Figures: ``slices.png`` (middle cross-section of each segmentation over the image),
    ``confusion_<pair>.png`` per agreement, ``pba_depth.png`` and ``size_distribution.png``.

    Parameters
    ----------
    comparison : Comparison
    out_dir : path
        Created if missing.
    segmentations : mapping of name to ndarray
        The label arrays that were compared (the reference included, if any), for the slices.
    image : ndarray, optional
        Greyscale under the overlays, same spatial shape.
    depth_step_um : float, optional
        Voxel size along the depth axis, to label the depth figure in µm.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [write_json(out / "comparison.json", comparison.to_dict())]
    figures = {"slices.png": slices_figure(segmentations, phases=comparison.phases, image=image,
                                           ignore_value=ignore_value)}
    for key, found in comparison.agreement.items():
        figures[f"confusion_{_slug(key)}.png"] = confusion_figure(
            np.asarray(found.confusion), phases=comparison.phases, title=key)
    figures["pba_depth.png"] = pba_depth_figure(comparison.pba_per_depth,
                                                depth_step_um=depth_step_um)
    two_d = any(np.ndim(labels) == 2 for labels in segmentations.values())
    figures["size_distribution.png"] = size_distribution_figure(
        {k: 10.0 ** v for k, v in comparison.particle_log10_volume.items()}, two_d=two_d)
    written += [save_figure(fig, out / name) for name, fig in figures.items()]
    logger.info("wrote comparison of %s to %s", " and ".join(comparison.names), out)
    return written

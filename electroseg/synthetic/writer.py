"""Ground-truth record (truth.json) and the files of a synthetic sample."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from electroseg.analysis import label_particles, pba_profile, volume_fractions
from electroseg.synthetic.instances import particle_truth
from electroseg.synthetic.sample import IGNORE_VALUE, Sample

logger = logging.getLogger(__name__)


def sample_truth(sample: Sample) -> dict[str, Any]:
    """The truth.json record of a sample, metrics computed with `electroseg.analysis`.

    Volume fractions by `volume_fractions`, PBA by `pba_profile` (face pairs, docs/reference-metrics.md) on
    the dense labels; ``pba`` is null for phase sets without ``am`` and ``cbd`` (e.g. CT).
    ``particle_count`` is the number of particles placed by the generator; touching particles
    merge, so ``am_components`` (face-connected AM components by `label_particles`, the
    analysis's ``particles.clusters``) is smaller, cracks make it larger. ``particles``
    (`particle_truth`) describes the instances of particles.tif: count, equivalent diameters,
    border contact and the fragments of cracked particles.
    """
    fractions = volume_fractions(sample.labels, phases=sample.phases, ignore_value=IGNORE_VALUE)
    pba = None
    if {"am", "cbd"} <= set(sample.phases):
        pba = pba_profile(sample.labels, depth_axis=sample.depth_axis, phases=sample.phases,
                          method="face", ignore_value=IGNORE_VALUE).to_dict()
    return {
        "preset": sample.name,
        "seed": sample.seed,
        "phases": list(sample.phases),
        "shape": list(sample.labels.shape),
        "voxel_size_um": list(sample.voxel_size),
        "depth_axis": sample.depth_axis,
        "channels": list(sample.channels),
        "image_files": dict(zip(sample.channels, image_names(sample))),
        "volume_fraction": dict(fractions.fractions),
        "pba": pba,
        "particle_count": sample.summary.get("particle_count"),
        "am_components": _am_components(sample),
        "cracked_count": sample.summary.get("cracked_count"),
        "particles": (particle_truth(sample.particle_ids, voxel_size=sample.voxel_size)
                      if sample.particle_ids is not None else None),
        "detached_fraction": sample.summary.get("detached_fraction"),
        "microstructure": sample.summary,
        "drift_shifts_px": sample.shifts.round(6).tolist(),
        "drift_convention": "image[k] = true-frame slice k shifted by (dy, dx) "
                            "(scipy.ndimage.shift); labels are in the true frame",
        "fiducial_rows": sample.fiducial_rows,
        "fiducial_note": ("images show the protective cap with tracking marks in rows "
                          f"[0, {sample.fiducial_rows}) above the specimen: register on them and "
                          "crop them (preprocess=fibsem_markers)") if sample.fiducial_rows else None,
        "sparse_slices": list(sample.sparse_slices),
        "ignore_value": IGNORE_VALUE,
    }


def _am_components(sample: Sample) -> int | None:
    if "am" not in sample.phases:
        return None
    return int(label_particles(sample.labels, phase="am", phases=sample.phases,
                               ignore_value=IGNORE_VALUE).max())


def image_names(sample: Sample) -> list[str]:
    """``image.tif`` for one detector, else ``image_<detector>.tif`` per detector."""
    if len(sample.images) == 1:
        return ["image.tif"]
    return [f"image_{name}.tif" for name in sample.images]


def write_sample(sample: Sample, out_dir: str | os.PathLike) -> list[Path]:
    """Write image(s), labels.tif, sparse_labels.tif, particles.tif and truth.json.

    particles.tif is the particle instance map (uint16 ids, 0 outside particles; uint32 ids
    beyond 65535 particles go out as float32 by the TIFF writer's rule), left out when the
    sample has none.

    Every file is written atomically (temporary name, then rename) by `electroseg.io`.

    Returns
    -------
    list of Path
        The files written, images first.
    """
    from electroseg.io import write_json, write_tiff

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [write_tiff(out / name, image, voxel_size=sample.voxel_size)
               for name, image in zip(image_names(sample), sample.images.values())]
    written.append(write_tiff(out / "labels.tif", sample.labels, voxel_size=sample.voxel_size,
                              phases=tuple(sample.phases)))
    written.append(write_tiff(out / "sparse_labels.tif", sample.sparse_labels(),
                              voxel_size=sample.voxel_size, phases=tuple(sample.phases)))
    if sample.particle_ids is not None:
        written.append(write_tiff(out / "particles.tif", sample.particle_ids,
                                  voxel_size=sample.voxel_size))
    written.append(write_json(out / "truth.json", sample_truth(sample)))
    logger.info("wrote sample %r to %s: %s", sample.name, out, [p.name for p in written])
    return written

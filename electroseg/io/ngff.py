"""OME-Zarr (OME-NGFF 0.5, Zarr v3) label and probability images that other tools open with their scale.

A label image is a Zarr group whose ``zarr.json`` holds, under ``attributes["ome"]``:

- ``multiscales``: one full-resolution level at path ``"0"``, axes ``z, y, x`` (or ``y, x``) of
  type ``space`` in ``micrometer`` with ``scale`` = the voxel size. Without a known voxel size the
  scale is 1 and no unit is written (the reader then reports no voxel size rather than guessing).
- ``image-label``: one colour per phase (the colours of the project's figures) and
  ``properties`` naming the phase of each label value (``{"label-value": i, "phase": name}``).

Probabilities are a ``(c, z, y, x)`` image: axis ``c`` of type ``channel`` (one per phase, named in
``omero.channels``), then the spatial axes as above.

napari's OME-Zarr reader (napari-ome-zarr) opens a label image as a Labels layer with the physical
scale; Fiji opens it through its OME-Zarr (N5/Zarr) reader. ``electroseg.io.read_volume`` reads
either back with its voxel size, and :func:`ngff_phases` the phase names.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

__all__ = ["create_image", "create_labels", "create_probabilities", "ngff_phases", "PHASE_RGBA", "NGFF_VERSION"]

NGFF_VERSION = "0.5"

#: Label colours (RGBA 0-255), value i gets entry i: the palette of the project's figures.
PHASE_RGBA = ((34, 34, 34, 255), (224, 138, 30, 255), (127, 184, 230, 255), (89, 161, 79, 255),
              (176, 122, 161, 255), (255, 157, 167, 255), (237, 201, 72, 255), (118, 183, 178, 255))


def _axes(n_spatial: int, voxel_size: Sequence[float] | None, channel: bool) -> tuple[list[dict], list[float]]:
    axes: list[dict] = [{"name": "c", "type": "channel"}] if channel else []
    for name in "zyx"[-n_spatial:]:
        axis = {"name": name, "type": "space"}
        if voxel_size is not None:
            axis["unit"] = "micrometer"
        axes.append(axis)
    scale = [1.0] * n_spatial if voxel_size is None else [float(v) for v in voxel_size]
    return axes, ([1.0] if channel else []) + scale


def _multiscales(name: str, n_spatial: int, voxel_size, channel: bool) -> list[dict]:
    axes, scale = _axes(n_spatial, voxel_size, channel)
    return [{"name": name, "axes": axes,
             "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}]}]


def _group(path: str | os.PathLike, ome: dict) -> Any:
    import zarr

    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    group.attrs["ome"] = {"version": NGFF_VERSION, **ome}
    return group


def create_labels(path: str | os.PathLike, shape: Sequence[int], *, chunks: Sequence[int],
                  voxel_size: Sequence[float] | None, phases: Sequence[str] | None,
                  dtype: Any = np.uint8) -> Any:
    """Create an empty OME-Zarr label image at ``path``; return its writable full-resolution array.

    Parameters
    ----------
    path : path
        The group folder (``labels.zarr``); replaced if present (write to a temporary path and
        rename for atomic output).
    shape, chunks : sequence of int
        (Z, Y, X) or (Y, X).
    voxel_size : sequence of float or None
        Micrometres per axis, in axis order.
    phases : sequence of str or None
        Phase name of label value i; None writes colours only.
    """
    label = {"colors": [{"label-value": i, "rgba": list(PHASE_RGBA[i % len(PHASE_RGBA)])}
                        for i in range(max(len(phases or ()), 1))]}
    if phases:
        label["properties"] = [{"label-value": i, "phase": str(name)} for i, name in enumerate(phases)]
    group = _group(path, {"multiscales": _multiscales("labels", len(shape), voxel_size, False),
                          "image-label": label})
    return group.create_array("0", shape=tuple(shape), dtype=dtype, chunks=tuple(chunks),
                              dimension_names=[a for a in "zyx"[-len(shape):]])


def create_image(path: str | os.PathLike, shape: Sequence[int], *, chunks: Sequence[int],
                 voxel_size: Sequence[float] | None, dtype: Any, name: str = "image") -> Any:
    """Create an empty single-channel OME-Zarr image (a greyscale scan); return its array."""
    group = _group(path, {"multiscales": _multiscales(name, len(shape), voxel_size, False)})
    return group.create_array("0", shape=tuple(shape), dtype=dtype, chunks=tuple(chunks),
                              dimension_names=[a for a in "zyx"[-len(shape):]])


def create_probabilities(path: str | os.PathLike, shape: Sequence[int], *, chunks: Sequence[int],
                         voxel_size: Sequence[float] | None, phases: Sequence[str], dtype: Any) -> Any:
    """Create an empty OME-Zarr image of per-phase probabilities, ``shape`` = (K, [Z,] Y, X)."""
    channels = [{"label": str(name), "active": True, "window": {"start": 0.0, "end": 1.0, "min": 0.0, "max": 1.0},
                 "color": "{:02X}{:02X}{:02X}".format(*PHASE_RGBA[i % len(PHASE_RGBA)][:3])}
                for i, name in enumerate(phases)]
    group = _group(path, {"multiscales": _multiscales("probabilities", len(shape) - 1, voxel_size, True),
                          "omero": {"channels": channels}})
    return group.create_array("0", shape=tuple(shape), dtype=dtype, chunks=tuple(chunks),
                              dimension_names=["c", *"zyx"[-(len(shape) - 1):]])


def ngff_phases(path: str | os.PathLike) -> tuple[str, ...] | None:
    """Phase names recorded in an OME-Zarr label image's ``image-label`` properties, else None."""
    import zarr

    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception:  # not a group: a plain array, or not Zarr at all
        return None
    attrs = dict(group.attrs)
    label = attrs.get("ome", attrs).get("image-label") or {}
    named = {int(p["label-value"]): str(p["phase"]) for p in label.get("properties", []) if "phase" in p}
    if not named or sorted(named) != list(range(len(named))):
        return None
    return tuple(named[i] for i in range(len(named)))

"""Readers: one entry point, `read_volume`, for every supported format.

Formats: multipage TIFF (ImageJ hyperstack, OME-TIFF, plain; lazy: a memory map, or for
compressed or tiled files a Zarr view decoded chunk by chunk), a folder of 2D slices (TIFF/PNG,
natural sort order), Zarr and OME-Zarr (lazy), HDF5 as ``file.h5:/path/to/dataset`` (lazy),
``.npy`` and single 2D images (PNG).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from electroseg.errors import InputError
from electroseg.io._tiff import read_tiff, unit_scale
from electroseg.io._validate import check_image_array, check_same_shape, default_max_bytes
from electroseg.io.volume import Volume

logger = logging.getLogger(__name__)

TIFF_SUFFIXES = (".tif", ".tiff")
SLICE_SUFFIXES = (".tif", ".tiff", ".png")
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")


def read_volume(
    path: str | os.PathLike,
    *,
    voxel_size: Any = None,
    lazy: bool = False,
    max_bytes: int | None = None,
    allow_channels: bool = True,
) -> Volume:
    """Read an image or volume with its voxel size.

    Parameters
    ----------
    path : path
        A TIFF, a folder of 2D slices, a ``.zarr`` folder, ``file.h5:/dataset``, a ``.npy`` or a PNG.
    voxel_size : sequence of float, optional
        Micrometres per voxel, (z, y, x) or (y, x); overrides the file's metadata.
    lazy : bool
        Keep large arrays on disk (TIFF memory map, or a Zarr view of a compressed or tiled
        TIFF; Zarr; HDF5) instead of loading them.
    max_bytes : int, optional
        Refuse, before allocating, an in-memory read larger than this (default: 80 % of the
        available memory).
    allow_channels : bool
        Accept a (C, Z, Y, X) hyperstack.

    Returns
    -------
    Volume

    Raises
    ------
    InputError
        Missing or unreadable file, not an image, wrong dimensionality, empty, NaN/inf values,
        non-positive voxel size.
    """
    text = os.fspath(path)
    file_part, _, inner = _split_hdf5(text)
    source = Path(file_part)
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    if max_bytes is None and not lazy:
        max_bytes = default_max_bytes()
    data, file_voxel_size, channels = _dispatch(source, inner, lazy=lazy, max_bytes=max_bytes)
    check_image_array(data, text, allow_channels=allow_channels)
    if len(channels) <= 1 and data.ndim == 4:
        raise InputError(f"{text}: expected a 2-D image or 3-D volume, got shape {tuple(data.shape)}")
    volume = Volume(data=data, voxel_size=None, channels=channels if len(channels) > 1 else (), source=text)
    chosen = voxel_size if voxel_size is not None else file_voxel_size
    return volume.with_voxel_size(chosen)


def _split_hdf5(text: str) -> tuple[str, str, str]:
    """Split ``file.h5:/dataset`` into (file, ':', dataset)."""
    for suffix in HDF5_SUFFIXES:
        marker = suffix + ":"
        if marker in text:
            head, _, tail = text.partition(marker)
            return head + suffix, ":", tail
    return text, "", ""


def _dispatch(source: Path, inner: str, *, lazy: bool, max_bytes: int | None) -> tuple[Any, Any, tuple]:
    suffix = source.suffix.lower()
    if source.is_dir() and suffix != ".zarr" and not (source / ".zarray").exists() \
            and not (source / "zarr.json").exists() and not (source / ".zgroup").exists():
        return _read_slice_folder(source, max_bytes), None, ()
    if source.is_dir():
        return _read_zarr(source, lazy)
    if source.stat().st_size == 0:
        raise InputError(f"{source}: the file is empty")
    if suffix in TIFF_SUFFIXES:
        return read_tiff(source, lazy=lazy, max_bytes=max_bytes)
    if suffix in HDF5_SUFFIXES:
        return _read_hdf5(source, inner, lazy)
    if suffix == ".npy":
        return _read_npy(source, lazy, max_bytes), None, ()
    if suffix in (".png", ".jpg", ".jpeg", ".bmp"):
        return _read_plain_image(source), None, ()
    raise InputError(
        f"{source}: unsupported file type {suffix or '(none)'}; expected .tif/.tiff, .png, .npy, "
        ".zarr, .h5:/dataset or a folder of slices"
    )


def _read_npy(source: Path, lazy: bool, max_bytes: int | None) -> np.ndarray:
    try:
        data = np.load(source, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as err:
        raise InputError(f"{source}: not a readable .npy array ({err})") from err
    if max_bytes is not None and data.nbytes > max_bytes and not lazy:
        raise InputError(f"{source}: {data.nbytes / 1e9:.1f} GB exceeds the {max_bytes / 1e9:.1f} GB memory limit")
    return data if lazy else np.array(data)


def _read_plain_image(source: Path) -> np.ndarray:
    import imageio.v3 as iio

    try:
        data = np.asarray(iio.imread(source))
    except Exception as err:  # imageio raises many types for undecodable files
        raise InputError(f"{source}: not a readable image ({err})") from err
    if data.ndim == 3 and data.shape[-1] in (3, 4):
        rgb = data[..., :3]
        if not ((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()):
            raise InputError(f"{source}: expected a greyscale image, got colour (RGB) pixels")
        data = np.ascontiguousarray(rgb[..., 0])
    return data


def _read_slice_folder(folder: Path, max_bytes: int | None) -> np.ndarray:
    from natsort import natsorted

    files = natsorted(p for p in folder.iterdir() if p.suffix.lower() in SLICE_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"{folder}: the folder holds no .tif/.tiff/.png slices")
    first = read_volume(files[0], allow_channels=False).numpy()
    if first.ndim != 2:
        raise InputError(f"{files[0]}: expected a 2-D slice in folder {folder}, got shape {first.shape}")
    nbytes = first.nbytes * len(files)
    if max_bytes is not None and nbytes > max_bytes:
        raise InputError(f"{folder}: {len(files)} slices need {nbytes / 1e9:.1f} GB, over the memory limit")
    stack = np.empty((len(files), *first.shape), dtype=first.dtype)
    stack[0] = first
    for i, file in enumerate(files[1:], start=1):
        plane = read_volume(file, allow_channels=False).numpy()
        if plane.shape != first.shape:
            raise InputError(
                f"{folder}: slices must all have the same size; {files[0].name} is {first.shape} "
                f"but {file.name} is {plane.shape}"
            )
        stack[i] = plane
    return stack


def _read_zarr(source: Path, lazy: bool) -> tuple[Any, Any, tuple]:
    import zarr

    try:
        node = zarr.open(str(source), mode="r")
    except Exception as err:  # zarr raises several types for a folder that is not a store
        raise InputError(f"{source}: not a readable Zarr store ({err})") from err
    voxel_size, channels = None, ()
    if isinstance(node, zarr.Group):
        channels = _ome_channels(dict(node.attrs))
        node, voxel_size = _ome_zarr_image(node, source)
    else:
        stored = node.attrs.get("voxel_size_um")  # plain Zarr arrays of electroseg < 0.2
        voxel_size = tuple(stored) if stored else None
    return (node if lazy else node[...]), voxel_size, channels


def _ome_channels(attrs: dict) -> tuple[str, ...]:
    """Channel names of an OME-Zarr image with a ``c`` axis (``omero.channels`` labels), else ()."""
    ome = attrs.get("ome", attrs)
    axes = (ome.get("multiscales") or [{}])[0].get("axes", [])
    if not any(isinstance(a, dict) and a.get("type") == "channel" for a in axes):
        return ()
    return tuple(str(c.get("label", f"c{i}")) for i, c in enumerate(ome.get("omero", {}).get("channels", [])))


def _ome_zarr_image(group: Any, source: Path) -> tuple[Any, Any]:
    """The full-resolution array of an OME-Zarr image and its voxel size (µm)."""
    attrs = dict(group.attrs)
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if not multiscales:
        raise InputError(f"{source}: a Zarr group without OME 'multiscales' metadata; point at an array")
    first = multiscales[0]
    dataset = first["datasets"][0]
    array = group[dataset["path"]]
    axes = first.get("axes", [])
    scale = next((t["scale"] for t in dataset.get("coordinateTransformations", []) if t["type"] == "scale"), None)
    if scale is None or not axes:
        return array, None
    voxel = []
    for axis, value in zip(axes, scale):
        if isinstance(axis, dict) and axis.get("type") == "space":
            factor = unit_scale(axis.get("unit"), str(source))  # no unit: no voxel size
            if factor is None:
                return array, None
            voxel.append(float(value) * factor)
    return array, tuple(voxel) or None


def _read_hdf5(source: Path, inner: str, lazy: bool) -> tuple[Any, Any, tuple]:
    import h5py

    if not inner:
        raise InputError(f"{source}: name the dataset inside the HDF5 file as {source}:/path/to/dataset")
    try:
        handle = h5py.File(source, "r")
    except OSError as err:
        raise InputError(f"{source}: not a readable HDF5 file ({err})") from err
    if inner not in handle or not isinstance(handle[inner], h5py.Dataset):
        handle.close()
        raise InputError(f"{source}: no dataset {inner!r} in the file")
    dataset = handle[inner]
    stored = dataset.attrs.get("element_size_um", dataset.attrs.get("voxel_size_um"))
    voxel_size = tuple(float(v) for v in stored) if stored is not None else None
    if lazy:
        return dataset, voxel_size, ()
    data = dataset[...]
    handle.close()
    return data, voxel_size, ()


def read_channels(
    paths: Mapping[str, str | os.PathLike],
    *,
    voxel_size: Any = None,
    lazy: bool = False,
) -> Volume:
    """Read one file per detector into one multi-channel Volume, channels first.

    Parameters
    ----------
    paths : mapping of str to path
        Detector name → image file, in channel order (e.g. ``{"cbs": a, "tld": b}``).

    Returns
    -------
    Volume
        (C, Z, Y, X) or (C, Y, X); a single entry gives a plain (Z, Y, X) volume named by it.
    """
    if not paths:
        raise InputError("channels: expected at least one image file, got none")
    volumes = [read_volume(p, voxel_size=voxel_size, lazy=lazy, allow_channels=False) for p in paths.values()]
    check_same_shape([v.shape for v in volumes], [v.name for v in volumes], "channel images")
    known = {v.voxel_size for v in volumes if v.voxel_size is not None}
    if len(known) > 1:
        listed = ", ".join(f"{v.name} {v.voxel_size}" for v in volumes)
        raise InputError(f"channel images disagree on the voxel size: {listed}; give voxel_size=[z,y,x]")
    names = tuple(paths)
    if len(volumes) == 1:
        return Volume(volumes[0].data, volumes[0].voxel_size, names, volumes[0].source)
    stacked = np.stack([v.numpy() for v in volumes]) if not lazy else _lazy_stack([v.data for v in volumes])
    return Volume(stacked, next(iter(known), None), names, ", ".join(v.name for v in volumes))


def _lazy_stack(arrays: list[Any]) -> Any:
    import dask.array as da

    return da.stack([da.from_array(a, chunks=(1, *a.shape[1:])) for a in arrays])

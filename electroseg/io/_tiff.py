"""TIFF reading: ImageJ hyperstacks, OME-TIFF and plain multipage TIFF, with voxel size."""

from __future__ import annotations

import logging
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np

from electroseg.errors import InputError
from electroseg.io._validate import default_max_bytes

logger = logging.getLogger(__name__)

_UNIT_TO_UM = {
    "um": 1.0, "µm": 1.0, "\u00b5m": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0,
    "micrometre": 1.0, "nm": 1e-3, "nanometer": 1e-3, "mm": 1e3, "millimeter": 1e3,
    "cm": 1e4, "m": 1e6, "\\u00B5m": 1.0,
}


def unit_scale(unit: str | None, name: str) -> float | None:
    """Micrometres per ``unit``; None for a missing or unknown unit (pixel, inch, ...)."""
    if not unit:
        return None
    return _UNIT_TO_UM.get(unit.strip().lower().replace("\\u00b5", "µ"))


def _tidy(value: float) -> float:
    """Undo the rounding of TIFF rational resolutions: keep 10 significant digits."""
    return float(f"{value:.10g}")


def read_tiff(path: Path, *, lazy: bool, max_bytes: int | None) -> tuple[Any, tuple | None, tuple[str, ...]]:
    """Return (array, voxel_size or None, channel names) of a TIFF file."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes, shape, dtype = series.axes, tuple(series.shape), np.dtype(series.dtype)
            _check_size(path, shape, dtype, max_bytes)
            _check_complete(tif, series, path)
            voxel_size = _voxel_size(tif, axes)
            channels = _channel_names(tif, axes, shape)
            if lazy:
                data = _lazy_tiff(path)
            else:
                data = series.asarray()
    except InputError:
        raise
    except (tifffile.TiffFileError, struct.error, ValueError, IndexError, KeyError, EOFError) as err:
        raise InputError(f"{path}: not a readable TIFF image ({err})") from err
    # no lazy view, or a Zarr view that would need a reshape or transpose: the file is decoded
    # whole, so the memory limit applies
    if data is None or (not isinstance(data, np.ndarray) and _needs_reorder(shape, axes)):
        _check_size(path, shape, dtype, max_bytes or default_max_bytes())
        data = tifffile.imread(path) if data is None else data[...]
    return _to_czyx(data, axes, path), voxel_size, channels


def _check_complete(tif: Any, series: Any, path: Path) -> None:
    """Refuse a truncated file: fewer images than its ImageJ header declares, or data past the end."""
    declared = (tif.imagej_metadata or {}).get("images") if tif.is_imagej else None
    found = int(np.prod(series.shape[:-2])) if len(series.shape) > 2 else 1
    if declared is not None and int(declared) > found:
        raise InputError(f"{path}: truncated TIFF: the header declares {declared} images, the file holds {found}")
    offset = getattr(series, "dataoffset", None)
    size = path.stat().st_size
    if offset is not None and offset + series.nbytes > size:
        raise InputError(
            f"{path}: truncated TIFF: the image data needs {offset + series.nbytes} bytes, the file has {size}"
        )


def _check_size(path: Path, shape: tuple, dtype: np.dtype, max_bytes: int | None) -> None:
    nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if max_bytes is not None and nbytes > max_bytes:
        raise InputError(
            f"{path}: the header declares a {shape} {dtype} array ({nbytes / 1e9:.1f} GB), more than "
            f"the {max_bytes / 1e9:.1f} GB memory limit; read it lazily (chunked mode) or raise max_bytes"
        )


def _lazy_tiff(path: Path) -> Any:
    """A lazy view of the first series: a memory map of an uncompressed contiguous TIFF, else a
    read-only Zarr array over the file (tifffile's ``aszarr`` store: compressed or tiled pages
    are decoded one chunk at a time when sliced); None when neither opens (read it whole)."""
    import tifffile

    try:
        return tifffile.memmap(path, mode="r")
    except ValueError:
        pass
    try:
        view = LazyTiff(path)
        logger.info("%s: compressed or tiled, not memory-mappable: read lazily chunk by chunk", path)
        return view
    except Exception as err:  # noqa: BLE001 - any failure of the lazy route falls back to a whole read
        logger.info("%s: no lazy view (%s); reading it whole", path, err)
        return None


class LazyTiff:
    """A compressed or tiled TIFF read chunk by chunk through tifffile's Zarr store, that can be
    sent to other processes (Dask workers): the store holds an open file and its lock, which do
    not pickle, so a copy carries the path and opens the file again on its first read."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._array = self._open()
        self.shape, self.dtype = tuple(self._array.shape), np.dtype(self._array.dtype)
        self.chunks, self.ndim = tuple(self._array.chunks), len(self.shape)

    def _open(self) -> Any:
        import tifffile
        import zarr

        return zarr.open(tifffile.imread(self.path, aszarr=True, series=0, level=0), mode="r")

    def __getitem__(self, key: Any) -> np.ndarray:
        if self._array is None:
            self._array = self._open()
        return self._array[key]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self[...], dtype=dtype)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_array": None}

    def __len__(self) -> int:
        return self.shape[0]


def _czyx_axes(shape: tuple, axes: str) -> tuple[list[int], str]:
    """Indices and letters of the axes `_to_czyx` keeps: Q/I read as Z, ImageJ time frames as Z
    slices when there is no Z axis, and singleton T, S and Z axes dropped."""
    axes = axes.replace("Q", "Z").replace("I", "Z")
    if "Z" not in axes and "T" in axes and shape[axes.index("T")] > 1:
        # ImageJ stacks saved as time frames (ilastik exports, some FIB-SEM tools): frames are slices
        axes = axes.replace("T", "Z")
    # a single slice is a 2D image (Y, X)
    keep = [i for i, a in enumerate(axes) if not (a in "TSZ" and shape[i] == 1)]
    return keep, "".join(axes[i] for i in keep)


def _needs_reorder(shape: tuple, axes: str) -> bool:
    """Whether `_to_czyx` would have to reshape or transpose an array of these axes."""
    keep, kept = _czyx_axes(shape, axes)
    order = [kept.index(a) for a in "CZYX" if a in kept]
    return len(keep) != len(axes) or order != sorted(order)


def _to_czyx(data: Any, axes: str, path: Path) -> Any:
    """Drop singleton T/S/Z axes and order the rest as (C, Z, Y, X)."""
    keep, kept = _czyx_axes(data.shape, axes)
    if len(keep) != len(axes):
        data = data.reshape(tuple(data.shape[i] for i in keep))
    axes = kept
    if "S" in axes:  # samples per pixel: greyscale stored as RGB(A) is read as grey, as for PNG
        data, axes = _grey_samples(np.asarray(data), axes, path)
    order = [axes.index(a) for a in "CZYX" if a in axes]
    if len(order) != len(axes):
        raise InputError(f"{path}: unsupported TIFF axes {axes!r}; expected some of C, Z, Y, X")
    return data if order == sorted(order) else np.transpose(np.asarray(data), order)


def _grey_samples(data: np.ndarray, axes: str, path: Path) -> tuple[np.ndarray, str]:
    """One channel of an RGB(A) TIFF whose red, green and blue are equal (a greyscale image
    exported as colour); InputError for colour pixels."""
    axis = axes.index("S")
    if data.shape[axis] not in (3, 4):
        raise InputError(f"{path}: expected a greyscale image, got {data.shape[axis]} samples per pixel (axes {axes})")
    red, green, blue = (np.take(data, i, axis=axis) for i in range(3))
    if not (np.array_equal(red, green) and np.array_equal(green, blue)):
        raise InputError(f"{path}: expected a greyscale image, got colour (RGB) pixels (axes {axes}); "
                         "convert it to greyscale first")
    return np.ascontiguousarray(red), axes.replace("S", "")


def _voxel_size(tif: Any, axes: str) -> tuple[float, ...] | None:
    spatial = [a for a in axes if a in "ZYX"]
    if tif.is_ome and tif.ome_metadata:
        return _ome_voxel_size(tif.ome_metadata, spatial)
    if tif.is_imagej and tif.imagej_metadata is not None:
        return _imagej_voxel_size(tif, spatial)
    return None


def _imagej_voxel_size(tif: Any, spatial: list[str]) -> tuple[float, ...] | None:
    meta = tif.imagej_metadata
    scale = unit_scale(meta.get("unit"), tif.filename)
    page = tif.pages[0]
    xres, yres = page.tags.get("XResolution"), page.tags.get("YResolution")
    if scale is None or xres is None or yres is None:
        return None
    x = scale * xres.value[1] / xres.value[0]
    y = scale * yres.value[1] / yres.value[0]
    sizes = {"X": _tidy(x), "Y": _tidy(y), "Z": _tidy(scale * float(meta.get("spacing", 1.0)))}
    return tuple(sizes[a] for a in spatial)


def _ome_voxel_size(xml: str, spatial: list[str]) -> tuple[float, ...] | None:
    sizes = {}
    for axis in spatial:
        value = re.search(rf'PhysicalSize{axis}="([^"]+)"', xml)
        unit = re.search(rf'PhysicalSize{axis}Unit="([^"]+)"', xml)
        scale = unit_scale(unit.group(1) if unit else "µm", "")
        if value is None or scale is None:
            if axis == "Z" and "X" in sizes:
                return None
            continue
        sizes[axis] = _tidy(scale * float(value.group(1)))
    if set(sizes) != set(spatial):
        return None
    return tuple(sizes[a] for a in spatial)


def _channel_names(tif: Any, axes: str, shape: tuple) -> tuple[str, ...]:
    if "C" not in axes:
        return ()
    n = shape[axes.index("C")]
    labels = (tif.imagej_metadata or {}).get("Labels") if tif.is_imagej else None
    if isinstance(labels, list) and len(labels) >= n:
        return tuple(str(v) for v in labels[:n])
    if tif.is_ome and tif.ome_metadata:
        names = re.findall(r'<Channel[^>]*Name="([^"]+)"', tif.ome_metadata)
        if len(names) >= n:
            return tuple(names[:n])
    return tuple(f"c{i}" for i in range(n))

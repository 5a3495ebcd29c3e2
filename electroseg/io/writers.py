"""Atomic writers: ImageJ TIFF, Zarr and JSON.

Every writer puts its output under a temporary name in the destination folder and renames it
when complete, so a failed write leaves no half-written file and never replaces a good one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from electroseg.errors import InputError
from electroseg.io._validate import check_voxel_size

logger = logging.getLogger(__name__)

#: Above this size a TIFF is written as BigTIFF (OME) instead of classic ImageJ TIFF (4 GB limit).
BIGTIFF_BYTES = 3_500_000_000


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds.

    On an exception the temporary file or folder is removed and ``path`` is left untouched.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_output(out) as tmp:
    ...     _ = tmp.write_text("done")
    >>> out.read_text()
    'done'
    """
    path = Path(path)
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise InputError(f"{parent}: expected a folder for outputs, found a file")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{parent}: cannot create the output folder ({err.strerror})") from err
    if not os.access(parent, os.W_OK):
        raise InputError(f"{parent}: the output folder is not writable")
    tmp = parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}{''.join(path.suffixes[-1:])}"
    try:
        yield tmp
        os.replace(tmp, path) if not tmp.is_dir() or not path.exists() else _replace_dir(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()


def _replace_dir(tmp: Path, path: Path) -> None:
    """Swap a finished temporary folder in for an existing one."""
    old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def _imagej_dtype(array: np.ndarray) -> np.ndarray:
    """ImageJ stores uint8, uint16 and float32; convert other dtypes losslessly where possible."""
    if array.dtype in (np.uint8, np.uint16, np.float32):
        return array
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.dtype.kind in "iu" and array.size and array.min() >= 0 and array.max() <= 65535:
        return array.astype(np.uint16)
    return array.astype(np.float32)


def write_tiff(
    path: str | os.PathLike,
    array: Any,
    *,
    voxel_size: Any = None,
    channels: tuple[str, ...] = (),
    metadata: dict[str, Any] | None = None,
    phases: tuple[str, ...] | list[str] = (),
) -> Path:
    """Write an image or label array as ImageJ TIFF that Fiji and napari open with its voxel size.

    Parameters
    ----------
    path : path
        Destination ``.tif``; written atomically.
    array : array-like
        (Z, Y, X), (Y, X), or (C, Z, Y, X) when ``channels`` names several channels.
    voxel_size : sequence of float, optional
        Micrometres per voxel in array order ((z, y, x) or (y, x)).
    channels : tuple of str
        Channel names for a multi-channel array (stored in the ImageJ ``Labels``).
    metadata : dict, optional
        Extra ImageJ metadata entries (strings or numbers).
    phases : sequence of str, optional
        For a label array: the phase of each value, stored as the ImageJ property
        ``phases = "0:pore 1:cbd 2:am"`` (Fiji: Image > Show Info; `label_phases` reads it back).

    Returns
    -------
    Path
        ``path``.

    Notes
    -----
    Arrays over ~3.5 GB are written as OME BigTIFF with ``PhysicalSize*`` instead (ImageJ TIFF
    is limited to 4 GB); `electroseg.io.read_volume` reads both.
    """

    array = _imagej_dtype(np.asarray(array))
    if phases:
        metadata = {**(metadata or {}), "phases": " ".join(f"{i}:{p}" for i, p in enumerate(phases))}
    spatial = array.ndim - (1 if len(channels) > 1 else 0)
    voxel_size = check_voxel_size(voxel_size, spatial, str(path))
    with atomic_output(path) as tmp:
        if array.nbytes > BIGTIFF_BYTES:
            _write_ome_bigtiff(tmp, array, voxel_size, channels, phases)
        else:
            _write_imagej(tmp, array, voxel_size, channels, metadata or {})
    logger.debug("wrote %s %s %s", path, array.shape, array.dtype)
    return Path(path)


def label_phases(path: str | os.PathLike) -> tuple[str, ...] | None:
    """The phases a label TIFF written with ``phases`` records (value i = phase i), else None:
    the ImageJ property ``phases``, or in an OME-TIFF the MapAnnotation of namespace
    :data:`OME_PHASES_NAMESPACE`."""
    import tifffile

    with tifffile.TiffFile(str(path)) as tif:
        recorded = (tif.imagej_metadata or {}).get("phases")
        ome = tif.ome_metadata if tif.is_ome else None
    if recorded:
        pairs = [item.split(":", 1) for item in str(recorded).split()]
        return tuple(name for _, name in sorted((int(i), name) for i, name in pairs))
    return _ome_phases(ome) if ome else None


def _ome_phases(xml: str) -> tuple[str, ...] | None:
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    for element in root.iter():
        if element.tag.endswith("MapAnnotation") and element.get("Namespace") == OME_PHASES_NAMESPACE:
            named = {int(m.get("K")): (m.text or "") for m in element.iter() if m.tag.endswith("}M") or m.tag == "M"}
            if named and sorted(named) == list(range(len(named))):
                return tuple(named[i] for i in range(len(named)))
    return None


def _write_imagej(tmp: Path, array: np.ndarray, voxel_size, channels, extra) -> None:
    import tifffile

    multichannel = len(channels) > 1
    axes = ("C" if multichannel else "") + ("ZYX"[-(array.ndim - multichannel):])
    if multichannel and "Z" in axes:  # ImageJ hyperstacks are ordered TZCYX
        array, axes = np.moveaxis(array, 0, 1), "ZCYX"
    meta: dict[str, Any] = {"axes": axes, **extra}
    kwargs: dict[str, Any] = {}
    if multichannel:
        meta["Labels"] = list(channels) * (array.shape[0] if axes == "ZCYX" else 1)
    if voxel_size is not None:
        meta["unit"] = "um"
        if len(voxel_size) == 3:
            meta["spacing"] = voxel_size[0]
        kwargs["resolution"] = (1.0 / voxel_size[-1], 1.0 / voxel_size[-2])
    tifffile.imwrite(tmp, array, imagej=True, metadata=meta, **kwargs)


#: Namespace of the OME MapAnnotation that names the phases of a label OME-TIFF.
OME_PHASES_NAMESPACE = "electroseg/phases"


def _ome_metadata(ndim: int, voxel_size, channels=(), phases=None) -> dict[str, Any]:
    """OME metadata (axes, ``PhysicalSize*`` in µm, channel names, phases) for tifffile."""
    multichannel = len(channels) > 1
    meta: dict[str, Any] = {"axes": ("C" if multichannel else "") + "ZYX"[-(ndim - multichannel):]}
    if voxel_size is not None:
        for axis, size in zip("ZYX"[-len(voxel_size):], voxel_size):
            meta[f"PhysicalSize{axis}"] = size
            meta[f"PhysicalSize{axis}Unit"] = "µm"
    if multichannel:
        meta["Channel"] = {"Name": list(channels)}
    if phases:
        meta["MapAnnotation"] = {"Namespace": OME_PHASES_NAMESPACE, **{str(i): str(p) for i, p in enumerate(phases)}}
    return meta


def _write_ome_bigtiff(tmp: Path, array: np.ndarray, voxel_size, channels, phases=None) -> None:
    import tifffile

    tifffile.imwrite(tmp, array, bigtiff=True, ome=True,
                     metadata=_ome_metadata(array.ndim, voxel_size, channels, phases))


class BigTiffSlabs:
    """An uncompressed OME BigTIFF of ``shape`` (Z, ...), filled by whole Z slabs in any order.

    ``out[z0:z1] = slab`` writes the slab's bytes straight into the file (no memory map, so the
    process's resident memory does not grow with the file). Fiji, napari and
    `electroseg.io.read_volume` open the result with its voxel size. The caller makes it atomic
    (create it at an `atomic_output` path).
    """

    def __init__(self, path: str | os.PathLike, shape: tuple[int, ...], dtype, *, voxel_size=None,
                 phases=None) -> None:
        import tifffile

        self.path, self.shape, self.dtype = Path(path), tuple(int(n) for n in shape), np.dtype(dtype)
        voxel_size = check_voxel_size(voxel_size, len(self.shape), str(path))
        created = tifffile.memmap(str(self.path), shape=self.shape, dtype=self.dtype, bigtiff=True, ome=True,
                                  metadata=_ome_metadata(len(self.shape), voxel_size, phases=phases))
        self.offset = int(created.offset)  # contiguous image data starts here
        del created
        self.slice_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize

    def __setitem__(self, key: slice, value: np.ndarray) -> None:
        start, stop, step = key.indices(self.shape[0])
        data = np.ascontiguousarray(value, dtype=self.dtype)
        if step != 1 or data.shape != (stop - start, *self.shape[1:]):
            raise ValueError(f"{self.path}: expected a slab of shape {(stop - start, *self.shape[1:])}, got {data.shape}")
        with open(self.path, "r+b") as f:
            f.seek(self.offset + start * self.slice_bytes)
            data.tofile(f)


def write_zarr(
    path: str | os.PathLike,
    array: Any,
    *,
    voxel_size: Any = None,
    chunks: tuple[int, ...] | None = None,
    phases: Sequence[str] | None = None,
) -> Path:
    """Write ``array`` to an OME-Zarr image folder (atomically), scale = voxel size (µm).

    With ``phases`` it is a label image: value i is ``phases[i]``, named with a colour in its
    ``image-label`` metadata (:mod:`electroseg.io.ngff`); else a greyscale image. ``array``
    may be a NumPy or dask array; it is written chunk by chunk.
    """
    from electroseg.io.ngff import create_image, create_labels

    voxel_size = check_voxel_size(voxel_size, len(array.shape), str(path))
    chunks = chunks or default_chunks(array.shape)
    with atomic_output(path) as tmp:
        if phases:
            out = create_labels(tmp, array.shape, chunks=chunks, voxel_size=voxel_size, phases=phases,
                                dtype=array.dtype)
        else:
            out = create_image(tmp, array.shape, chunks=chunks, voxel_size=voxel_size, dtype=array.dtype)
        step = chunks[0]
        for start in range(0, array.shape[0], step):
            out[start:start + step] = np.asarray(array[start:start + step])
    return Path(path)


def default_chunks(shape: tuple[int, ...], target_bytes: int = 8_000_000) -> tuple[int, ...]:
    """Chunks of whole planes, several planes deep, about ``target_bytes`` each (for uint8)."""
    plane = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    depth = max(1, min(shape[0], target_bytes // max(plane, 1)))
    return (int(depth), *shape[1:])


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return _finite_or_none(float(value))
    if isinstance(value, np.ndarray):
        return _clean_nonfinite(value.tolist())
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _clean_nonfinite(obj: Any) -> Any:
    """Replace NaN and infinities by None (JSON null) anywhere in a nested structure."""
    if isinstance(obj, float):
        return _finite_or_none(obj)
    if isinstance(obj, dict):
        return {k: _clean_nonfinite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_nonfinite(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically; NaN and infinities become null."""
    text = json.dumps(_clean_nonfinite(obj), indent=2, default=_json_default, allow_nan=False)
    with atomic_output(path) as tmp:
        tmp.write_text(text + "\n")
    return Path(path)

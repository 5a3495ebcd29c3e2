"""Larger-than-memory prediction: lazy input read slab by slab, labels streamed to Zarr or BigTIFF."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from electroseg.errors import InputError
from electroseg.inference.engine import Sink, check_probabilities, plan_windows, run_model
from electroseg.inference.inputs import lazy_volume, make_source, resolve_setup
from electroseg.inference.predict import ChunkedPrediction
from electroseg.io import atomic_output

logger = logging.getLogger(__name__)


TIFF_SUFFIXES = (".tif", ".tiff")


def _is_tiff(path: Path) -> bool:
    return path.suffix.lower() in TIFF_SUFFIXES


class SlabSink(Sink):
    """Buffers final rows into Z slabs of ``slab_size`` and writes each slab once.

    Labels go to an OME-Zarr label image (chunk-aligned slabs; :mod:`electroseg.io.ngff`) or,
    for a ``.tif`` path, to an uncompressed OME BigTIFF written slab by slab; probabilities
    always to an OME-Zarr image.
    """

    def __init__(self, labels_path: Path, shape: tuple[int, int, int], *, slab_size: int,
                 voxel_size: Sequence[float] | None, probabilities_path: Path | None = None,
                 probabilities_dtype: str | None = None, tiff: bool = False,
                 phases: Sequence[str] | None = None) -> None:
        from electroseg.io import BigTiffSlabs
        from electroseg.io.ngff import create_labels

        self.shape, self.slab = shape, int(min(slab_size, shape[0]))
        self.chunks = (self.slab, min(shape[1], 1024), min(shape[2], 1024))
        self.voxel_size, self.phases = voxel_size, tuple(phases or ())
        if tiff:
            self.labels = BigTiffSlabs(labels_path, shape, np.uint8, voxel_size=voxel_size,
                                       phases=self.phases or None)
        else:
            self.labels = create_labels(labels_path, shape, chunks=self.chunks, voxel_size=voxel_size,
                                        phases=self.phases or None)
        self.probabilities_path = probabilities_path
        self.probabilities_dtype = probabilities_dtype if probabilities_path is not None else None
        self.probabilities = None
        self.start, self.filled = 0, 0
        self.buffer = np.zeros((self.slab, *shape[1:]), np.uint8)
        self.pbuffer: np.ndarray | None = None

    def write(self, z0, labels, probabilities) -> None:
        done = 0
        while done < labels.shape[0]:
            take = min(labels.shape[0] - done, self.slab - self.filled)
            self.buffer[self.filled:self.filled + take] = labels[done:done + take]
            if probabilities is not None:
                if self.pbuffer is None:
                    self.pbuffer = np.zeros((probabilities.shape[0], *self.buffer.shape), probabilities.dtype)
                self.pbuffer[:, self.filled:self.filled + take] = probabilities[:, done:done + take]
            self.filled += take
            done += take
            if self.filled == self.slab or self.start + self.filled == self.shape[0]:
                self.flush()

    def flush(self) -> None:
        """Write the buffered rows (a whole slab except at the end of the volume)."""
        if not self.filled:
            return
        end = self.start + self.filled
        self.labels[self.start:end] = self.buffer[:self.filled]
        if self.pbuffer is not None:
            if self.probabilities is None:
                self.probabilities = self._open_probabilities(self.pbuffer.shape[0], self.pbuffer.dtype)
            self.probabilities[:, self.start:end] = self.pbuffer[:, :self.filled]
        self.start, self.filled = end, 0

    def _open_probabilities(self, n_classes: int, dtype):
        from electroseg.io.ngff import create_probabilities

        phases = self.phases if len(self.phases) == n_classes else tuple(f"phase{i}" for i in range(n_classes))
        return create_probabilities(self.probabilities_path, (n_classes, *self.shape), chunks=(1, *self.chunks),
                                    voxel_size=self.voxel_size, phases=phases, dtype=dtype)


def predict_chunked(
    model: Any,
    volume: Any,
    out_path: str | os.PathLike,
    *,
    slab_size: int = 64,
    probabilities_path: str | os.PathLike | None = None,
    probabilities: str = "float16",
    voxel_size: Sequence[float] | None = None,
    spec: Any = None,
    patch_size: Sequence[int] | None = None,
    overlap: float = 0.25,
    batch_size: int | None = None,
    tta: bool = False,
    device: Any = None,
    precision: str = "auto",
    progress: bool = False,
    volume_fractions: Mapping[str, float] | None = None,
    intensity_window: Any = None,
) -> ChunkedPrediction:
    """Segment a volume that need not fit in memory; labels go to Zarr or BigTIFF at ``out_path``.

    Parameters
    ----------
    model : LoadedModel or torch.nn.Module
        As :func:`predict_volume`.
    volume : path, Volume or array-like
        A path is opened with ``read_volume(path, lazy=True)`` (TIFF memory map, Zarr, HDF5, .npy).
        (Z, Y, X), or (C, Z, Y, X) channels first for several detectors.
    out_path : path
        Where the uint8 labels go, written atomically: a Zarr array folder (chunks of
        ``slab_size`` slices; ``attrs["voxel_size_um"]`` holds the voxel size when known), or for a
        ``.tif``/``.tiff`` name an uncompressed OME BigTIFF (``PhysicalSize*`` in µm) filled slab
        by slab, which Fiji opens directly.
    slab_size : int
        Z slices buffered before each write (Zarr chunk depth).
    probabilities_path : path, optional
        Zarr array folder for (K, Z, Y, X) probabilities in ``probabilities`` dtype.
    other parameters
        As :func:`predict_volume`.

    Returns
    -------
    ChunkedPrediction

    Notes
    -----
    Runs the same engine as :func:`predict_volume` (window rows streamed along Z, each reading
    the input slab its windows need), so the labels are identical to the in-memory path's.
    Normalisation bounds come from the same strided sample, read one slice at a time. Memory:
    about (K + C + 1) x 4 bytes x patch_z x Y x X plus one slab of output.
    """
    check_probabilities(probabilities)
    if int(slab_size) < 1:
        raise InputError(f"slab_size: expected a positive integer, got {slab_size}")
    setup = resolve_setup(model, spec=spec, patch_size=patch_size, intensity_window=intensity_window)
    plan = plan_windows(setup, overlap=overlap, batch_size=batch_size, tta=tta, device=device, precision=precision)
    lazy = lazy_volume(volume, voxel_size)
    source, two_d = make_source(lazy, setup, lazy_only=True)
    if two_d:
        raise InputError(f"{lazy.name}: chunked prediction is for (Z, Y, X) volumes; use predict_volume for 2-D images")
    out_path = Path(out_path)
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_output(out_path))
        tmp_p = None if probabilities_path is None else stack.enter_context(atomic_output(probabilities_path))
        sink = SlabSink(tmp, source.shape[1:], slab_size=slab_size, voxel_size=lazy.voxel_size,
                        probabilities_path=tmp_p, probabilities_dtype=probabilities, tiff=_is_tiff(out_path),
                        phases=setup.phases)
        run_model(setup, plan, source, sink, progress=progress, what=out_path.name,
             volume_fractions=volume_fractions)
        sink.flush()
    logger.info("wrote %s %s", out_path, source.shape[1:])
    return ChunkedPrediction(out_path, None if probabilities_path is None else Path(probabilities_path),
                             tuple(source.shape[1:]), setup.phases, tuple(b.to_dict() for b in source.bounds))

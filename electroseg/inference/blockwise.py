"""Prediction of volumes beyond one machine on Dask: Z slabs with halos, labels to Zarr.

Each task reads one Z slab plus ``halo`` slices on either side (clipped to the volume),
normalises it with intensity bounds computed once for the whole volume (so every slab sees the
same window as the in-memory path), runs :func:`electroseg.inference.predict_volume` on it and
keeps the slab's own slices. The slabs are stored, chunk-aligned, into one Zarr array with
``dask.array.store``; the whole output is written under a temporary name and renamed at the end.

Exactness: models that look at a fixed number of neighbouring slices (multichannel2d with
``context_slices``; pointwise networks) give labels identical to ``predict_volume`` on the whole
volume whenever ``halo >= context_slices``. A unet3d's windows are laid on each slab's own Z
grid, so its blended logits differ slightly from the whole-volume grid near slab boundaries;
``halo`` (default one patch depth) keeps every kept slice at least a patch away from a slab end.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from electroseg.errors import InputError
from electroseg.inference.inputs import lazy_volume, make_source, resolve_setup
from electroseg.inference.predict import ChunkedPrediction, predict_volume
from electroseg.io import atomic_output

logger = logging.getLogger(__name__)

__all__ = ["predict_blockwise"]


@functools.lru_cache(maxsize=2)
def _cached_checkpoint(path: str):
    """One load per worker process and checkpoint, however many slabs it predicts."""
    from electroseg.inference.checkpoint import load_checkpoint

    return load_checkpoint(path)


def _model(model: Any):
    return _cached_checkpoint(str(model)) if isinstance(model, (str, os.PathLike)) else model


def predict_blockwise(
    model: Any,
    volume: Any,
    out_path: str | os.PathLike,
    *,
    slab_size: int = 64,
    halo: int | None = None,
    voxel_size: Sequence[float] | None = None,
    patch_size: Sequence[int] | None = None,
    overlap: float = 0.25,
    batch_size: int | None = None,
    tta: bool = False,
    device: Any = None,
    precision: str = "auto",
    torch_threads: int | None = None,
    client: Any = None,
    scheduler_address: str | None = None,
    volume_fractions: Mapping[str, float] | None = None,
    intensity_window: Any = None,
) -> ChunkedPrediction:
    """Segment a (Z, Y, X) volume slab by slab on a Dask cluster; labels go to Zarr.

    Parameters
    ----------
    model : path or LoadedModel
        A checkpoint path is loaded once in each worker process (preferred on a cluster: the
        task graph then carries the path, not the weights).
    volume : path, Volume or array-like
        Zarr / OME-Zarr path (read lazily), or a lazy array: (Z, Y, X), or (C, Z, Y, X)
        channels first. Workers must be able to read it (shared file system).
    out_path : path
        OME-Zarr label image (:mod:`electroseg.io.ngff`) of uint8 labels, chunks
        ``(slab_size, min(Y, 1024), min(X, 1024))``, written atomically; its scale is the voxel
        size when known, and it names the phases.
    slab_size : int
        Z slices per task (and Zarr chunk depth).
    halo : int, optional
        Extra slices read on each side of a slab; default ``context_slices`` for 2-D/2.5D
        models and the patch depth for unet3d.
    voxel_size, patch_size, overlap, batch_size, tta, device, precision
        As :func:`electroseg.inference.predict_chunked`.
    torch_threads : int, optional
        ``torch.set_num_threads`` in each task (avoid oversubscribing a worker's cores).
    client, scheduler_address
        Where to run (see :func:`electroseg.analysis.blockwise.compute`); default dask's
        current scheduler.
    volume_fractions : mapping phase -> fraction, optional
        Known volume fractions of the volume: the logit offsets are fitted once, here, on the
        whole volume's normalised source (as :func:`electroseg.inference.predict_volume` does)
        and every task applies them.

    Returns
    -------
    ChunkedPrediction

    Notes
    -----
    Slab ``[z0, z1)`` is predicted from input slices ``[max(0, z0 - h), min(Z, z1 + h))``
    and cropped back to ``[z0, z1)``. Memory per task: the input slab with halos as float32
    per channel, plus what ``predict_volume`` needs for it.
    """
    import dask
    import dask.array as da

    if int(slab_size) < 1:
        raise InputError(f"slab_size: expected a positive integer, got {slab_size}")
    loaded = _model(model)
    setup = resolve_setup(loaded, patch_size=patch_size, intensity_window=intensity_window)
    lazy = lazy_volume(volume, voxel_size)
    # global normalisation bounds, computed once; preprocess steps would need the whole volume
    source, two_d = make_source(lazy, setup, lazy_only=True)
    if two_d:
        raise InputError(f"{lazy.name}: block-wise prediction is for (Z, Y, X) volumes; "
                         f"use predict_volume for 2-D images")
    if isinstance(source.data, np.ndarray) and (client is not None or scheduler_address is not None):
        logger.warning("%s: the input is a NumPy array (or memory map); it travels to the "
                       "workers inside the task graph. Convert it to Zarr for a cluster.", lazy.name)
    halo = _halo(halo, setup)
    spec = _prenormalised_spec(loaded)
    n_z, shape = source.shape[1], tuple(source.shape[1:])
    options = dict(patch_size=patch_size or setup.patch_size, overlap=overlap,
                   batch_size=batch_size, tta=tta, device=device, precision=precision)
    bias = None if not volume_fractions else _fit_offsets(setup, source, options, volume_fractions, lazy.name)
    shared_source, shared_model = dask.delayed(source), dask.delayed(model if isinstance(
        model, (str, os.PathLike)) else loaded)
    slabs = []
    for z0 in range(0, n_z, int(slab_size)):
        z1 = min(n_z, z0 + int(slab_size))
        task = dask.delayed(_predict_slab, pure=True)(
            shared_source, shared_model, spec, z0, z1, halo, options, torch_threads, bias)
        slabs.append(da.from_delayed(task, shape=(z1 - z0, *shape[1:]), dtype=np.uint8))
    labels = da.concatenate(slabs, axis=0)
    out_path = Path(out_path)
    with atomic_output(out_path) as tmp:
        target = _open_output(tmp, shape, int(slab_size), lazy.voxel_size, setup.phases)
        stored = da.store(labels, target, lock=False, compute=False)
        from electroseg.parallel import compute

        compute(stored, client=client, scheduler_address=scheduler_address)
    logger.info("wrote %s %s in %d slabs (halo %d)", out_path, shape, len(slabs), halo)
    return ChunkedPrediction(out_path, None, shape, setup.phases)


def _halo(halo: int | None, setup) -> int:
    if halo is None:
        return int(setup.patch_size[0]) if setup.kind == "unet3d" else int(setup.context_slices)
    if isinstance(halo, bool) or not isinstance(halo, (int, np.integer)) or halo < 0:
        raise InputError(f"halo: expected a non-negative number of slices, got {halo!r}")
    if halo < setup.context_slices:
        raise InputError(f"halo: the model reads {setup.context_slices} neighbouring slices on "
                         f"each side; expected halo >= {setup.context_slices}, got {halo}")
    return int(halo)


def _prenormalised_spec(loaded: Any) -> Any:
    """The model's spec with normalisation off: slabs arrive already normalised (and
    checkpoints with preprocess steps are refused before this)."""
    spec = getattr(loaded, "spec", None)
    if spec is None:
        return None
    return dataclasses.replace(spec, normalization={"method": "none"}, preprocess=())


def _open_output(path: Path, shape: tuple[int, ...], slab: int, voxel_size: Any, phases) -> Any:
    from electroseg.io.ngff import create_labels

    chunks = (min(slab, shape[0]), min(shape[1], 1024), min(shape[2], 1024))
    return create_labels(path, shape, chunks=chunks, voxel_size=voxel_size, phases=phases)


def _fit_offsets(setup, source, options: dict, fractions, where: str) -> np.ndarray:
    """Logit offsets for ``fractions`` on the whole (lazy) source, fitted in this process."""
    from electroseg.inference.calibrate import fit_offsets
    from electroseg.inference.engine import prepare_network
    from electroseg.inference.engine import plan_windows

    plan = plan_windows(setup, overlap=options["overlap"], batch_size=options["batch_size"], tta=options["tta"],
                 device=options["device"], precision=options["precision"])
    network = prepare_network(setup.network, plan.device, plan.autocast_dtype)
    return fit_offsets(network, setup, source, plan, fractions, where=where)


def _predict_slab(source: Any, model: Any, spec: Any, z0: int, z1: int, halo: int,
                  options: dict, torch_threads: int | None, bias: np.ndarray | None = None) -> np.ndarray:
    """Labels (z1 - z0, Y, X) of one slab, predicted with ``halo`` slices of context (and the
    logit offsets ``bias`` of a volume-fraction calibration)."""
    if torch_threads is not None:
        import torch

        torch.set_num_threads(int(torch_threads))
    a, b = max(0, z0 - halo), min(source.shape[1], z1 + halo)
    slab = source.read(a, b)  # (C, b - a, Y, X) float32, normalised with the global bounds
    image = slab if slab.shape[0] > 1 else slab[0]
    model = _model(model)
    if bias is not None:
        from electroseg.models import LogitBias

        calibrated = LogitBias(getattr(model, "network", model), bias).eval()
        model = dataclasses.replace(model, network=calibrated) if hasattr(model, "spec") else calibrated
    labels = predict_volume(model, image, spec=spec, **options).labels
    return labels[z0 - a:z1 - a]

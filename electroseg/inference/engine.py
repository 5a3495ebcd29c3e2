"""Streaming sliding-window engine shared by the in-memory and the chunked (larger-than-memory) path.

Both paths run the *same* loop: windows are laid on a grid over the whole volume and processed
row by row along Z (3-D) or in groups of whole slices aligned to the volume start (2-D / 2.5D).
Blended logits of a Z range are final as soon as no later window row reaches it, so they are
turned into labels and handed to a sink (a NumPy array or a Zarr store) and the accumulator
rolls on. Memory is one window row deep: (K, patch_z, Y, X) float32, whatever the volume depth.
Because the grid, the batches and the order of accumulation do not depend on where the output
goes, the in-memory and the chunked path give bit-identical labels; the slab of input read for
each row is exactly the halo the blended result needs.

This module owns planning and running one input (:func:`plan_windows`, :func:`run_model`);
``predict_volume``, ``predict_chunked`` and ``predict_blockwise`` differ only in where the
source comes from and where the sink writes.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from electroseg.errors import InputError
from electroseg.inference.normalize import ChannelBounds
from electroseg.inference.windows import (check_precision, choose_device, importance_map, resolve_precision,
                                         window_starts)
from electroseg.models import channels_last_network

logger = logging.getLogger(__name__)

_FLIPS = ((), (-1,), (-2,), (-2, -1))  # in-plane (Y, X) flips for test-time augmentation


@dataclass(frozen=True)
class WindowPlan:
    """How windows are cut and run: patch size (spatial), overlap in [0, 1), windows per batch."""

    patch_size: tuple[int, ...]
    overlap: float
    batch_size: int
    tta: bool
    device: torch.device
    autocast_dtype: torch.dtype | None


class Source:
    """Normalised float32 Z slabs of a (C, Z, Y, X) view of a possibly lazy array.

    ``channel_index`` selects (and orders) channels of a channels-first array; ``None`` means
    the array has no channel axis. Z indices outside the volume repeat the edge slice.
    """

    def __init__(self, data, *, channel_index: Sequence[int] | None,
                 bounds: Sequence[ChannelBounds]) -> None:
        self.data = data
        self.channel_index = None if channel_index is None else list(channel_index)
        self.bounds = list(bounds)
        spatial = data.shape[1:] if channel_index is not None else data.shape
        self.shape = (len(self.bounds), *(int(n) for n in spatial))

    def channel(self, c: int):
        """Channel ``c`` as a (Z, Y, X) view (lazy if the data is lazy)."""
        return self.data if self.channel_index is None else _ChannelView(self.data, self.channel_index[c])

    def read(self, z0: int, z1: int) -> np.ndarray:
        """Normalised slab (C, z1 - z0, Y, X), float32; edges replicated outside [0, Z)."""
        return self._slab(z0, z1, lambda c, raw: self.bounds[c].apply(raw))

    def read_raw(self, z0: int, z1: int) -> np.ndarray:
        """The same slab before normalisation, in the data's own dtype."""
        return self._slab(z0, z1, lambda c, raw: raw)

    def _slab(self, z0: int, z1: int, convert) -> np.ndarray:
        n_z = self.shape[1]
        a, b = min(max(z0, 0), n_z - 1), max(min(z1, n_z), 1)
        out = None
        for c in range(self.shape[0]):
            raw = self.data[a:b] if self.channel_index is None else self.data[self.channel_index[c], a:b]
            part = convert(c, np.asarray(raw))
            if out is None:
                out = np.empty((self.shape[0], b - a, *self.shape[2:]), part.dtype)
            out[c] = part
        if (a, b) != (z0, z1):
            out = np.pad(out, ((0, 0), (a - z0, z1 - b), (0, 0), (0, 0)), mode="edge")
        return out

    def normalize_tensor(self, raw: torch.Tensor) -> torch.Tensor:
        """:meth:`read`'s normalisation of a raw (C, n, Y, X) tensor, done where the tensor is
        (:meth:`ChannelBounds.apply_tensor` per channel)."""
        out = raw.to(torch.float32)
        for c, bounds in enumerate(self.bounds):
            bounds.apply_tensor(out[c])
        return out


class _ChannelView:
    """``data[c]`` of a channels-first array without loading it."""

    def __init__(self, data, c: int) -> None:
        self.data, self.c = data, c
        self.shape = tuple(int(n) for n in data.shape[1:])
        self.dtype = getattr(data, "dtype", None)

    def __getitem__(self, key):
        return self.data[(self.c, key) if not isinstance(key, tuple) else (self.c, *key)]


class Sink:
    """Receives final labels (n, Y, X) uint8 and probabilities (K, n, Y, X) in Z order."""

    probabilities_dtype: str | None = None
    temperature: float = 1.0  # set by run_model from the checkpoint (its fitted temperature)

    def emit(self, z0: int, logits: torch.Tensor) -> None:
        """Take blended logits (K, n, Y, X) of rows ``z0 ..``: argmax (first maximum wins) and,
        when ``probabilities_dtype`` is set, ``softmax(logits / temperature)`` as float16 or
        uint8 ``round(255 p)``.

        ``logits`` is a view of the engine's accumulator, overwritten after the call: a sink
        that keeps logits copies them."""
        labels = _argmax_classes(logits).cpu().numpy()
        probabilities = None
        if self.probabilities_dtype is not None:
            p = torch.softmax(logits / self.temperature if self.temperature != 1.0 else logits, 0)
            if self.probabilities_dtype == "uint8":
                probabilities = torch.round(p * 255).to(torch.uint8).cpu().numpy()
            else:
                probabilities = p.to(torch.float16).cpu().numpy()
        self.write(z0, labels, probabilities)

    def write(self, z0: int, labels: np.ndarray, probabilities: np.ndarray | None) -> None:
        raise NotImplementedError


class ArraySink(Sink):
    """Collects the prediction in memory."""

    def __init__(self, shape: tuple[int, int, int], *, probabilities_dtype: str | None) -> None:
        self.labels = np.zeros(shape, np.uint8)
        self.probabilities: np.ndarray | None = None
        self.probabilities_dtype = probabilities_dtype

    def write(self, z0, labels, probabilities) -> None:
        self.labels[z0:z0 + labels.shape[0]] = labels
        if probabilities is not None:
            if self.probabilities is None:
                shape = (probabilities.shape[0], *self.labels.shape)
                self.probabilities = np.zeros(shape, probabilities.dtype)
            self.probabilities[:, z0:z0 + labels.shape[0]] = probabilities


def _argmax_classes(logits: torch.Tensor) -> torch.Tensor:
    """``logits.argmax(0)`` as uint8, first maximum winning on ties.

    A loop over the few classes: torch's argmax over the leading axis of a strided slab is
    about 20x slower on CPU (benchmarks/inference.py).
    """
    best = logits[0].clone()
    labels = torch.zeros(best.shape, dtype=torch.uint8, device=logits.device)
    for k in range(1, logits.shape[0]):
        better = logits[k] > best
        labels.masked_fill_(better, k)
        torch.maximum(best, logits[k], out=best)
    return labels


_PREPARED: contextvars.ContextVar[dict | None] = contextvars.ContextVar("electroseg_prepared", default=None)


@contextlib.contextmanager
def reuse_prepared_networks() -> Iterator[None]:
    """Inside this block, :func:`prepare_network` hands back the network it prepared before for
    the same module, device and autocast dtype instead of tracing and freezing it again.

    For a batch of inputs predicted with one checkpoint, whose weights do not change in between
    (``predict_batch``). On 2 CPU cores a fresh graph costs 0.2-0.4 s to trace and freeze plus
    its first batches' kernel set-up: eight 768 x 1024 SEM images go through 1.9-2.0x faster,
    eight 32 x 256 x 256 volumes 1.6x (benchmarks/batch.py). Outside such a block every call
    prepares afresh, so weights changed between calls are always used.
    """
    token = _PREPARED.set({})
    try:
        yield
    finally:
        _PREPARED.reset(token)


def prepare_network(network: nn.Module, device: torch.device,
                    autocast_dtype: torch.dtype | None = None) -> nn.Module:
    """:func:`_prepare_network`, or inside :func:`reuse_prepared_networks` the network it
    prepared before for the same arguments."""
    cache = _PREPARED.get()
    if cache is None:
        return _prepare_network(network, device, autocast_dtype)
    key = (id(network), str(device), autocast_dtype)
    if key not in cache or cache[key][0] is not network:  # the module is kept, so its id is not reused
        cache[key] = (network, _prepare_network(network, device, autocast_dtype))
    return cache[key][1]


def _prepare_network(network: nn.Module, device: torch.device,
                     autocast_dtype: torch.dtype | None = None) -> nn.Module:
    """Network in eval mode on ``device``; on the CPU, run channels-last, traced and frozen;
    on CUDA under fp16 autocast, run channels-last (a copy).

    On an H100, the default unet3d on 4116 16x96x96 windows (network alone): fp16 1.40 s
    channels-first, 0.74-0.80 s channels-last; float32 and bf16 gain nothing from the layout
    (1.10 -> 1.22 s, 1.61 -> 1.60 s), so they stay channels-first.

    On the CPU, :func:`~electroseg.models.channels_last_network` runs the convolutions
    channels-last with a copy-free instance norm, and :class:`_FrozenOnFirstCall` turns that
    into a frozen TorchScript graph at the first batch (the weights cast to bf16 once instead
    of on every call, no Python dispatch of the small layers). Logits equal the eager
    channels-first network's to bf16 rounding (tests/models/test_layout.py).
    Two 16x96x96 windows of the default unet3d per forward pass under bf16 autocast, medians
    of 12 interleaved rounds in one process: channels-first frozen 33-43 ms (it varies with
    glibc's mmap threshold: its temporaries page-fault), channels-last with PyTorch's instance
    norm 31-44 ms (the norm's layout copies eat the convolution gain), channels-last with the
    copy-free norm 25-27 ms; end to end (benchmarks/inference.py, 128x512x512, medians of
    3 rounds in 3 runs) 3.2 -> 3.7-4.2 Mvoxel/s (4.1-4.5 once run_3d stopped allocating its
    blending buffers per row). Multichannel2d forward passes are unchanged
    (33 against 32 ms).
    torch.compile (inductor, freezing) was slower than the frozen graph.
    """
    network = network.eval().to(device)
    if device.type == "cuda" and autocast_dtype == torch.float16:
        return channels_last_network(network, copy_free_norm=False).eval()
    if device.type != "cpu":
        return network
    return _FrozenOnFirstCall(channels_last_network(network).eval())


class _FrozenOnFirstCall(nn.Module):
    """Traces and freezes ``network`` (``torch.jit.trace`` + ``torch.jit.freeze``) on the first
    batch, under the autocast state of that call, and runs the frozen graph from then on.

    The engine calls it with one precision and fixed-size windows; a traced graph also runs
    other batch and window sizes. A network that cannot be traced runs eagerly (logged once).
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.frozen: torch.jit.ScriptModule | nn.Module | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frozen is None:
            import warnings

            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self.frozen = torch.jit.freeze(torch.jit.trace(self.network, x, check_trace=False))
            except Exception as err:  # noqa: BLE001 - any tracing failure: fall back to eager
                logger.info("network not traceable (%s); running it eagerly", str(err).splitlines()[0][:120])
                self.frozen = self.network
        return self.frozen(x)


def _forward(network: nn.Module, batch: torch.Tensor, plan: WindowPlan) -> torch.Tensor:
    """Float32 logits of ``batch``; averaged over in-plane flips when ``plan.tta``."""
    flips = _FLIPS if plan.tta else _FLIPS[:1]
    total = None
    with torch.autocast(plan.device.type, dtype=plan.autocast_dtype or torch.bfloat16,
                        enabled=plan.autocast_dtype is not None):
        for dims in flips:
            inp = batch.flip(dims) if dims else batch
            out = network(inp.contiguous()).float()
            out = out.flip(dims) if dims else out
            total = out if total is None else total + out
    return total / len(flips) if len(flips) > 1 else total


def _padded(slab: np.ndarray, padded_yx: tuple[int, int]) -> np.ndarray:
    pad_y, pad_x = padded_yx[0] - slab.shape[-2], padded_yx[1] - slab.shape[-1]
    if pad_y or pad_x:
        slab = np.pad(slab, ((0, 0), (0, 0), (0, pad_y), (0, pad_x)), mode="edge")
    return slab


def _slab_tensor(source: Source, z0: int, z1: int, padded_yx: tuple[int, int], device,
                 *, on_device: bool | None = None) -> torch.Tensor:
    """Normalised, edge-padded slab (C, z1 - z0, *padded_yx) as a float32 tensor on ``device``.

    On the CPU it is :meth:`Source.read`. On a GPU the raw slab travels (16-bit data at half the
    bytes of float32) and is normalised there: on an H100 the NumPy normalisation was a third
    of a 256x1024x1024 run, done while the GPU waited. Labels are the same either way (the
    same float32 arithmetic; tests/inference/test_stitching.py runs the GPU route on the CPU
    with ``on_device=True``)."""
    if not (torch.device(device).type != "cpu" if on_device is None else on_device):
        return torch.from_numpy(_padded(source.read(z0, z1), padded_yx))
    raw = source.read_raw(z0, z1)
    if not raw.dtype.isnative or raw.dtype.kind not in "biu" or raw.dtype.itemsize > 2:
        raw = raw.astype(np.float32, copy=False)  # the cast normalisation starts with, before the copy
    return source.normalize_tensor(torch.from_numpy(_padded(raw, padded_yx)).to(device))


def _yx_grid(shape_yx, patch_yx, overlap) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    padded = tuple(max(n, p) for n, p in zip(shape_yx, patch_yx))
    ys, xs = (window_starts(n, p, overlap) for n, p in zip(padded, patch_yx))
    return padded, [(y, x) for y in ys for x in xs]


def run_3d(network: nn.Module, source: Source, sink: Sink, plan: WindowPlan,
           *, on_windows: Callable[[int], None] | None = None) -> None:
    """Patch-wise 3-D prediction of ``source`` into ``sink`` with Gaussian-blended windows."""
    _, n_z, n_y, n_x = source.shape
    pz, py, px = plan.patch_size
    (yp, xp), grid = _yx_grid((n_y, n_x), (py, px), plan.overlap)
    z_starts = window_starts(max(n_z, pz), pz, plan.overlap)
    weight = importance_map((pz, py, px), device=plan.device)
    # Two accumulators used in turn: the rows still open are copied from one into the other,
    # so no row allocates (a fresh 50 MB slab per row page-faults: 10 % of the run here).
    acc, spare = None, None
    wsum, wspare = (torch.zeros((pz, yp, xp), device=plan.device) for _ in range(2))
    for i, z0 in enumerate(z_starts):
        slab = _slab_tensor(source, z0, z0 + pz, (yp, xp), plan.device)
        for start in range(0, len(grid), plan.batch_size):
            chunk = grid[start:start + plan.batch_size]
            batch = torch.stack([slab[:, :, y:y + py, x:x + px] for y, x in chunk])
            out = _forward(network, batch, plan)
            if acc is None:
                acc, spare = (torch.zeros((out.shape[1], pz, yp, xp), device=plan.device) for _ in range(2))
            for b, (y, x) in enumerate(chunk):
                acc[:, :, y:y + py, x:x + px].addcmul_(out[b], weight)
                wsum[:, y:y + py, x:x + px] += weight
            if on_windows:
                on_windows(len(chunk))
        z_next = z_starts[i + 1] if i + 1 < len(z_starts) else max(n_z, pz)
        done, real = z_next - z0, min(z_next, n_z) - z0
        if real > 0:  # final rows, divided in place: the rows copied on below are not touched
            sink.emit(z0, acc[:, :real, :n_y, :n_x].div_(wsum[:real, :n_y, :n_x]))
        spare[:, :pz - done].copy_(acc[:, done:])
        spare[:, pz - done:].zero_()
        wspare[:pz - done].copy_(wsum[done:])
        wspare[pz - done:].zero_()
        acc, spare, wsum, wspare = spare, acc, wspare, wsum


def run_2d(network: nn.Module, source: Source, sink: Sink, plan: WindowPlan, *,
           context_slices: int, on_windows: Callable[[int], None] | None = None) -> None:
    """Slice-wise 2-D / 2.5D prediction: slice z gets channels ``c * (2k + 1) + (j + k)``.

    Input of slice z is detector c at slice ``clip(z + j, 0, Z - 1)``, j in -k..k, the order of
    :func:`electroseg.models.stack_context`. Windows of several slices share a batch; slice
    groups start at multiples of the group size so batches never depend on the sink.
    """
    k = context_slices
    _, n_z, n_y, n_x = source.shape
    (yp, xp), grid = _yx_grid((n_y, n_x), plan.patch_size, plan.overlap)
    py, px = plan.patch_size
    weight = importance_map((py, px), device=plan.device)
    wsum = torch.zeros((yp, xp), device=plan.device)
    for y, x in grid:
        wsum[y:y + py, x:x + px] += weight
    group = max(1, plan.batch_size // len(grid))
    for g0 in range(0, n_z, group):
        n = min(n_z, g0 + group) - g0
        slab = _slab_tensor(source, g0 - k, g0 + n + k, (yp, xp), plan.device)
        stacked = torch.stack([slab[:, z:z + 2 * k + 1].reshape(-1, yp, xp) for z in range(n)])
        items = [(z, y, x) for z in range(n) for y, x in grid]
        acc = None
        for start in range(0, len(items), plan.batch_size):
            chunk = items[start:start + plan.batch_size]
            out = _forward(network, torch.stack([stacked[z, :, y:y + py, x:x + px]
                                                 for z, y, x in chunk]), plan)
            if acc is None:
                acc = torch.zeros((out.shape[1], n, yp, xp), device=plan.device)
            for b, (z, y, x) in enumerate(chunk):
                acc[:, z, y:y + py, x:x + px].addcmul_(out[b], weight)
            if on_windows:
                on_windows(len(chunk))
        sink.emit(g0, acc[:, :, :n_y, :n_x].div_(wsum[:n_y, :n_x]))


def count_windows(shape: tuple[int, int, int], plan: WindowPlan) -> int:
    """Number of windows :func:`run_3d` / :func:`run_2d` will run for a (Z, Y, X) shape."""
    patch_yx = plan.patch_size[-2:]
    _, grid = _yx_grid(shape[1:], patch_yx, plan.overlap)
    if len(plan.patch_size) == 2:
        return shape[0] * len(grid)
    return len(window_starts(max(shape[0], plan.patch_size[0]), plan.patch_size[0], plan.overlap)) * len(grid)


# ---- planning and running one input (used by predict_volume, predict_chunked, predict_blockwise) ----

PROBABILITY_DTYPES = ("float16", "uint8")
DEFAULT_BATCH = {"unet3d": 2, "multichannel2d": 8}
# On CUDA small batches leave the GPU waiting on kernel launches. One H100, default models,
# random weights: multichannel2d on 64x1024x1024, batch 32 -> 128: 41 -> 85 Mvoxel/s (fp32);
# unet3d on 256x1024x1024 at batch 32: 155 Mvoxel/s, 1.8 GB of GPU memory in all. The forward
# passes of these batches take about 1.2 GB (unet3d) and 0.9 GB (multichannel2d) in float32.
DEFAULT_BATCH_CUDA = {"unet3d": 32, "multichannel2d": 128}


def check_window_values(*, overlap: float, batch_size: int | None, precision: str) -> None:
    """One InputError for a bad overlap, batch size or precision name (whatever the device)."""
    if not 0 <= float(overlap) < 1:
        raise InputError(f"overlap: expected a fraction in [0, 1), got {overlap}")
    if batch_size is not None and int(batch_size) < 1:
        raise InputError(f"batch_size: expected a positive integer, got {batch_size}")
    try:
        check_precision(precision)
    except ValueError as err:
        raise InputError(str(err)) from None


def check_window_options(*, overlap: float, batch_size: int | None, device: Any,
                         precision: str) -> tuple[torch.device, torch.dtype | None]:
    """The device and autocast dtype these options give on this machine; one InputError for a
    bad overlap, batch size, device or precision (``predict_batch`` checks them before any input)."""
    check_window_values(overlap=overlap, batch_size=batch_size, precision=precision)
    try:
        chosen = choose_device(device)
        return chosen, resolve_precision(precision, chosen)
    except ValueError as err:
        raise InputError(str(err)) from None


def arithmetic_record(device: torch.device, autocast: torch.dtype | None) -> dict[str, str]:
    """``{"device", "precision"}`` as prediction.json records them: the precision the network
    ran in (``bf16``, ``fp16`` or ``fp32``), which ``precision=auto`` picks per machine."""
    names = {torch.bfloat16: "bf16", torch.float16: "fp16", None: "fp32"}
    return {"device": str(device), "precision": names[autocast]}


def plan_windows(setup: Any, *, overlap: float, batch_size: int | None, tta: bool, device: Any,
                 precision: str) -> WindowPlan:
    """The window plan of one prediction (``setup``: an ``inputs.Setup``): overlap, batch per
    device and model kind, TTA, device, autocast precision; one InputError for a bad value."""
    chosen, autocast = check_window_options(overlap=overlap, batch_size=batch_size, device=device,
                                            precision=precision)
    defaults = DEFAULT_BATCH_CUDA if chosen.type == "cuda" else DEFAULT_BATCH
    batch = defaults[setup.kind] if batch_size is None else int(batch_size)
    return WindowPlan(setup.patch_size, float(overlap), batch, bool(tta), chosen, autocast)


def check_probabilities(probabilities: str | None) -> None:
    if probabilities is not None and probabilities not in PROBABILITY_DTYPES:
        raise InputError(f"probabilities: expected one of {PROBABILITY_DTYPES} or None, got {probabilities!r}")


def run_model(setup: Any, plan: WindowPlan, source, sink: Sink, *, progress: bool, what: str,
         volume_fractions: Mapping[str, float] | None = None) -> None:
    """Run the engine matching the model kind, with an optional tqdm bar over windows; first
    fit logit offsets to ``volume_fractions`` on this input when given."""
    import torch

    sink.temperature = float(getattr(setup, "temperature", 1.0) or 1.0)
    network = prepare_network(setup.network, plan.device, plan.autocast_dtype)
    if volume_fractions:
        from electroseg.inference.calibrate import calibrated_network

        network = calibrated_network(network, setup, source, plan, volume_fractions, where=what)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=count_windows(source.shape[1:], plan), desc=what, unit="win", leave=False)
    try:
        with torch.inference_mode():
            if setup.kind == "unet3d":
                run_3d(network, source, sink, plan, on_windows=bar.update if bar else None)
            else:
                run_2d(network, source, sink, plan, context_slices=setup.context_slices,
                       on_windows=bar.update if bar else None)
    finally:
        if bar is not None:
            bar.close()

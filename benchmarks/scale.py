"""Block-wise analysis on a local Dask cluster: throughput and worker peak memory.

Generates a synthetic 3-phase label volume chunk by chunk straight into a temporary Zarr store
(never whole in memory): AM spheres (about 60 %, touching spheres split by a power diagram with
a one-voxel pore gap), CBD where a smooth random field is high, pore elsewhere. The peer is the
in-memory ``analyze_labels`` in a child process; then ``analyze_blockwise`` runs on
LocalClusters of 1 and 2 workers, each limited to ``--memory-limit``, while every worker's RSS
is sampled. Prints a table (and whether metrics.json is identical); the temp data is removed.

    .venv/bin/python benchmarks/scale.py                  # 600 x 768 x 1024 (2x a FIB-SEM stack)
    .venv/bin/python benchmarks/scale.py --quick          # 120 x 384 x 512
    .venv/bin/python benchmarks/scale.py --uncertainty    # also the sub-block uncertainty
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

FULL = (600, 768, 1024)
QUICK = (120, 384, 512)
CHUNKS = {FULL: (64, 384, 512), QUICK: (32, 192, 256)}
VOXEL_SIZE = (0.06, 0.03, 0.03)


def sphere_catalogue(shape, *, seed=0, am_fraction=0.7):
    """Centres (n, 3) and radii (n,) of AM spheres filling about ``am_fraction`` of the box."""
    rng = np.random.default_rng(seed)
    radii = rng.uniform(8, 40, size=200_000)
    volume = 4.0 / 3.0 * np.pi * radii ** 3
    # overlapping spheres: a fraction f of space is covered when Σv / V = -ln(1 - f)
    n = int(np.searchsorted(np.cumsum(volume), -np.log(1 - am_fraction) * np.prod(shape)))
    centres = rng.uniform(0, 1, size=(n, 3)) * np.asarray(shape)
    return centres, radii[:n]


def _smooth_field(start, block_shape, seed):
    """Sum of random plane waves evaluated at global coordinates: same values in any chunking."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.arange(s, s + n, dtype=np.float32) for s, n in zip(start, block_shape)],
                        indexing="ij", sparse=True)
    field = np.zeros(block_shape, np.float32)
    for _ in range(6):
        k = rng.normal(size=3) * 0.08
        field += np.cos(sum(ki * g for ki, g in zip(k, grids)) + rng.uniform(0, 2 * np.pi))
    return field


def make_block(start, block_shape, centres, radii, seed=0):
    """Labels of one block (uint8: 0 pore, 1 cbd, 2 am) from the global catalogue.

    Each voxel belongs to the sphere of smallest ``distance / radius`` (a power-diagram split of
    overlapping spheres) and a one-voxel pore gap separates touching spheres, so particles stay
    separate as segmented NMC particles mostly are. Computed on the block plus a one-voxel halo
    from global coordinates, hence identical in any chunking.
    """
    start = np.asarray(start) - 1
    shape = np.asarray(block_shape) + 2
    stop = start + shape
    best = np.full(tuple(shape), np.inf, np.float32)
    owner = np.zeros(tuple(shape), np.int32)
    near = np.flatnonzero(np.all((centres + radii[:, None] > start)
                                 & (centres - radii[:, None] < stop), axis=1))
    for i in near:
        c, r = centres[i], radii[i]
        lo = np.maximum(np.floor(c - r).astype(int), start)
        hi = np.minimum(np.ceil(c + r).astype(int) + 1, stop)
        zz, yy, xx = np.meshgrid(*[(np.arange(a, b) - ci) / r for a, b, ci in zip(lo, hi, c)],
                                 indexing="ij", sparse=True)
        d2 = (zz ** 2 + yy ** 2 + xx ** 2).astype(np.float32)
        region = tuple(slice(a - s, b - s) for a, b, s in zip(lo, hi, start))
        closer = (d2 <= 1) & (d2 < best[region])
        best[region][closer] = d2[closer]
        owner[region][closer] = i + 1
    core = owner[1:-1, 1:-1, 1:-1]
    gap = np.zeros(core.shape, bool)
    for axis in range(3):
        for shift in (-1, 1):
            other = np.roll(owner, shift, axis=axis)[1:-1, 1:-1, 1:-1]
            gap |= (other > 0) & (other < core)
    labels = np.where(_smooth_field(start + 1, tuple(block_shape), seed) > 1.2, 1, 0)
    labels = labels.astype(np.uint8)
    labels[(core > 0) & ~gap] = 2
    return labels


def write_volume(path, shape, chunks):
    """Write the synthetic volume to a Zarr array chunk by chunk; returns the zarr array."""
    import zarr

    centres, radii = sphere_catalogue(shape)
    out = zarr.open_array(str(path), mode="w", shape=shape, dtype=np.uint8, chunks=chunks)
    out.attrs["voxel_size_um"] = list(VOXEL_SIZE)
    for index in np.ndindex(*[-(-s // c) for s, c in zip(shape, chunks)]):
        start = [i * c for i, c in zip(index, chunks)]
        block = [min(c, s - b) for c, s, b in zip(chunks, shape, start)]
        out[tuple(slice(b, b + n) for b, n in zip(start, block))] = make_block(
            start, block, centres, radii)
    return out


class PeakMemory:
    """Polls every worker's RSS (psutil, via ``client.run``) in a thread; keeps the maximum."""

    def __init__(self, client, interval=0.25):
        self.client, self.interval, self.peak = client, interval, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    @staticmethod
    def _rss():
        import psutil

        return psutil.Process().memory_info().rss

    def _poll(self):
        while not self._stop.is_set():
            for worker, rss in self.client.run(self._rss).items():
                self.peak[worker] = max(self.peak.get(worker, 0), rss)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_cluster(path, n_workers, memory_limit, uncertainty):
    from electroseg.analysis.blockwise import analyze_blockwise
    from electroseg.parallel import dask_client

    with dask_client(n_workers=n_workers, threads_per_worker=1, memory_limit=memory_limit) as client:
        workers_before = set(client.scheduler_info()["workers"])
        with PeakMemory(client) as memory:
            t0 = time.perf_counter()
            result = analyze_blockwise(path, depth_axis=1, client=client,
                                       uncertainty=uncertainty)
            seconds = time.perf_counter() - t0
        restarted = set(client.scheduler_info()["workers"]) != workers_before
    return result, seconds, max(memory.peak.values()), restarted


def run_in_memory(path, uncertainty, queue):
    """The peer: read the whole volume and run analyze_labels, in a child
    process so that its peak RSS is its own."""
    import resource

    from electroseg.analysis.metrics import analyze_labels
    from electroseg.io import read_volume

    t0 = time.perf_counter()
    volume = read_volume(path)
    result = analyze_labels(volume.numpy(), voxel_size=volume.voxel_size, depth_axis=1,
                            uncertainty=uncertainty)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    queue.put((result.to_dict(), seconds, peak))


def _peer(path, uncertainty):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=run_in_memory, args=(str(path), uncertainty, queue))
    child.start()
    out = queue.get()
    child.join()
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK} instead of {FULL}")
    parser.add_argument("--memory-limit", default="4GB", help="per worker (default 4GB)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--uncertainty", action="store_true",
                        help="also the sub-block uncertainty (one in-memory task per sub-block)")
    parser.add_argument("--no-peer", action="store_true",
                        help="skip the in-memory analyze_labels run (needs ~6x the volume in RAM)")
    args = parser.parse_args(argv)
    shape = QUICK if args.quick else FULL
    limit = _bytes(args.memory_limit)
    workdir = Path(tempfile.mkdtemp(prefix="electroseg-scale-"))
    mvoxel = float(np.prod(shape)) / 1e6
    try:
        t0 = time.perf_counter()
        write_volume(workdir / "labels.zarr", shape, CHUNKS[shape])
        blocks = int(np.prod([-(-s // c) for s, c in zip(shape, CHUNKS[shape])]))
        print(f"volume {shape} uint8 ({mvoxel:.0f} Mvoxel), {blocks} chunks of "
              f"{CHUNKS[shape]}, written in {time.perf_counter() - t0:.1f} s")
        rows, reference = [], None
        if not args.no_peer:
            reference, seconds, peak = _peer(workdir / "labels.zarr", args.uncertainty)
            rows.append(("in-memory", seconds, mvoxel / seconds, peak / 1e9, "-", "-", True))
        for n in args.workers:
            result, seconds, peak, restarted = run_cluster(workdir / "labels.zarr", n,
                                                           args.memory_limit, args.uncertainty)
            metrics = result.to_dict()
            reference = reference or metrics
            rows.append((f"dask x{n}", seconds, mvoxel / seconds, peak / 1e9, str(peak < limit),
                         str(restarted), metrics == reference))
        _print_table(rows, args.memory_limit, reference)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _print_table(rows, memory_limit, metrics):
    print(f"{'run':>10} {'seconds':>8} {'Mvoxel/s':>9} {'peak RSS GB':>12} "
          f"{'< ' + memory_limit:>7} {'restart':>8} {'same metrics':>13}")
    for name, seconds, rate, peak, within, restarted, same in rows:
        print(f"{name:>10} {seconds:>8.1f} {rate:>9.1f} {peak:>12.2f} {within:>7} "
              f"{restarted:>8} {str(same):>13}")
    print("peak RSS: in-memory = the child process; dask = the largest worker (sampled 4x/s)")
    for name, seconds, *_ in rows[1:]:
        print(f"ratio {name} / {rows[0][0]} time: {seconds / rows[0][1]:.2f}")
    particles = metrics["particles"]
    print(f"fractions {metrics['volume_fraction']}; PBA pooled {metrics['pba']['pooled']:.4f}; "
          f"particles {particles['count'] if particles else 0}")


def _bytes(text):
    from dask.utils import parse_bytes

    return parse_bytes(text)


if __name__ == "__main__":
    main()

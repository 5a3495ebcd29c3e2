"""Benchmark: per-particle channel statistics and electronic connectivity vs the scipy route.

Outputs compared (same volume, same run):

- per-particle statistics of an image over the AM particles (voxel count, mean, std, median,
  10th and 90th percentile): ``particle_channel_stats`` (cc3d + one sort) against
  ``scipy.ndimage.label`` + ``ndimage.sum/mean/standard_deviation/median`` +
  ``ndimage.labeled_comprehension(np.percentile)`` for each percentile;
- electronic connectivity of the AM to the collector face: ``electronic_connectivity`` (cc3d +
  fastremap), alone and with ready-made particle ids, against ``scipy.ndimage.label`` of AM and
  of AM ∪ CBD with a whole-volume gather ``cluster_of[particles[am]] = clusters[am]`` and
  ``np.bincount`` for the particle sizes.

The labels come from ``benchmarks/analysis.py``'s ``make_volume``; the image is a synthetic Ni
K-edge energy map (eV): a depth gradient, a phase offset and Gaussian noise, float32. Each side
runs in a fresh subprocess so that its peak RSS (``resource.getrusage``) is its own; CPU time
(``time.process_time``) is the fair figure on a shared machine.

    .venv/bin/python benchmarks/analysis_extras.py            # 300 x 768 x 1024
    .venv/bin/python benchmarks/analysis_extras.py --quick    # 100 x 256 x 384
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _worker import run_worker  # benchmarks/ is sys.path[0] when a script here runs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from analysis import AM, CBD, VOXEL_SIZE, make_volume  # noqa: E402

PERCENTILES = {"median": 50.0, "p10": 10.0, "p90": 90.0}


def make_image(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Ni K-edge energy (eV), float32: 8345 + 3 eV across depth + 1 eV on AM + N(0, 0.8) noise."""
    rng = np.random.default_rng(seed)
    image = np.empty(labels.shape, dtype=np.float32)
    depth = np.linspace(0.0, 3.0, labels.shape[1], dtype=np.float32)[None, :, None]
    for z in range(0, labels.shape[0], 32):
        slab = labels[z:z + 32]
        noise = rng.standard_normal(slab.shape, dtype=np.float32) * np.float32(0.8)
        image[z:z + 32] = 8345.0 + depth + (slab == AM) + noise
    return image


def stats_ours(labels: np.ndarray, image: np.ndarray) -> dict:
    from electroseg.analysis import particle_channel_stats

    s = particle_channel_stats(labels, image, voxel_size=VOXEL_SIZE, depth_axis=1)
    return {"voxels": s.voxels, "mean": s.mean, "std": s.std, "median": s.median, "p10": s.p10,
            "p90": s.p90}


def stats_peer(labels: np.ndarray, image: np.ndarray) -> dict:
    """scipy.ndimage: label, then one call per statistic (percentiles via a per-label callback)."""
    from scipy import ndimage as ndi

    ids, n = ndi.label(labels == AM)
    index = np.arange(1, n + 1)
    values = image.astype(np.float64)
    out = {"voxels": ndi.sum_labels(np.ones(ids.shape, np.int64), ids, index).astype(np.int64),
           "mean": ndi.mean(values, ids, index),
           "std": ndi.standard_deviation(values, ids, index),
           "median": ndi.median(values, ids, index)}
    for name in ("p10", "p90"):
        def percentile(v, q=PERCENTILES[name]):
            return np.percentile(v, q)

        out[name] = ndi.labeled_comprehension(values, ids, index, percentile, np.float64, np.nan)
    return out


def connectivity_ours(labels: np.ndarray, with_ids: bool) -> dict:
    from electroseg.analysis import electronic_connectivity, label_particles

    ids = label_particles(labels) if with_ids else None
    start, cpu = time.perf_counter(), time.process_time()
    result = electronic_connectivity(labels, depth_axis=1, particles=ids)
    return {"wall_call": time.perf_counter() - start, "cpu_call": time.process_time() - cpu,
            "shares": _shares(result)}


def connectivity_peer(labels: np.ndarray) -> dict:
    """scipy.ndimage.label of AM and of the solid, whole-volume gathers, np.bincount sizes."""
    from scipy import ndimage as ndi

    am = labels == AM
    particles, n = ndi.label(am)
    clusters, _ = ndi.label(am | (labels == CBD))
    reaching = np.zeros(int(clusters.max()) + 1, dtype=bool)
    reaching[np.unique(clusters[:, -1])] = True
    reaching[0] = False
    direct = np.zeros(n + 1, dtype=bool)
    direct[np.unique(particles[:, -1])] = True
    cluster_of = np.zeros(n + 1, dtype=np.int64)
    cluster_of[particles[am]] = clusters[am]
    sizes = np.bincount(particles[am], minlength=n + 1)[1:]
    connected, direct = reaching[cluster_of][1:], direct[1:]
    total = sizes.sum()
    return {"shares": [float(sizes[direct].sum() / total),
                       float(sizes[connected & ~direct].sum() / total),
                       float(sizes[~connected].sum() / total)]}


def _shares(c) -> list[float]:
    return [c.direct_fraction, c.via_cbd_fraction, c.isolated_fraction]


def _worker(kind: str, folder: str) -> None:
    labels = np.load(Path(folder) / "labels.npy")
    image = np.load(Path(folder) / "image.npy") if kind.startswith("stats") else None
    jobs = {"stats_ours": lambda: stats_ours(labels, image),
            "stats_peer": lambda: stats_peer(labels, image),
            "conn_ours": lambda: connectivity_ours(labels, with_ids=False),
            "conn_ours_ids": lambda: connectivity_ours(labels, with_ids=True),
            "conn_peer": lambda: connectivity_peer(labels)}
    start, cpu = time.perf_counter(), time.process_time()
    result = jobs[kind]()
    result = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in result.items()}
    result.update(wall=time.perf_counter() - start, cpu=time.process_time() - cpu,
                  peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2)
    print(json.dumps(result))


def _run(kind: str, folder: Path) -> dict:
    return run_worker(__file__, kind, folder)


def _stats_agree(a: dict, b: dict) -> str:
    if a["voxels"] != b["voxels"]:  # both number particles in raster order of the first voxel
        return "no (particle voxel counts differ)"
    worst = max(float(np.max(np.abs(np.subtract(a[k], b[k])), initial=0.0))
                for k in ("mean", "std", "median", "p10", "p90"))
    return f"{'yes' if worst < 1e-6 else 'NO'} (largest difference {worst:.1e} eV)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 x 256 x 384 instead")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(*args.worker)
    shape = (100, 256, 384) if args.quick else (300, 768, 1024)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        labels = make_volume(shape)
        np.save(Path(tmp) / "labels.npy", labels)
        np.save(Path(tmp) / "image.npy", make_image(labels))
        print(f"volume {shape} uint8 + float32 image, made in {time.perf_counter() - start:.1f} s")
        del labels
        runs = {kind: _run(kind, Path(tmp)) for kind in
                ("stats_ours", "stats_peer", "conn_ours", "conn_ours_ids", "conn_peer")}
    _report(shape, runs)


def _report(shape, runs: dict) -> None:
    print(f"\n{'step (' + 'x'.join(map(str, shape)) + ')':<40}{'electroseg wall/cpu (s)':>26}"
          f"{'scipy route wall/cpu (s)':>26}{'ratio (cpu)':>13}{'peak RSS ours/peer (GB)':>26}")
    rows = [("per-particle stats (label + 5 stats)", "stats_ours", "stats_peer"),
            ("electronic connectivity", "conn_ours", "conn_peer"),
            ("  same, particle ids given (call only)", "conn_ours_ids", "conn_peer")]
    for step, mine, theirs in rows:
        a, b = runs[mine], runs[theirs]
        wall, cpu = a.get("wall_call", a["wall"]), a.get("cpu_call", a["cpu"])
        print(f"{step:<40}{wall:>13.2f}{cpu:>13.2f}{b['wall']:>13.2f}{b['cpu']:>13.2f}"
              f"{b['cpu'] / cpu:>9.1f} ({b['wall'] / wall:.1f} wall)"
              f"{a['peak_rss_gb']:>13.2f}{b['peak_rss_gb']:>13.2f}")
    print(f"\nsame per-particle statistics: {_stats_agree(runs['stats_ours'], runs['stats_peer'])}"
          f" ({len(runs['stats_ours']['voxels'])} particles)")
    shares = [runs[k]["shares"] for k in ("conn_ours", "conn_ours_ids", "conn_peer")]
    same = all(np.allclose(s, shares[-1], rtol=0, atol=1e-12) for s in shares)
    print(f"same connectivity shares (direct, via CBD, isolated): {same} "
          f"{[round(v, 6) for v in shares[0]]}")
    print("connectivity rows time the call alone (the ids of the last row are labelled before)")


if __name__ == "__main__":
    main()

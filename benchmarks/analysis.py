"""Benchmark: electroseg.analysis core metrics vs "the usual way" (scipy/skimage/NumPy).

Outputs compared (same volume, same run): volume fractions per depth plane, PBA profile (face
pairs along the in-plane axes), per-particle table (volume, centroid, bounding box) and specific
interface areas of every phase pair. Each side runs in a fresh subprocess so that its peak RSS
(``resource.getrusage``) is its own. Also times the watershed split of touching particles
(edt + h-maxima + skimage watershed) against scipy's distance transform + the same markers.

    .venv/bin/python benchmarks/analysis.py            # 300 x 768 x 1024, watershed on 256^3
    .venv/bin/python benchmarks/analysis.py --quick    # 100 x 256 x 384, watershed on 128^3

Targets: ours <= 5 s wall and <= 3 GB peak RSS on the full size, >= 3x faster than the peer.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from _worker import run_worker  # benchmarks/ is sys.path[0] when a script here runs

VOXEL_SIZE = (0.05, 0.03, 0.03)  # µm: FIB-SEM slice step and pixel size
PORE, CBD, AM = 0, 1, 2


def make_volume(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """Three-phase volume from thresholded smooth noise: AM grains, CBD partly coating them.

    Two coarse Gaussian-filtered fields are upsampled 4x by linear interpolation slab by slab
    (the full-size float field never exists at once). AM = top 38 % of field 1; CBD = the top
    15 % (of all voxels) of ``field 2 + field 1`` outside AM, so CBD sits mostly, not only, on
    AM surfaces (PBA around 0.5); the rest is pore.
    """
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    factor = 4
    coarse_shape = tuple(-(-n // factor) + 2 for n in shape)
    fields = [ndi.gaussian_filter(rng.standard_normal(coarse_shape).astype(np.float32), 1.2)
              for _ in range(2)]
    fields = [f / f.std() for f in fields]
    t_am = np.quantile(fields[0], 0.62)
    score = np.where(fields[0] > t_am, -np.inf, fields[1] + fields[0])
    t_cbd = np.quantile(score, 0.85)
    labels = np.empty(shape, dtype=np.uint8)
    step = 32
    for z0 in range(0, shape[0], step):
        axes = (np.arange(z0, min(shape[0], z0 + step)), np.arange(shape[1]), np.arange(shape[2]))
        coords = np.broadcast_arrays(*np.meshgrid(*[a / factor for a in axes], indexing="ij",
                                                  sparse=True))
        one, two = (ndi.map_coordinates(f, coords, order=1) for f in fields)
        slab = np.full(one.shape, PORE, dtype=np.uint8)
        slab[two + one > t_cbd] = CBD
        slab[one > t_am] = AM
        labels[z0:z0 + step] = slab
    return labels


def ours(labels: np.ndarray) -> dict:
    """electroseg: one pass of face-pair counts shared by fractions, PBA and surfaces; cc3d."""
    from electroseg.analysis import (
        VolumeFractionProfile,
        face_pair_counts,
        interface_areas_from_pairs,
        particle_table,
        pba_from_pairs,
    )

    def counting():
        counts = face_pair_counts(labels, depth_axis=1)
        profile = VolumeFractionProfile.from_counts(counts.voxels, phases=counts.phases,
                                                    depth_axis=1)
        return (profile, pba_from_pairs(counts),
                interface_areas_from_pairs(counts, voxel_size=VOXEL_SIZE))

    first = _timed(counting)
    profile, pba, surface = first["result"]
    second = _timed(lambda: particle_table(labels, voxel_size=VOXEL_SIZE, depth_axis=1))
    table = second["result"]
    times = {"fractions + PBA + surfaces": (first["wall"], first["cpu"]),
             "particle table": (second["wall"], second["cpu"])}
    return {"times": times, "fractions": profile.overall().fractions, "pba": pba.pooled,
            "particles": table.count, "max_voxels": int(table.voxels.max()),
            "surface": surface.per_um}


def peer(labels: np.ndarray) -> dict:
    """The usual way: boolean NumPy counts, scipy.ndimage.label, skimage regionprops_table."""
    from scipy import ndimage as ndi
    from skimage.measure import regionprops_table

    start, cpu = time.perf_counter(), time.process_time()
    fractions = {p: np.count_nonzero(labels == i, axis=(0, 2)) for i, p in
                 enumerate(("pore", "cbd", "am"))}
    contacts = np.zeros(labels.shape[1], np.int64)
    surface_pairs = np.zeros(labels.shape[1], np.int64)
    faces = {}
    for axis in (0, 1, 2):
        lo = labels[tuple(slice(None, -1) if a == axis else slice(None) for a in range(3))]
        hi = labels[tuple(slice(1, None) if a == axis else slice(None) for a in range(3))]
        for (i, p), (j, q) in [((0, "pore"), (1, "cbd")), ((0, "pore"), (2, "am")),
                               ((1, "cbd"), (2, "am"))]:
            mask = ((lo == i) & (hi == j)) | ((lo == j) & (hi == i))
            faces[f"{p}-{q}"] = faces.get(f"{p}-{q}", 0) + np.count_nonzero(mask) * float(
                np.prod([VOXEL_SIZE[a] for a in range(3) if a != axis]))
            if axis != 1 and q == "am":
                per_depth = np.count_nonzero(mask, axis=(0, 2))
                surface_pairs += per_depth
                contacts += per_depth if p == "cbd" else 0
    total = labels.size * float(np.prod(VOXEL_SIZE))
    times = {"fractions + PBA + surfaces": (time.perf_counter() - start,
                                            time.process_time() - cpu)}
    start, cpu = time.perf_counter(), time.process_time()
    ids, count = ndi.label(labels == AM)
    table = regionprops_table(ids, properties=("label", "area", "centroid", "bbox"))
    times["particle table"] = (time.perf_counter() - start, time.process_time() - cpu)
    n = labels.size
    return {"times": times,
            "fractions": {p: float(v.sum()) / n for p, v in fractions.items()},
            "pba": float(contacts.sum()) / float(surface_pairs.sum()),
            "particles": int(count), "max_voxels": int(np.max(table["area"])),
            "surface": {k: v / total for k, v in faces.items()}}


def watershed_ours(mask: np.ndarray, markers: str) -> None:
    """edt (anisotropic, 2 threads) + separable-maximum peaks or h-maxima + skimage watershed."""
    from electroseg.analysis import split_touching

    split_touching(mask, voxel_size=VOXEL_SIZE, markers=markers)


def watershed_peer(mask: np.ndarray, markers: str) -> None:
    """The scikit-image gallery route: scipy EDT, peak_local_max (or h_maxima), ndi.label,
    watershed; same minimum peak distance (2 x largest voxel) / height (1 x largest voxel)."""
    from scipy import ndimage as ndi
    from skimage.feature import peak_local_max
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    distance = ndi.distance_transform_edt(mask, sampling=VOXEL_SIZE)
    if markers == "peaks":
        radius = int(round(2 * max(VOXEL_SIZE) / min(VOXEL_SIZE)))
        coords = peak_local_max(distance, min_distance=radius, labels=mask, exclude_border=False)
        seeds = np.zeros(mask.shape, dtype=bool)
        seeds[tuple(coords.T)] = True
    else:
        seeds = h_maxima(distance, max(VOXEL_SIZE)) > 0
    watershed(-distance, ndi.label(seeds, structure=np.ones((3,) * 3))[0], mask=mask)


def _timed(function, *args) -> dict:
    start, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return {"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu,
            "result": result}


def _worker(kind: str, path: str) -> None:
    labels = np.load(path)
    if kind in ("ours", "peer"):
        result = (ours if kind == "ours" else peer)(labels)
    elif kind == "pipeline":
        from electroseg.analysis import analyze_labels

        timed = _timed(lambda: analyze_labels(labels, voxel_size=VOXEL_SIZE, uncertainty=False))
        result = {"times": {"analyze_labels (+ connectivity)": (timed["wall"], timed["cpu"])}}
    else:
        side, markers = kind.split(":")
        function = watershed_ours if side == "ws_ours" else watershed_peer
        timed = _timed(function, labels == AM, markers)
        result = {"times": {f"watershed ({markers})": (timed["wall"], timed["cpu"])}}
    result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    print(json.dumps(result))


def _run(kind: str, path: Path) -> dict:
    return run_worker(__file__, kind, path)


def _agree(a: dict, b: dict) -> bool:
    same = a["particles"] == b["particles"] and a["max_voxels"] == b["max_voxels"]
    same &= abs(a["pba"] - b["pba"]) < 1e-12
    same &= all(abs(a["fractions"][k] - b["fractions"][k]) < 1e-12 for k in a["fractions"])
    return same and all(abs(a["surface"][k] - b["surface"][k]) < 1e-9 for k in a["surface"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--pipeline", action="store_true",
                        help="also time analyze_labels end to end (with collector connectivity)")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(*args.worker)
    shape = (100, 256, 384) if args.quick else (300, 768, 1024)
    ws_side = 128 if args.quick else 256
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        labels = make_volume(shape)
        path = Path(tmp) / "labels.npy"
        np.save(path, labels)
        ws_path = Path(tmp) / "ws.npy"
        np.save(ws_path, make_volume((ws_side,) * 3, seed=1))
        print(f"volume {shape} uint8, fractions {np.bincount(labels.ravel()) / labels.size}, "
              f"made in {time.perf_counter() - start:.1f} s")
        del labels
        mine, theirs = _run("ours", path), _run("peer", path)
        pipeline = _run("pipeline", path) if args.pipeline else None
        for markers in ("peaks", "h_maxima"):
            for side, target in (("ws_ours", mine), ("ws_peer", theirs)):
                target.setdefault("ws", {}).update(_run(f"{side}:{markers}", ws_path)["times"])
    _report(shape, ws_side, mine, theirs)
    if pipeline is not None:
        (step, (wall, cpu)), = pipeline["times"].items()
        print(f"{step:<34}{wall:>13.2f}{cpu:>13.2f}   peak RSS {pipeline['peak_rss_gb']:.2f} GB "
              f"(no peer; every metric of metrics.json except uncertainty)")


def _report(shape, ws_side, mine, theirs) -> None:
    print(f"\n{'step':<34}{'electroseg wall/cpu (s)':>26}{'usual way wall/cpu (s)':>26}"
          f"{'ratio (cpu)':>13}")
    rows = list(mine["times"].items())
    total = tuple(sum(t[i] for t in mine["times"].values()) for i in (0, 1))
    peer_total = tuple(sum(t[i] for t in theirs["times"].values()) for i in (0, 1))
    rows.append(("total " + "x".join(map(str, shape)), total))
    peers = dict(theirs["times"], **{rows[-1][0]: peer_total})
    for step, (wall, cpu) in rows + [(f"{k} {ws_side}^3", v) for k, v in mine["ws"].items()]:
        key = step if step in peers else step.rsplit(" ", 1)[0]
        p_wall, p_cpu = peers.get(key, theirs["ws"].get(key, (np.nan, np.nan)))
        print(f"{step:<34}{wall:>13.2f}{cpu:>13.2f}{p_wall:>13.2f}{p_cpu:>13.2f}"
              f"{p_cpu / cpu:>9.1f} ({p_wall / wall:.1f} wall)")
    print(f"{'peak RSS (GB), metrics step':<34}{mine['peak_rss_gb']:>26.2f}"
          f"{theirs['peak_rss_gb']:>26.2f}")
    print(f"\nsame outputs: {_agree(mine, theirs)}  (particles {mine['particles']}, "
          f"PBA {mine['pba']:.4f}, largest particle {mine['max_voxels']} voxels)")


if __name__ == "__main__":
    main()

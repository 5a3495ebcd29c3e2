"""Do the intervals hold the truth? Coverage of metrics.json's total and sampling-only intervals.

Every sample has exact labels (its truth), is segmented by the classical route with its
defaults after the FIB-SEM preprocessing (``preprocess=fibsem``),
and analysed as ``electroseg analyze hand_labels=...`` does, with the truth of a few slices as
the "hand labels" under two labelling protocols:

- **3 slices**: Z/4, Z/2, 3Z/4 (the through-slice error is then not measured);
- **3 adjacent pairs**: the same and the slice after each (measured);
- **3 pairs, random**: three pairs of adjacent slices at random positions, new ones for every
  sample (does the interval hold when the labelled slices are not evenly spread?);
- **6 adjacent pairs**: six positions evenly spread (how the width falls with labelling effort).

For each metric it counts how often the truth of the imaged volume lies inside the **total**
interval (``uncertainty.total``: the segmentation's error measured on the labelled slices plus
the sub-block sampling) and inside the **sampling-only** interval (``uncertainty.metrics``, for
PBA ``pba_pooled_from_counts``), and prints the mean widths and the errors of the reported and the
corrected estimates. Samples:

- ``synthetic``: pristine (``nmc_fibsem``) and cycled (``nmc_fibsem_cycled``) pairs of the
  project's generator, ``--seeds`` of each; the **drop** (cycled − pristine) of PBA and of the CBD
  fraction with its interval (the two totals' half widths in quadrature) is checked against the
  true drop, and called significant when the interval excludes 0;
- ``presets``: ``he_nmc_fibsem`` and ``kintsugi_2ch`` (backscatter detector alone, Pt-filled
  pores brightest), 3 seeds each, ``preprocess=fibsem``;
- ``independent``: real microstructures (TauFactor, MATBOX, inpainter) imaged by
  ``benchmarks/_fibsem_physics.py``, five shine-through laws none of which is the generator's
  (needs ``$ELECTROSEG_DATA``; skipped without it).

With ``--learned SEEDS``, ``electroseg run experiment=cycling`` for that many pairs (one learned
model each, its errors from its own specimen's held-out volume): both routes' total intervals
against each sample's truth, the drop's, and the corrected drop against the true drop
(``--learned-shape``, ``--learned-preset``: another stack size or preset).

    .venv/bin/python benchmarks/interval_coverage.py [--seeds 10] [--shape 48 160 160] [--only synthetic presets independent] [--particles] [--learned SEEDS] [--learned-shape Z Y X] [--learned-preset NAME]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from electroseg.analysis import analyze_labels  # noqa: E402
from electroseg.classical import segment_volume  # noqa: E402
from electroseg.config import builtin_config  # noqa: E402
from electroseg.analysis.sample_comparison import difference_interval  # noqa: E402
from electroseg.preprocess import preprocess_volume  # noqa: E402
from electroseg.synthetic import load_preset, make_sample  # noqa: E402

def _pairs(count: int):
    """``count`` pairs of adjacent slices, evenly spread along Z."""
    return lambda z: sorted({p for i in range(count) for p in ((i + 1) * z // (count + 1), (i + 1) * z // (count + 1) + 1)})


_RANDOM = np.random.default_rng(2026)  # one stream: each sample gets its own positions, the same every run


def _random_pairs(count: int):
    """``count`` pairs of adjacent slices at random positions, at least 3 slices apart (so that
    each pair stays its own position); new positions for every sample."""
    def planes(z):
        while True:
            starts = np.sort(_RANDOM.choice(z - 1, size=count, replace=False))
            if np.all(np.diff(starts) >= 3):
                return sorted({int(p) for s in starts for p in (s, s + 1)})
    return planes


PROTOCOLS = {"3 slices": lambda z: [z // 4, z // 2, 3 * z // 4], "3 adjacent pairs": _pairs(3),
             "3 pairs, random": _random_pairs(3), "6 adjacent pairs": _pairs(6)}
METRICS = ("pba_pooled", "volume_fraction_pore", "volume_fraction_cbd", "volume_fraction_am",
           "surface_cbd-am_per_um", "surface_pore-am_per_um")
OPTIONS = dict(collector_connectivity=False, split="none")


def _physics():
    """benchmarks/_fibsem_physics.py (benchmarks/ is sys.path[0] when a script here runs)."""
    import _fibsem_physics

    return _fibsem_physics


def _truth_values(truth, voxel_size, phases) -> dict:
    tree = analyze_labels(truth, voxel_size=voxel_size, phases=phases, uncertainty=False, **OPTIONS).to_dict()
    values = {f"volume_fraction_{p}": v for p, v in tree["volume_fraction"].items()}
    if OPTIONS["split"] != "none" and tree.get("particles"):  # --particles: the split's median of the truth
        values["particle_median_diameter_um"] = tree["particles"]["diameter_um"]["median"]
        values["particle_volume_weighted_median_um"] = tree["particles"]["diameter_um"]["volume_weighted_median"]
    values.update({f"surface_{k}_per_um": v for k, v in tree["surface"].items() if k != "unit"})
    if tree["pba"] is not None:
        values["pba_pooled"] = tree["pba"]["pooled"]
    return values


def evaluate(group: str, name: str, seg, truth, voxel_size, phases=("pore", "cbd", "am")) -> list[dict]:
    """One row per protocol and metric: truth, reported, total and sampling-only intervals."""
    true = _truth_values(truth, voxel_size, phases)
    rows = []
    for protocol, planes in PROTOCOLS.items():
        hand = np.full_like(truth, 255)
        index = planes(truth.shape[0])
        hand[index] = truth[index]
        tree = analyze_labels(seg, voxel_size=voxel_size, phases=phases, hand_labels=hand, **OPTIONS).to_dict()
        unc = tree["uncertainty"]
        sampling = {m: (e["ci_low"], e["ci_high"]) for m, e in unc["metrics"].items()}
        if unc.get("pba_pooled_from_counts"):
            sampling["pba_pooled"] = (unc["pba_pooled_from_counts"]["ci_low"], unc["pba_pooled_from_counts"]["ci_high"])
        weighted = unc.get("particle_volume_weighted_median_from_particles")
        if weighted:
            sampling["particle_volume_weighted_median_um"] = (weighted["ci_low"], weighted["ci_high"])
        for metric in METRICS:
            total = (unc.get("total") or {}).get(metric)
            if metric == "particle_median_diameter_um" and true.get(metric) is not None and total is not None:
                # no segmentation interval is given for it: the row shows the error as segmented
                rows.append({"group": group, "name": name, "protocol": protocol, "metric": metric,
                             "truth": true[metric], "reported": unc["segmentation"][metric]["reported"],
                             "estimate": None, "low": None, "high": None, "s_low": None, "s_high": None})
                continue
            if metric not in true or true[metric] is None or total is None or total["estimate"] is None:
                continue
            rows.append({"group": group, "name": name, "protocol": protocol, "metric": metric,
                         "truth": true[metric], "reported": unc["segmentation"][metric]["reported"],
                         "estimate": total["estimate"], "low": total["ci_low"], "high": total["ci_high"],
                         "s_low": sampling.get(metric, (None, None))[0], "s_high": sampling.get(metric, (None, None))[1]})
    return rows


def _classical(image, steps, **options):
    prepared = preprocess_volume(image.astype(np.float32), steps=steps).image if steps else image
    if prepared.shape != image.shape:
        raise SystemExit(f"preprocessing changed the shape {image.shape} -> {prepared.shape}")
    return np.asarray(segment_volume(prepared, **options).labels).reshape(prepared.shape)


def synthetic_rows(seeds: int, shape) -> list[dict]:
    steps = builtin_config("preprocess/fibsem.yaml")["steps"]
    rows = []
    for seed in range(seeds):
        for preset in ("nmc_fibsem", "nmc_fibsem_cycled"):
            sample = make_sample(load_preset(preset), seed=seed, shape=list(shape))
            seg = _classical(next(iter(sample.images.values())), steps)
            rows += evaluate("synthetic", f"{preset} seed {seed}", seg, np.asarray(sample.labels), sample.voxel_size)
    return rows


def preset_rows(shape) -> list[dict]:
    rows = []
    for preset, channel, order in (("he_nmc_fibsem", None, None), ("kintsugi_2ch", "cbs", ("cbd", "am", "pore"))):
        steps = builtin_config("preprocess/fibsem.yaml")["steps"]  # on the one detector segmented
        for seed in range(3):
            sample = make_sample(load_preset(preset), seed=seed, shape=list(shape))
            image = sample.images[channel or sample.channels[0]]
            rows_cut = sample.fiducial_rows or 0
            seg = _classical(image[:, rows_cut:], steps, **({"phase_order": order} if order else {}))
            truth = np.asarray(sample.labels)
            rows += evaluate("presets", f"{preset} seed {seed}", seg, truth, sample.voxel_size)
    return rows


def independent_rows() -> list[dict]:
    physics = _physics()
    if not physics.SHARED.is_dir():
        print(f"independent: {physics.SHARED} is not present (set ELECTROSEG_DATA); skipped")
        return []
    steps = builtin_config("preprocess/fibsem.yaml")["steps"]
    rows = []
    for case in physics.cases():
        if case.two_phase:
            continue
        image, truth = physics.stack(case)
        rows += evaluate("independent", case.name, _classical(image, steps), truth, (0.04, 0.02, 0.02))
    return rows


def _inside(value, low, high) -> bool:
    return low is not None and high is not None and low <= value <= high


def coverage_table(rows: list[dict]) -> None:
    print(f"{'group':<12}{'protocol':<18}{'metric':<24}{'n':>4}{'total covers':>14}{'sampling covers':>17}"
          f"{'total width':>13}{'sampling width':>16}{'|reported-truth|':>18}{'|estimate-truth|':>18}")
    keys = sorted({(r["group"], r["protocol"], r["metric"]) for r in rows},
                  key=lambda k: (k[0], list(PROTOCOLS).index(k[1]), METRICS.index(k[2])))
    for group, protocol, metric in keys:
        chosen = [r for r in rows if (r["group"], r["protocol"], r["metric"]) == (group, protocol, metric)]
        n = len(chosen)
        reported = np.mean([abs(r["reported"] - r["truth"]) for r in chosen if r["reported"] is not None])
        if all(r["low"] is None for r in chosen):  # no interval given (the particle median)
            print(f"{group:<12}{protocol:<18}{metric:<24}{n:>4}{'-':>14}{'-':>17}{'-':>13}{'-':>16}{reported:>18.3f}"
                  f"{'-':>18}")
            continue
        total = sum(_inside(r["truth"], r["low"], r["high"]) for r in chosen)
        sampling = sum(_inside(r["truth"], r["s_low"], r["s_high"]) for r in chosen)
        width = np.mean([r["high"] - r["low"] for r in chosen])
        s_width = np.mean([r["s_high"] - r["s_low"] for r in chosen if None not in (r["s_low"], r["s_high"])])
        corrected = np.mean([abs(r["estimate"] - r["truth"]) for r in chosen])
        print(f"{group:<12}{protocol:<18}{metric:<24}{n:>4}{100 * total / n:>12.0f} %{100 * sampling / n:>15.0f} %"
              f"{width:>13.3f}{s_width:>16.3f}{reported:>18.3f}{corrected:>18.3f}")


def drop_table(rows: list[dict], seeds: int) -> None:
    """Cycled − pristine per seed: does the drop's interval hold the true drop; is it significant."""
    print(f"\n{'drop (cycled - pristine)':<28}{'protocol':<18}{'n':>4}{'total covers':>14}{'significant':>13}"
          f"{'sampling covers':>17}{'mean true drop':>16}{'mean width':>12}")
    for metric in ("pba_pooled", "volume_fraction_cbd"):
        for protocol in PROTOCOLS:
            hits = significant = sampling_hits = n = 0
            true_drops, widths = [], []
            for seed in range(seeds):
                pick = {r["name"].split()[0]: r for r in rows if r["group"] == "synthetic" and r["metric"] == metric
                        and r["protocol"] == protocol and r["name"].endswith(f"seed {seed}")}
                if {"nmc_fibsem", "nmc_fibsem_cycled"} - set(pick):
                    continue
                p, c = pick["nmc_fibsem"], pick["nmc_fibsem_cycled"]
                n += 1
                true_drop = c["truth"] - p["truth"]
                _, low, high = difference_interval(*({"estimate": r["estimate"], "ci_low": r["low"], "ci_high": r["high"]}
                                               for r in (p, c)))  # what cycling.json reports
                hits += low <= true_drop <= high
                significant += high < 0 or low > 0
                true_drops.append(true_drop)
                widths.append(high - low)
                s_drop = c["reported"] - p["reported"]
                s_half = np.hypot((c["s_high"] - c["s_low"]) / 2, (p["s_high"] - p["s_low"]) / 2)
                sampling_hits += abs(s_drop - true_drop) <= s_half
            if n:
                print(f"{metric:<28}{protocol:<18}{n:>4}{100 * hits / n:>12.0f} %{significant:>8d} of {n:<2}"
                      f"{100 * sampling_hits / n:>15.0f} %{np.mean(true_drops):>+16.3f}{np.mean(widths):>12.3f}")


LEARNED_METRICS = ("pba_pooled", "volume_fraction_cbd", "volume_fraction_am", "particle_volume_weighted_median_um")


def learned_runs(seeds: int, out: Path, shape=None, preset: str | None = None) -> None:
    """``electroseg run experiment=cycling seed=S`` for each seed, with generator seeds 2S and 2S + 1
    (S = 0: the experiment's own samples; one model per pair, trained on
    both samples' pseudo-labels and hand-labelled pairs, its errors measured on the slices its
    training held out): how often the learned and the classical routes' total intervals hold the
    truth of each sample, and the drop's interval the true drop. ``shape``: ``cycling.shape``
    (default the experiment's own). ``preset``: both samples from that preset instead of
    ``nmc_fibsem`` (its cycled sample with ``nmc_fibsem_cycled``'s CBD detachment). Two more learned rows recompute the same runs' intervals
    from their stored slice errors: with the mean error's bootstrap (``transfer=False``), and
    with the errors pooled over both specimens' held-out volumes (before 2026-12-07, each sample
    was corrected with those)."""
    import json
    import shutil
    import subprocess

    import tifffile
    import yaml

    from electroseg.analysis.segmentation_error import SliceErrors, segmentation_intervals
    from electroseg.pipeline.stages import own_slice_errors, volume_names

    cli = Path(sys.executable).with_name("electroseg")
    rows, drops, estimates, true_drops = [], [], {}, {}

    def capped(folder: Path) -> bool:
        """The training stopped at the experiment's wall-clock safety cap: the machine was too
        busy for its epoch budget, so the model depends on the load."""
        found = folder / "train" / "train_metrics.json"
        return found.is_file() and json.loads(found.read_text()).get("stopped_by") == "max_time"

    for seed in range(seeds):
        folder = out / f"seed{seed}"
        for _ in range(2):
            if (folder / "cycling" / "cycling.json").is_file() and not capped(folder):
                break
            if folder.exists():  # unfinished, or load-dependent: train it again
                if capped(folder):
                    print(f"seed {seed}: its training stopped at the safety cap (max_time): trained again")
                shutil.rmtree(folder)
            samples = f"data.synthetic.samples={{seed0: {2 * seed}, seed1: {2 * seed + 1}}}"  # new particles
            overrides = [] if shape is None else [f"cycling.shape=[{','.join(str(n) for n in shape)}]"]
            if preset is not None:
                detach = ", ".join(f"{k}: {v}" for k, v in load_preset("nmc_fibsem_cycled")["cycling"].items())
                overrides += [f"cycling.pristine={preset}", f"cycling.cycled={preset}",
                              f"cycling.preset_changes={{cycled: {{cycling: {{{detach}}}}}}}"]
            subprocess.run([str(cli), "run", "experiment=cycling", f"seed={seed}", samples, *overrides, f"out={folder}"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if capped(folder):
            print(f"seed {seed}: the training stopped at the safety cap twice (a busy machine); left out")
            continue
        for sample in ("pristine", "cycled"):
            trees = {route: json.loads((folder / sample / "analysis" / route / "metrics.json").read_text())
                     for route in ("classical", "learned", "truth")}
            truth = {"pba_pooled": trees["truth"]["pba"]["pooled"],
                     **{f"volume_fraction_{p}": v for p, v in trees["truth"]["volume_fraction"].items()}}
            if (trees["truth"].get("particles") or {}).get("diameter_um"):  # the split's D50 by volume
                truth["particle_volume_weighted_median_um"] = trees["truth"]["particles"]["diameter_um"]["volume_weighted_median"]
            for route in ("classical", "learned"):
                total = (trees[route]["uncertainty"].get("total") or {})
                for metric in LEARNED_METRICS:
                    entry = total.get(metric)
                    if entry and entry.get("ci_low") is not None and truth.get(metric) is not None:
                        rows.append((route, metric, entry["ci_low"] <= truth[metric] <= entry["ci_high"],
                                     entry["ci_high"] - entry["ci_low"], abs(entry["estimate"] - truth[metric])))
            # the same learned intervals recomputed: the mean error's bootstrap (transfer=False), and
            # the errors pooled over both specimens (the rule before 2026-12-07), for comparison
            tree = trees["learned"]
            stored = json.loads((folder / sample / "predict" / "slice_errors.json").read_text())
            dataset = yaml.safe_load((folder / "train" / "train_config.yaml").read_text())["data"]
            own = [name for name in volume_names(dataset) if f"/{sample}/" in name]
            labels = tifffile.imread(folder / sample / "predict" / "labels.tif")
            counts = tree["uncertainty"]["pba_pooled_from_counts"]
            for label, errors, transfer in (("learned, mean error", own_slice_errors(stored, own)[0], False),
                                            ("learned, pooled errors", own_slice_errors(stored, ())[0], True)):
                found = segmentation_intervals(
                    labels, SliceErrors.from_dict(errors), voxel_size=tree["voxel_size_um"],
                    pba_pooled=tree["pba"]["pooled"], pba_depth_mean=tree["pba"]["depth_mean"], transfer=transfer,
                    sampling={"pba_pooled": (counts["ci_low"], counts["ci_high"])})["total"]["pba_pooled"]
                rows.append((label, "pba_pooled", found["ci_low"] <= truth["pba_pooled"] <= found["ci_high"],
                             found["ci_high"] - found["ci_low"], abs(found["estimate"] - truth["pba_pooled"])))
                estimates.setdefault((seed, label), {})[sample] = found["estimate"]
        routes = json.loads((folder / "cycling" / "cycling.json").read_text())["routes"]
        true_drop = true_drops[seed] = routes["truth"]["drop"]
        for route in ("classical", "learned"):
            estimates[(seed, route)] = {"drop": routes[route].get("corrected_drop", routes[route]["drop"])}
        for route in ("classical", "learned"):
            r = routes[route]
            if r.get("total_low") is not None:
                drops.append((route, r["total_low"] <= true_drop <= r["total_high"], bool(r["significant"]),
                              r["total_high"] - r["total_low"]))
    print(f"\nelectroseg run experiment=cycling, seeds 0-{seeds - 1} (one learned model per pair; "
          f"learned errors from its held-out slices: prediction intervals)\n")
    print(f"{'route':<24}{'metric':<36}{'n':>4}{'total covers':>14}{'mean width':>12}{'|estimate-truth|':>18}")
    for route in ("classical", "learned", "learned, mean error", "learned, pooled errors"):
        for metric in LEARNED_METRICS:
            chosen = [r for r in rows if r[0] == route and r[1] == metric]
            if chosen:
                print(f"{route:<24}{metric:<36}{len(chosen):>4}{100 * np.mean([r[2] for r in chosen]):>12.0f} %"
                      f"{np.mean([r[3] for r in chosen]):>12.3f}{np.mean([r[4] for r in chosen]):>18.3f}")
        chosen = [d for d in drops if d[0] == route]
        if chosen:
            print(f"{route:<24}{'PBA drop':<36}{len(chosen):>4}{100 * np.mean([d[1] for d in chosen]):>12.0f} %"
                  f"{np.mean([d[3] for d in chosen]):>12.3f}   significant in {sum(d[2] for d in chosen)} of {len(chosen)}")
    print(f"\n{'route':<24}{'|drop - true drop|':>20}{'drop / true drop':>18}   (mean over pairs)")
    for route in ("classical", "learned", "learned, mean error", "learned, pooled errors"):
        found = []
        for seed, true_drop in true_drops.items():
            e = estimates.get((seed, route), {})
            drop = e.get("drop", e["cycled"] - e["pristine"] if {"cycled", "pristine"} <= set(e) else None)
            if drop is not None:
                found.append((abs(drop - true_drop), drop / true_drop))
        if found:
            print(f"{route:<24}{np.mean([f[0] for f in found]):>20.3f}{np.mean([f[1] for f in found]):>18.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--shape", type=int, nargs=3, default=[48, 160, 160])
    parser.add_argument("--only", nargs="*", default=["synthetic", "presets", "independent"])
    parser.add_argument("--learned", type=int, default=0, metavar="SEEDS",
                        help="also run `electroseg run experiment=cycling` for seeds 0..SEEDS-1 (about 3 min each) "
                             "and score both routes' total intervals and drops")
    parser.add_argument("--learned-out", type=Path, default=None,
                        help="keep those runs here (reused when complete); default a temporary folder")
    parser.add_argument("--learned-shape", type=int, nargs=3, default=None, metavar=("Z", "Y", "X"),
                        help="the cycling runs' stack shape (cycling.shape; default the experiment's 64 384 384)")
    parser.add_argument("--learned-preset", default=None, metavar="PRESET",
                        help="the cycling runs' samples from this synthetic preset (e.g. he_nmc_fibsem; the cycled "
                             "one with nmc_fibsem_cycled's CBD detachment); default nmc_fibsem")
    parser.add_argument("--particles", action="store_true",
                        help="also the particles (analyze's default split=merged on truth and segmentation): "
                             "the number median's error as segmented (no segmentation interval is given for it) "
                             "and the coverage of the volume-weighted median's (D50 by volume) intervals")
    args = parser.parse_args()
    global METRICS
    if args.particles:
        OPTIONS["split"] = "merged"
        METRICS = (*METRICS, "particle_median_diameter_um", "particle_volume_weighted_median_um")
    start = time.perf_counter()
    rows = []
    if "synthetic" in args.only:
        rows += synthetic_rows(args.seeds, args.shape)
    if "presets" in args.only:
        rows += preset_rows(args.shape)
    if "independent" in args.only:
        rows += independent_rows()
    print(f"classical route, analyze defaults with hand_labels (truth of the listed slices); "
          f"{time.perf_counter() - start:.0f} s\n")
    coverage_table(rows)
    if "synthetic" in args.only:
        drop_table(rows, args.seeds)
    if args.learned:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            learned_runs(args.learned, args.learned_out or Path(tmp), args.learned_shape, args.learned_preset)
    print("\ntotal = uncertainty.total (segmentation error on the labelled slices + sub-block sampling); "
          "sampling = the sub-block interval alone. Target (issue 23): total covers >= 90 %, PBA width < 0.15.")


if __name__ == "__main__":
    main()

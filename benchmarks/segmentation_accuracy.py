"""Segmentation accuracy: mean IoU over phases against truth, each classical step added in turn.

    .venv/bin/python benchmarks/segmentation_accuracy.py [--quick] [--only DATASET ...] [--learned EPOCHS]

The peer is plain multi-Otsu on the raw image. Columns add the classical route's steps one at a
time (`segment_volume` options): noise-sized smoothing (``smooth=auto``), the shine-through rule
(acts only when the stack shows it), cleanup, which together are the defaults of
``electroseg segment``; then the opt-in band reassignment, the defaults before this table
(bands on, shine-through rule without the evidence test, no smoothing) and the modality's
preprocessing followed by the defaults. A second table adds the FIB-SEM preprocessing steps one
at a time (each followed by the defaults) on the stacks. Rows, real data first:

- real: the SAMBA Pt-infiltrated SEM image (labelled rectangles), 11 SegmentPy nano-CT slices
  (dense labels), the NREL nmc1cal micro-CT scribbles (two phases), read from ../shared/data;
- independent: real 3-phase microstructures (TauFactor, MATBOX, inpainter) imaged by
  benchmarks/_fibsem_physics.py, an image model written apart from `electroseg.synthetic`, with
  five shine-through laws (none, exponential, linear, Lorentzian, volume-averaged), varied noise,
  blur and curtaining, in three and in two phases;
- presets: the project's synthetic presets, seed 0.

A control table adds Gaussian noise to the real images (so that the smoothing, idle on them,
has work to do) and scores multi-Otsu, +smooth and the defaults. The columns
``preprocess+old`` / ``preprocess+default`` score the pseudo-labels the learned route trains on (the data configs'
preprocessing + the classical defaults) before and after this change, and a last table the drift
recovery (RMS error of the per-slice shifts).

With ``--learned EPOCHS`` the learned segmenters are trained with the shipped dataset configs
(pseudo-labels + hand-labelled slices; SegmentPy: 8 dense pairs) for at most EPOCHS epochs each and
scored on each config's test split, next to the classical pipeline on that same split:
``multichannel2d`` and ``unet3d`` on nmc_fibsem and on nmc_fibsem_markers (the same specimens
acquired with the cap and its tracking marks in view, drift read from the marks), two detectors
against one on kintsugi_2ch.
The row ``unet3d dense*`` is a control, not a product setting: the same ``unet3d`` trained on the
full ground truth of the other sample (seed1) with no pseudo-labels, i.e. what this model reaches
in the time budget when labels are perfect.
"""

from __future__ import annotations

import os
import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ELECTROSEG_DATA") or REPO.parent / "shared" / "data")
sys.path.insert(0, str(REPO))

from electroseg.classical import segment_volume  # noqa: E402
from electroseg.preprocess import estimate_shifts, preprocess_volume  # noqa: E402

FIBSEM_STEPS = [
    {"step": "register_slices"},
    {"step": "remove_curtaining"},
    {"step": "flatten_shading"},
    {"step": "normalize_slices"},
    {"step": "denoise"},
]
SINGLE_IMAGE_STEPS = [{"step": "denoise"}]


@dataclass
class Dataset:
    """Items of (image, truth, mask); truth uses phase indices into ``phases``."""

    name: str
    images: list[np.ndarray]
    truths: list[np.ndarray]
    masks: list[np.ndarray | None]
    phases: tuple[str, ...] = ("pore", "cbd", "am")
    phase_order: tuple[str, ...] = ("pore", "cbd", "am")
    steps: list[dict] = field(default_factory=list)
    shifts: np.ndarray | None = None
    marked: Callable[[], np.ndarray] | None = None  # the same image with a marker band on top
    raw: list[np.ndarray] | None = None  # what the classical route reads (images + band), if other
    reference: list[np.ndarray] | None = None  # the detector the drift is read from, if not images
    channel_names: tuple[str, ...] = ()  # (image's detector, reference's) for the steps' channel
    group: str = "preset"  # real | independent | preset
    drift: bool = False  # report its drift recovery


DRIFT_TARGET_PX = 0.5  # RMS error of the recovered per-slice shifts (classical issue)
MARKER_ROWS = 32  # height of the cap with tracking marks simulated above the specimen


def mean_iou(labels: np.ndarray, truth: np.ndarray, mask: np.ndarray | None, num_phases: int) -> float:
    """Mean over phases present in the truth of |pred ∩ truth| / |pred ∪ truth| (inside mask)."""
    if mask is not None:
        labels, truth = labels[mask], truth[mask]
    scores = []
    for phase in range(num_phases):
        pred, true = labels == phase, truth == phase
        if true.any():
            scores.append((pred & true).sum() / (pred | true).sum())
    return float(np.mean(scores))


# ---- methods: (dataset) -> list of label arrays -------------------------------------------

PLAIN = {"smooth": None, "gradient": None, "cleanup": None}
STEPS = {  # column -> segment_volume options on the raw image, each adding one step to the last
    "multiotsu": PLAIN,
    "+smooth": {**PLAIN, "smooth": "auto"},
    "+shine": {"smooth": "auto", "cleanup": None},
    "+cleanup=default": {},
}
OPT_IN = {  # the opt-in band reassignment, and the defaults before this table
    "+bands": {"gradient": {"bands": True}},
    "old default": {"smooth": None, "gradient": {"bands": True, "shine_through_evidence": None}},
}


def segment_all(data: Dataset, images: list[np.ndarray], options: dict) -> list[np.ndarray]:
    return [segment_volume(image, phases=data.phases, phase_order=data.phase_order, **options).labels
            for image in images]


def preprocessed(data: Dataset, steps: list[dict]) -> list[np.ndarray]:
    """The images after ``steps`` (the detector the drift is read from travels along, if any)."""
    out = []
    for i, image in enumerate(data.raw or data.images):
        if data.reference:  # registered on another detector, as the dataset config does
            out.append(preprocess_volume(np.stack([image, data.reference[i]]), steps=steps, multichannel=True,
                                         channel_names=data.channel_names).image[0])
        else:
            out.append(preprocess_volume(image, steps=steps).image)
    return out


def run_multiotsu(data: Dataset) -> list[np.ndarray]:
    """Plain multi-Otsu on the raw image (the peer; below the marker band if there is one)."""
    return segment_all(data, data.images, PLAIN)


def run_classical(data: Dataset) -> list[np.ndarray]:
    """The modality's preprocessing + the classical defaults."""
    return segment_all(data, preprocessed(data, data.steps), {})


METHODS: dict[str, Callable[[Dataset], list[np.ndarray]]] = {
    **{name: (lambda data, o=options: segment_all(data, data.images, o)) for name, options in STEPS.items()},
    **{name: (lambda data, o=options: segment_all(data, data.images, o)) for name, options in OPT_IN.items()},
    "preprocess+default": run_classical,
    "preprocess+old": lambda data: segment_all(data, preprocessed(data, data.steps), OPT_IN["old default"]),
}


# ---- datasets --------------------------------------------------------------------------------

def synthetic(preset: str, *, detector: str | None = None, phase_order=None, quick: bool,
              register_on: str | None = None, drift: bool = False) -> Dataset:
    """Sample seed 0 of a preset. The classical route preprocesses as the preset's data config
    does when there is one (what the learned route's pseudo-labels see: with a marker band, register
    on the band and crop it; with ``register_on``, read the drift from that detector), else with
    `FIBSEM_STEPS` (FIB-SEM) or `SINGLE_IMAGE_STEPS`. Multi-Otsu sees the image below any band."""
    from electroseg.config import builtin_config, builtin_config_dir
    from electroseg.synthetic import load_preset, make_images, make_sample

    config = load_preset(preset)
    shape = [32, 192, 192] if quick else None
    sample = make_sample(config, seed=0, shape=shape)
    channel = detector or sample.channels[0]
    rows = sample.fiducial_rows

    def marked() -> np.ndarray:  # the acquisition with the cap above the specimen
        if rows:
            return sample.images[channel]
        return make_images(sample.labels, config, seed=0, fiducial_rows=MARKER_ROWS)[0][channel]

    if (builtin_config_dir() / "data" / f"{preset}.yaml").is_file():  # what training preprocesses with
        steps = builtin_config(f"data/{preset}.yaml")["preprocess"]
    else:
        steps = FIBSEM_STEPS if config.get("modality", "fibsem") == "fibsem" else SINGLE_IMAGE_STEPS
    name = f"{preset} ({channel}{f', drift from {register_on}' if register_on else ''})"
    return Dataset(name, [sample.images[channel][:, rows:]], [sample.labels],
                   [None], phases=tuple(sample.phases), phase_order=tuple(phase_order or sample.phases), steps=steps,
                   drift=drift,
                   shifts=sample.shifts, marked=marked, raw=[sample.images[channel]],
                   reference=[sample.images[register_on]] if register_on else None,
                   channel_names=(channel, register_on) if register_on else ())


def segmentpy(quick: bool) -> Dataset:
    import tifffile

    folder = SHARED / "segmentpy"
    names = sorted((p.name[: -len("_label.tif")] for p in folder.glob("*_label.tif")), key=int)
    names = names[:3] if quick else names
    images = [tifffile.imread(folder / f"{n}.tif").astype(np.float32) for n in names]
    # upstream labels: 0 = NMC (AM), 1 = CBD, 2 = pore -> ours: pore 0, cbd 1, am 2
    truths = [np.array([2, 1, 0], np.uint8)[tifffile.imread(folder / f"{n}_label.tif")] for n in names]
    return Dataset(f"segmentpy nano-CT ({len(names)} slices)", images, truths, [None] * len(names),
                   steps=SINGLE_IMAGE_STEPS, group="real")


SAMBA_ROIS = {  # (x, y, w, h) -> our phase index; Pt-filled pores and voids are both pore
    (241, 199, 102, 174): 2, (710, 346, 207, 200): 0, (4, 460, 145, 52): 1, (344, 524, 24, 44): 0,
}


def samba_kintsugi(phase_order) -> Dataset:
    import tifffile

    image = tifffile.imread(SHARED / "samba_kintsugi" / "4_phase.tif").astype(np.float32)
    truth = np.full(image.shape, 255, np.uint8)
    for (x, y, w, h), phase in SAMBA_ROIS.items():
        truth[y : y + h, x : x + w] = phase
    order = "-".join(phase_order)
    return Dataset(f"samba kintsugi SEM [{order}]", [image], [truth], [truth != 255],
                   phase_order=tuple(phase_order), steps=SINGLE_IMAGE_STEPS, group="real")


def nrel() -> Dataset:
    """NREL nmc1cal micro-CT, two phases scored on the scribbles (1 = NMC, 2 = pore + CBD)."""
    import tifffile

    folder = SHARED / "nrel_expertsegmentation"
    image = tifffile.imread(folder / "nmc1cal.tif").astype(np.float32)
    scribbles = tifffile.imread(folder / "nmc1cal_labels.tiff")
    truth = (scribbles == 1).astype(np.uint8)
    return Dataset("nrel nmc1cal micro-CT scribbles [pore, solid]", [image], [truth], [scribbles != 0],
                   phases=("pore", "solid"), phase_order=("pore", "solid"), steps=SINGLE_IMAGE_STEPS,
                   group="real")


def independent(case) -> Dataset:
    """A real microstructure imaged by benchmarks/_fibsem_physics.py (not the project's simulator)."""
    from _fibsem_physics import stack

    image, truth = stack(case)
    phases = ("pore", "solid") if case.two_phase else ("pore", "cbd", "am")
    return Dataset(case.name, [image], [truth], [None], phases=phases, phase_order=phases,
                   steps=FIBSEM_STEPS, group="independent")


def datasets(quick: bool, only: list[str] | None) -> list[tuple[str, Callable[[], Dataset]]]:
    """(key, maker) in table order: real, independent, presets. ``only`` filters by key; the
    independent stacks are selected together by ``independent``."""
    from _fibsem_physics import cases

    makers: dict[str, Callable[[], Dataset]] = {
        "samba": lambda: samba_kintsugi(("cbd", "am", "pore")),
        "segmentpy": lambda: segmentpy(quick),
        "nrel": nrel,
        # 4 intensity classes (unfilled voids darkest, Pt brightest): multi-Otsu cannot isolate
        # voids (~1 % of the image) and splits the Pt peak instead; kept for reference only
        "samba4": lambda: samba_kintsugi(("pore", "cbd", "am", "pore")),
    }
    for case in cases()[:: 3 if quick else 1]:
        makers[f"independent/{case.name}"] = lambda case=case: independent(case)
    makers.update({
        "nmc_fibsem": lambda: synthetic("nmc_fibsem", quick=quick, drift=True),
        "nmc_fibsem_markers": lambda: synthetic("nmc_fibsem_markers", quick=quick, drift=True),
        "he_nmc_fibsem": lambda: synthetic("he_nmc_fibsem", quick=quick),
        "kintsugi_2ch": lambda: synthetic("kintsugi_2ch", detector="cbs", phase_order=("cbd", "am", "pore"),
                                          quick=quick, register_on="tld", drift=True),
        "xray_ct": lambda: synthetic("xray_ct", quick=quick),
        "demo": lambda: synthetic("demo", quick=quick),
    })
    if not SHARED.is_dir():
        makers = {k: v for k, v in makers.items() if k in {"nmc_fibsem", "nmc_fibsem_markers", "he_nmc_fibsem",
                                                            "kintsugi_2ch", "xray_ct", "demo"}}

    def chosen(key: str) -> bool:
        if not only:
            return key != "samba4"
        return key in only or (key.startswith("independent/") and "independent" in only)

    return [(key, maker) for key, maker in makers.items() if chosen(key)]


# ---- learned methods (--learned): trained with the real `electroseg train` config ------------

LEARNED = {  # dataset key -> (method label, run name in benchmarks/_training_accuracy.RUNS)
    "nmc_fibsem": [("multichannel2d", "nmc_fibsem_2d"), ("unet3d", "nmc_fibsem"),
                   ("unet3d dense*", "nmc_fibsem_dense")],  # * control: trained on seed1's full truth
    "nmc_fibsem_markers": [("multichannel2d", "nmc_fibsem_markers_2d"), ("unet3d", "nmc_fibsem_markers")],
    "kintsugi_2ch": [("mc2d cbs+tld", "kintsugi_2ch"), ("mc2d cbs", "kintsugi_cbs_only")],
    "segmentpy": [("multichannel2d", "segmentpy")],
}


def learned_rows(key: str, name: str, *, epochs: int, quick: bool) -> list[tuple]:
    """Rows of the learned methods for dataset ``key``, each scored on its dataset config's
    test split (synthetic: the training scan's full truth; SegmentPy: 3 held-out pairs), with the
    classical pipeline on the same split as the reference row."""
    import logging

    from _training_accuracy import run_one

    logging.getLogger("lightning").setLevel(logging.WARNING)
    rows, cache = [], REPO / ".cache" / "electroseg"
    for method, run in LEARNED.get(key, []):
        start = time.perf_counter()
        result = run_one(run, epochs=epochs, quick=quick, cache=cache)
        split = f"{name} test split"
        if not any(r[0] == split for r in rows):
            rows.append((split, "classical", result["classical_miou"], float("nan")))
        rows.append((split, method, result["learned_miou"], time.perf_counter() - start))
    return rows


# ---- reporting -------------------------------------------------------------------------------

@dataclass
class Result:
    name: str
    group: str
    scores: dict[str, float]  # method -> mean IoU
    seconds: dict[str, float]
    steps: dict[str, float] = field(default_factory=dict)  # preprocessing steps in turn -> mean IoU


def score(data: Dataset, predictions: list[np.ndarray]) -> float:
    return float(np.mean([mean_iou(p, t, m, len(data.phases))
                          for p, t, m in zip(predictions, data.truths, data.masks)]))


def steps_in_turn(data: Dataset) -> dict[str, float]:
    """Mean IoU of the defaults after the modality's preprocessing steps, added one at a time."""
    out: dict[str, float] = {}
    for k in range(1, len(data.steps) + 1):
        if k < len(data.steps) and data.steps[k]["step"] == "crop":
            continue  # a crop (of a marker band) goes with the registration before it
        step = data.steps[k - 2 if data.steps[k - 1]["step"] == "crop" else k - 1]["step"]
        label = "+" + step.replace("_slices", "").replace("remove_", "")
        out[label] = score(data, segment_all(data, preprocessed(data, data.steps[:k]), {}))
    return out


def accuracy_rows(quick: bool, only: list[str] | None,
                  learned_epochs: int | None = None) -> tuple[list[Result], list[tuple], list[tuple]]:
    results, drift_rows, learned = [], [], []
    for key, make in datasets(quick, only):
        data = make()
        scores, seconds = {}, {}
        for method, run in METHODS.items():
            start = time.perf_counter()
            scores[method] = score(data, run(data))
            seconds[method] = time.perf_counter() - start
        steps = steps_in_turn(data) if data.images[0].ndim == 3 and len(data.steps) > 1 else {}
        results.append(Result(data.name, data.group, scores, seconds, steps))
        print(f"  {data.name}: multiotsu {scores['multiotsu']:.4f}, default {scores['+cleanup=default']:.4f}",
              file=sys.stderr, flush=True)
        if data.drift:
            drift_rows.append(drift_error(data))
        if learned_epochs:
            learned += learned_rows(key, data.name, epochs=learned_epochs, quick=quick)
    return results, drift_rows, learned


NOISE_LEVELS = (0.3, 0.6)  # added Gaussian noise, in units of the smallest contrast between class means


def noisy_real_rows(quick: bool) -> list[tuple]:
    """Control of the noise-sized smoothing on real structure: the real images with Gaussian
    noise added (std = level x the smallest contrast between multi-Otsu class means, so a
    separation of 1 / level), multi-Otsu against +smooth and the defaults."""
    from electroseg.classical.thresholds import apply_thresholds, multiotsu_thresholds

    rows = []
    for key, make in datasets(quick, ["samba", "segmentpy", "nrel"]):
        data = make()
        for level in NOISE_LEVELS:
            noisy = []
            for k, image in enumerate(data.images):
                image = image.astype(np.float32)
                classes = apply_thresholds(image, multiotsu_thresholds(image, classes=len(data.phase_order)))
                contrast = np.min(np.diff([image[classes == c].mean() for c in range(len(data.phase_order))]))
                noise = np.random.default_rng(k).normal(0, level * contrast, image.shape).astype(np.float32)
                noisy.append(image + noise)
            scores = [score(data, segment_all(data, noisy, options))
                      for options in (PLAIN, STEPS["+smooth"], {})]
            rows.append((data.name, level, *scores))
    return rows


def drift_error(data: Dataset) -> tuple[str, float, float, float, float]:
    """RMS error (px) of recovered shifts: from the specimen alone (the sample's image), the same
    from the less contrasted half of the tiles (``tile_contrast=[0.25, 1]``: particle walls left
    out, as the nmc_fibsem and kintsugi_2ch data configs register), on a rigid control stack
    (slice 0 repeated, moved by the same drift: no structural change between slices), and from the cap with tracking marks above the specimen (`preprocess=fibsem_markers`:
    the same acquisition with the band the papers register on)."""
    from scipy import ndimage as ndi

    from drift import rms_error

    truth = data.shifts - data.shifts[0]
    specimen = data.reference[0] if data.reference else data.images[0]
    estimated = estimate_shifts(specimen)
    interior = estimate_shifts(specimen, tile_contrast=[0.25, 1.0])
    rigid = np.stack([ndi.shift(specimen[0].astype(np.float32), s, order=3, mode="nearest") for s in truth])
    control = estimate_shifts(rigid)
    marked = data.marked()
    rows = marked.shape[1] - data.images[0].shape[1]
    markers = estimate_shifts(marked, fiducial_roi=[[0, rows], None], highpass_sigma=4.0)
    return data.name, *(rms_error(e, truth) for e in (estimated, interior, control, markers))


DEFAULT = "+cleanup=default"


def print_tables(results: list[Result], drift_rows: list[tuple], learned: list[tuple],
                 noisy: list[tuple] = ()) -> None:
    width = max(len(r.name) for r in results) + 2
    methods = list(METHODS)
    print("mean IoU; columns after multiotsu: difference to multiotsu on the raw image")
    print(f"{'dataset':<{width}}{'group':<13}" + "".join(f"{m:>{max(9, len(m) + 2)}}" for m in methods))
    for r in results:
        cells = [f"{r.scores['multiotsu']:>9.4f}"] + [
            f"{r.scores[m] - r.scores['multiotsu']:>+{max(9, len(m) + 2)}.4f}" for m in methods[1:]]
        print(f"{r.name:<{width}}{r.group:<13}" + "".join(cells))
    print(f"\n`electroseg segment` defaults ({DEFAULT[1:]}) against multiotsu, by group:")
    print(f"{'group':<28}{'n':>4}{'mean':>9}{'min':>9}{'below -0.001':>14}{'old default':>13}{'+bands':>9}")
    groups = [("real", ("real",)), ("presets", ("preset",)), ("independent", ("independent",)),
              ("real + presets", ("real", "preset")), ("all", ("real", "preset", "independent"))]
    for label, members in groups:
        chosen = [r for r in results if r.group in members]
        if not chosen:
            continue
        diff = np.array([r.scores[DEFAULT] - r.scores["multiotsu"] for r in chosen])
        old = np.mean([r.scores["old default"] - r.scores["multiotsu"] for r in chosen])
        bands = np.mean([r.scores["+bands"] - r.scores["multiotsu"] for r in chosen])
        print(f"{label:<28}{len(chosen):>4}{diff.mean():>+9.4f}{diff.min():>+9.4f}{int((diff < -0.001).sum()):>14}"
              f"{old:>+13.4f}{bands:>+9.4f}")
    stacks = [r for r in results if r.steps]
    if stacks:
        names = list(stacks[0].steps)
        print("\npreprocessing steps added in turn (each followed by the defaults); difference to the defaults "
              "on the raw image")
        print(f"{'dataset':<{width}}{'default':>9}" + "".join(f"{n:>14}" for n in names))
        for r in stacks:
            base = r.scores[DEFAULT]
            cells = [f"{r.steps.get(n, np.nan) - base:>+14.4f}" for n in names]
            print(f"{r.name:<{width}}{base:>9.4f}" + "".join(cells))
        for label, members in (("independent", ("independent",)), ("presets", ("preset",))):
            chosen = [r for r in stacks if r.group in members]
            if chosen:
                means = [np.nanmean([r.steps.get(n, np.nan) - r.scores[DEFAULT] for r in chosen]) for n in names]
                print(f"{'mean ' + label:<{width}}{'':>9}" + "".join(f"{m:>+14.4f}" for m in means))
    if noisy:
        print("\ncontrol: the real images with noise added (std = level x the smallest class contrast)")
        print(f"{'dataset':<{width}}{'level':>7}{'multiotsu':>11}{'+smooth':>10}{'default':>10}")
        for name, level, plain, smooth, default in noisy:
            print(f"{name:<{width}}{level:>7.1f}{plain:>11.4f}{smooth - plain:>+10.4f}{default - plain:>+10.4f}")
    if learned:
        print(f"\n{'learned (test splits)':<{width}}{'method':<16}{'mean IoU':>9}{'seconds':>9}")
        for dataset, method, value, seconds in learned:
            print(f"{dataset:<{width}}{method:<16}{value:>9.4f}{seconds:>9.1f}")
    if drift_rows:
        print(f"\ndrift recovery, RMS error of per-slice shifts (px; target {DRIFT_TARGET_PX}):")
        print(f"{'dataset':<{width}}{'specimen':>9}{'walls left out':>16}{'rigid control':>15}{'marker band':>13}")
        for name, sample, interior, control, markers in drift_rows:
            print(f"{name:<{width}}{sample:>9.3f}{interior:>16.3f}{control:>15.3f}{markers:>13.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller synthetic volumes, 3 SegmentPy slices")
    parser.add_argument("--only", nargs="*", help="dataset keys: samba segmentpy nrel independent nmc_fibsem "
                                                  "nmc_fibsem_markers he_nmc_fibsem kintsugi_2ch xray_ct demo "
                                                  "noisy (the control table of real images with noise added) "
                                                  "(default all of these), samba4")
    parser.add_argument("--learned", type=int, metavar="EPOCHS",
                        help="also train multichannel2d / unet3d for at most EPOCHS epochs each (early "
                             "stopping may end them sooner) and add their rows")
    args = parser.parse_args()
    noisy = noisy_real_rows(args.quick) if SHARED.is_dir() and (not args.only or "noisy" in args.only) else []
    print_tables(*accuracy_rows(args.quick, args.only, args.learned), noisy)


if __name__ == "__main__":
    main()

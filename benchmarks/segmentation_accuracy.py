"""Segmentation accuracy: mean IoU over phases against ground truth, dataset x method.

    .venv/bin/python benchmarks/segmentation_accuracy.py [--quick] [--only DATASET ...] [--learned EPOCHS]

Rows are (dataset, method) -> mean IoU; the peer is plain multi-Otsu ("multiotsu") and the last
column is the difference to it on the same dataset. To add a method, write a function
``(dataset) -> list of label arrays`` (one per item, phase indices) and register it in METHODS.
Datasets: synthetic FIB-SEM presets from `electroseg.synthetic` (dense truth), real SegmentPy
nano-CT slices (dense labels) and the Pt-infiltrated SAMBA SEM image (labelled rectangles), read
from ../shared/data. A second table reports drift recovery (RMS error of the per-slice shifts):
from the specimen alone, and from a band showing the protective cap with tracking marks above
it (the same acquisition simulated with ``fiducial_rows``), which is what Tang et al. register on.

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

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
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

def run_multiotsu(data: Dataset) -> list[np.ndarray]:
    """Plain multi-Otsu on the raw image (the peer; below the marker band if there is one)."""
    return [segment_volume(image, phases=data.phases, phase_order=data.phase_order,
                           gradient=None, cleanup=None).labels for image in data.images]


def run_classical(data: Dataset) -> list[np.ndarray]:
    """Default preprocessing of the modality + thresholds + gradient analysis + cleanup."""
    out = []
    for i, image in enumerate(data.raw or data.images):
        if data.reference:  # registered on another detector, as the dataset config does
            prepared = preprocess_volume(np.stack([image, data.reference[i]]), steps=data.steps, multichannel=True,
                                         channel_names=data.channel_names).image[0]
        else:
            prepared = preprocess_volume(image, steps=data.steps).image
        out.append(segment_volume(prepared, phases=data.phases, phase_order=data.phase_order).labels)
    return out


METHODS: dict[str, Callable[[Dataset], list[np.ndarray]]] = {
    "multiotsu": run_multiotsu,
    "classical": run_classical,
}


# ---- datasets --------------------------------------------------------------------------------

def synthetic(preset: str, *, detector: str | None, phase_order, quick: bool,
              register_on: str | None = None) -> Dataset:
    """Sample seed 0 of a preset. With a marker band (preset ``fiducial_rows``) the classical
    route uses its data config's preprocessing (register on the band, crop it) and multi-Otsu sees
    the image below the band. With ``register_on`` (another detector) the classical route uses
    the data config's preprocessing, which reads the drift from that detector."""
    from electroseg.config_files import builtin_config
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

    steps = builtin_config(f"data/{preset}.yaml")["preprocess"] if rows or register_on else FIBSEM_STEPS
    name = f"synthetic {preset} ({channel}{f', drift from {register_on}' if register_on else ''})"
    return Dataset(name, [sample.images[channel][:, rows:]], [sample.labels],
                   [None], phases=sample.phases, phase_order=phase_order, steps=steps,
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
                   steps=SINGLE_IMAGE_STEPS)


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
                   phase_order=tuple(phase_order), steps=SINGLE_IMAGE_STEPS)


def datasets(quick: bool, only: list[str] | None) -> list[tuple[str, Callable[[], Dataset]]]:
    makers = {
        "nmc_fibsem": lambda: synthetic("nmc_fibsem", detector=None, phase_order=("pore", "cbd", "am"), quick=quick),
        "nmc_fibsem_markers": lambda: synthetic("nmc_fibsem_markers", detector=None,
                                                phase_order=("pore", "cbd", "am"), quick=quick),
        "kintsugi_2ch": lambda: synthetic("kintsugi_2ch", detector="cbs", phase_order=("cbd", "am", "pore"),
                                           quick=quick, register_on="tld"),
        "segmentpy": lambda: segmentpy(quick),
        "samba": lambda: samba_kintsugi(("cbd", "am", "pore")),
        # 4 intensity classes (unfilled voids darkest, Pt brightest): multi-Otsu cannot isolate
        # voids (~1 % of the image) and splits the Pt peak instead; kept for reference only
        "samba4": lambda: samba_kintsugi(("pore", "cbd", "am", "pore")),
    }
    default = [k for k in makers if k != "samba4"]
    if not SHARED.is_dir():
        makers = {k: v for k, v in makers.items() if not k.startswith(("segmentpy", "samba"))}
    return [(name, maker) for name, maker in makers.items() if (name in only if only else name in default)]


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

def accuracy_rows(quick: bool, only: list[str] | None,
                  learned_epochs: int | None = None) -> tuple[list[tuple], list[tuple]]:
    rows, drift_rows = [], []
    for key, make in datasets(quick, only):
        data = make()
        for method, run in METHODS.items():
            start = time.perf_counter()
            predictions = run(data)
            score = np.mean([mean_iou(p, t, m, len(data.phases))
                             for p, t, m in zip(predictions, data.truths, data.masks)])
            rows.append((data.name, method, float(score), time.perf_counter() - start))
        if data.shifts is not None:
            drift_rows.append(drift_error(data))
        if learned_epochs:
            rows += learned_rows(key, data.name, epochs=learned_epochs, quick=quick)
    return rows, drift_rows


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


def print_tables(rows: list[tuple], drift_rows: list[tuple]) -> None:
    peer = {d: s for d, m, s, _ in rows if m == "multiotsu"}
    classical = {d: s for d, m, s, _ in rows if m == "classical"}
    width = max(len(r[0]) for r in rows) + 2
    print(f"{'dataset':<{width}}{'method':<16}{'mean IoU':>9}{'vs multiotsu':>14}{'vs classical':>14}{'seconds':>9}")
    for dataset, method, score, seconds in rows:
        vs_peer = score - peer.get(dataset, np.nan)
        vs_classical = score - classical.get(dataset, np.nan) if method != "classical" else np.nan
        print(f"{dataset:<{width}}{method:<16}{score:>9.4f}{vs_peer:>+14.4f}{vs_classical:>+14.4f}{seconds:>9.1f}")
    if drift_rows:
        print(f"\ndrift recovery, RMS error of per-slice shifts (px; target {DRIFT_TARGET_PX}):")
        print(f"{'dataset':<{width}}{'specimen':>9}{'walls left out':>16}{'rigid control':>15}{'marker band':>13}")
        for name, sample, interior, control, markers in drift_rows:
            print(f"{name:<{width}}{sample:>9.3f}{interior:>16.3f}{control:>15.3f}{markers:>13.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller synthetic volumes, 3 SegmentPy slices")
    parser.add_argument("--only", nargs="*", help="dataset keys: nmc_fibsem nmc_fibsem_markers kintsugi_2ch segmentpy "
                                                  "samba (default all of these), samba4")
    parser.add_argument("--learned", type=int, metavar="EPOCHS",
                        help="also train multichannel2d / unet3d for at most EPOCHS epochs each (early "
                             "stopping may end them sooner) and add their rows")
    args = parser.parse_args()
    print_tables(*accuracy_rows(args.quick, args.only, args.learned))


if __name__ == "__main__":
    main()

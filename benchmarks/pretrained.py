"""The shipped pretrained models on real data: zero-shot, and fine-tuned from few labels.

Peers in the same run: the classical route (its defaults after the single-image preprocessing,
phase order as the image shows it) and plain multi-Otsu for zero-shot; the same network trained
from scratch with the same step budget for fine-tuning.

- ``segmentpy``: SegmentPy nano-CT (dense labels), test slices 470 / 510 / 546: zero-shot
  ``electrode-3phase``; fine-tuned (``init=pretrained:electrode-3phase``) on **one** labelled
  slice (200) against from scratch on all 8 training slices.
- ``samba``: the SAMBA kintsugi SEM image (Pt-filled pores brightest), scored on the four
  hand-drawn rectangles: zero-shot ``electrode-3phase``.
- ``independent``: real microstructures (TauFactor, MATBOX, inpainter) imaged by
  ``benchmarks/_fibsem_physics.py`` with physics that is not the generator's, 15 three-phase and
  6 two-phase stacks: zero-shot ``electrode-3phase`` / ``electrode-2phase``.
- ``nrel``: NREL nmc1cal micro-CT, fine-tuned from its scribbles with
  ``init=pretrained:electrode-2phase``: agreement on each scribble slice, solid fraction.
- ``synthetic``: ``nmc_fibsem`` (tiny shape), fine-tuned against from scratch at the same budget,
  mean IoU against the generator's truth.
- ``one_slice`` (only with ``--only one_slice``; scikit-learn, ``pip install -e .[bench]``): the
  control for the one-slice fine-tuning target: the ilastik-style random forest of
  ``real_data.py`` fitted on each training slice alone against fitted on all 8, scored on the
  test slices. Does one slice carry what eight do, whatever the starting point?
- ``scale`` (only with ``--only scale``): zero-shot ``electrode-3phase`` on SegmentPy and SAMBA
  with the image resampled by a fixed factor before prediction (labels resampled back, nearest):
  how much of the zero-shot failure is the scale of the features, against the 10-200 pixels per
  particle the model saw; then two candidate per-image rules from the image's feature size (its
  correlation length) against the pretraining images', scored also on the independent-physics
  stacks (``scale=auto`` is the rule that shipped).
- ``blur`` (only with ``--only blur``): zero-shot on generator CT images blurred within and beyond
  the training range (0.8 / 2 / 4 px), with the AM and CBD fractions it finds against the truth.
- ``oracle`` (only with ``--only oracle``): the control for SegmentPy's zero-shot target: two
  grey thresholds at percentiles chosen on the test slices' own truth.

    .venv/bin/python benchmarks/pretrained.py [--only segmentpy samba independent nrel synthetic one_slice scale blur oracle]
        [--epochs 10]
        [--candidate electrode-3phase=RUN/checkpoints/best.ckpt]

``--candidate`` scores a newly trained checkpoint in place of the shipped one (zero-shot rows),
before ``benchmarks/pretrain.py --install`` ships it.

Needs $ELECTROSEG_DATA (default ../shared/data) for the real cases.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from real_data import (DATA, SEGMENTPY_TEST, SEGMENTPY_TRAIN, _rf_segmentpy, _segmentpy_phases,  # noqa: E402
                       _segmentpy_truth, _train)
from _training_accuracy import mean_iou  # noqa: E402

from electroseg.classical import segment_volume  # noqa: E402
from electroseg.inference import load_checkpoint, predict_volume  # noqa: E402
from electroseg.inference.scale import feature_length  # noqa: E402
from electroseg.preprocess import preprocess_volume  # noqa: E402

DENOISE = [{"step": "denoise"}]
SAMBA_ROIS = {(241, 199, 102, 174): 2, (710, 346, 207, 200): 0, (4, 460, 145, 52): 1, (344, 524, 24, 44): 0}


def samba_rectangles() -> tuple[np.ndarray, np.ndarray]:
    """The samba_kintsugi SEM image and its truth: the four hand-drawn rectangles (`SAMBA_ROIS`),
    255 elsewhere."""
    image = tifffile.imread(DATA / "samba_kintsugi" / "4_phase.tif")
    truth = np.full(image.shape, 255, np.uint8)
    for (x, y, w, h), phase in SAMBA_ROIS.items():
        truth[y: y + h, x: x + w] = phase
    return image, truth


def blurred_ct(sigma_px: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A randomised CT microstructure (4 x 256 x 256; the first CT draw of seed 1000 + ``seed``)
    rendered with a blur of ``sigma_px`` pixels and grey levels fixed at pore 0.2, CBD 0.45,
    AM 0.85, so that only the blur varies: (image, truth)."""
    from electroseg.synthetic import load_preset, make_images, make_labels_and_particles
    from electroseg.synthetic.randomize import random_preset

    base = load_preset("nmc_fibsem")
    rng = np.random.default_rng(1000 + seed)
    preset = random_preset(rng, base=base)
    while preset["modality"] != "ct":
        preset = random_preset(rng, base=base)
    preset["detectors"]["image"].update(blur_sigma_um=sigma_px * preset["voxel_size"][1], levels=[0.2, 0.45, 0.85])
    truth, _, _ = make_labels_and_particles(preset, seed=seed, shape=[4, 256, 256])
    image = np.asarray(next(iter(make_images(truth, preset, seed=seed)[0].values())), np.float32)
    return image, truth


def _classical(image: np.ndarray, phase_order=("pore", "cbd", "am"), plain: bool = False) -> np.ndarray:
    if plain:
        return segment_volume(image.astype(np.float32), phase_order=phase_order, smooth=None, gradient=None,
                              cleanup=None).labels
    prepared = preprocess_volume(image.astype(np.float32), steps=DENOISE).image
    return segment_volume(prepared, phase_order=phase_order).labels


def _pretrained(name: str, args):
    """The shipped model ``name``, or the checkpoint ``--candidate name=PATH`` names (scored before
    it is installed). A candidate takes for ``scale=auto`` the feature size of the images it was
    trained on (``benchmarks/pretrain.py`` keeps them two folders above ``checkpoints/``), as
    ``--install`` would record it; the shipped model's where they are not there."""
    from dataclasses import replace

    from pretrain import training_feature_length

    shipped = load_checkpoint(f"pretrained:{name}")
    path = dict(args.candidate).get(name)
    if path is None:
        return shipped
    length = training_feature_length(Path(path).resolve().parents[2])
    print(f"--candidate {name}: training feature size {length or shipped.feature_length} px"
          f"{'' if length else ' (the shipped model’s: no training images beside the checkpoint)'}")
    return replace(load_checkpoint(path), feature_length=length or shipped.feature_length)


def segmentpy(args, work: Path) -> list[dict]:
    model = _pretrained("electrode-3phase", args)
    images = {n: tifffile.imread(DATA / "segmentpy" / f"{n}.tif") for n in SEGMENTPY_TEST}
    truth = {n: _segmentpy_truth(n) for n in SEGMENTPY_TEST}

    def score(predict) -> float:
        return float(np.mean([mean_iou(predict(images[n]), truth[n], 3) for n in SEGMENTPY_TEST]))

    rows = [{"case": "segmentpy test slices, zero-shot", "method": "pretrained electrode-3phase",
             "score": score(lambda im: predict_volume(model, im).labels)},
            {"case": "segmentpy test slices, zero-shot", "method": "classical defaults", "score": score(_classical)},
            {"case": "segmentpy test slices, zero-shot", "method": "multi-Otsu", "score": score(lambda im: _classical(im, plain=True))}]
    root = str(DATA / "segmentpy")
    one = ["data=segmentpy", "model=multichannel2d", "model.context_slices=0", f"data.root={root}",
           "data.volumes=[{images: {xct: 200.tif}, labels: 200_label.tif, split: train}]"]
    for name, overrides in (("fine-tuned from pretrained on 1 slice (200)", [*one, "init=pretrained:electrode-3phase"]),
                            ("from scratch on 1 slice (200)", one),
                            ("from scratch on all 8 training slices",
                             ["data=segmentpy", "model=multichannel2d", "model.context_slices=0", f"data.root={root}"])):
        start = time.perf_counter()
        trained, _, _ = _train(args, work / re.sub(r"[^a-z0-9]+", "_", name), overrides)
        rows.append({"case": f"segmentpy test slices, {args.epochs} epochs", "method": name,
                     "score": score(lambda im, m=trained: predict_volume(m, im).labels),
                     "seconds": time.perf_counter() - start})
    return rows



def one_slice(args, work: Path) -> list[dict]:
    """The forest fitted on one training slice at a time, and on all 8, scored on the test slices."""
    truth = {n: _segmentpy_truth(n) for n in SEGMENTPY_TEST}
    rows = []
    for fitted_on in [(n,) for n in SEGMENTPY_TRAIN] + [SEGMENTPY_TRAIN]:
        start = time.perf_counter()
        scores = [mean_iou(_segmentpy_phases(p), truth[n], 3)
                  for p, n in zip(_rf_segmentpy(fitted_on, SEGMENTPY_TEST, args.seed), SEGMENTPY_TEST)]
        name = f"slice {fitted_on[0]} alone" if len(fitted_on) == 1 else "all 8 training slices"
        rows.append({"case": "segmentpy test slices, random forest", "method": f"fitted on {name}",
                     "score": float(np.mean(scores)), "seconds": time.perf_counter() - start,
                     "note": " / ".join(f"{s:.3f}" for s in scores)})
    return rows


def samba(args, work: Path) -> list[dict]:
    image, truth = samba_rectangles()
    model = _pretrained("electrode-3phase", args)
    order = ("cbd", "am", "pore")  # Pt-filled pores brightest: the classical route must be told
    return [{"case": "samba SEM rectangles, zero-shot", "method": m, "score": mean_iou(labels, truth, 3)}
            for m, labels in (("pretrained electrode-3phase", predict_volume(model, image).labels),
                              ("classical defaults (phase_order cbd,am,pore)", _classical(image, order)),
                              ("multi-Otsu (phase_order cbd,am,pore)", _classical(image, order, plain=True)))]


def nrel(args, work: Path) -> list[dict]:
    folder = DATA / "nrel_expertsegmentation"
    scribbles = tifffile.imread(folder / "nmc1cal_labels.tiff")
    rows = []
    for name, extra in (("fine-tuned from electrode-2phase", ["init=pretrained:electrode-2phase"]),
                        ("from scratch (2.5-D, as shipped)", ["model.context_slices=1"])):
        model, _, seconds = _train(args, work / name.split()[0], ["data=nrel_nmc1cal", f"data.root={folder}",
                                                                  "model=multichannel2d", *extra])
        labels = predict_volume(model, tifffile.imread(folder / "nmc1cal.tif")).labels
        per_slice = []
        for z in np.flatnonzero((scribbles != 0).reshape(scribbles.shape[0], -1).any(axis=1)):
            marked = scribbles[z] != 0
            per_slice.append(f"{z}: {100 * np.mean(labels[z][marked] == (scribbles[z][marked] == 1)):.1f} %")
        rows.append({"case": f"nrel scribbles, {args.epochs} epochs", "method": name,
                     "score": float(np.mean(labels == 1)), "note": "solid fraction; agreement " + ", ".join(per_slice),
                     "seconds": seconds})
    return rows


def synthetic(args, work: Path) -> list[dict]:
    rows = []
    for name, extra in (("fine-tuned from electrode-3phase", ["init=pretrained:electrode-3phase"]),
                        ("from scratch", ["model.context_slices=0"])):
        from electroseg.config import compose_command
        from electroseg.synthetic import load_preset, make_sample
        from electroseg.synthetic.samples import prepare_synthetic
        from electroseg.training import train

        out = work / f"synthetic_{name.split()[0]}"
        cfg = compose_command("train", ["data=nmc_fibsem", "model=multichannel2d", "+data.synthetic.shape=[32,160,160]",
                                        *extra, f"trainer.max_epochs={args.epochs}", "trainer.max_time=null",
                                        "trainer.enable_progress_bar=false", f"seed={args.seed}", f"out={out}",
                                        f"cache_dir={work / 'cache'}"])
        prepare_synthetic(cfg)
        start = time.perf_counter()
        train(cfg)
        seconds = time.perf_counter() - start
        model = load_checkpoint(out / "checkpoints" / "best.ckpt")

        sample = make_sample(load_preset("nmc_fibsem"), seed=0, shape=[32, 160, 160])
        image = next(iter(sample.images.values()))
        labels = predict_volume(model, image).labels
        rows.append({"case": f"nmc_fibsem 32x160x160 seed 0, {args.epochs} epochs", "method": name,
                     "score": mean_iou(labels, np.asarray(sample.labels), 3), "seconds": seconds})
    return rows


def independent(args, work: Path) -> list[dict]:
    """Real microstructures imaged by benchmarks/_fibsem_physics.py (five shine-through laws, not
    the generator's), zero-shot against the classical route after preprocess=fibsem."""
    from _fibsem_physics import cases, stack

    from electroseg.config import builtin_config

    steps = builtin_config("preprocess/fibsem.yaml")["steps"]
    models = {2: _pretrained("electrode-2phase", args), 3: _pretrained("electrode-3phase", args)}
    scores: dict[str, list] = {}
    for case in cases():
        image, truth = stack(case)
        k = 2 if case.two_phase else 3
        phases = ("pore", "solid") if k == 2 else ("pore", "cbd", "am")
        prepared = preprocess_volume(image, steps=steps).image
        found = {"pretrained": predict_volume(models[k], image).labels,
                 "classical": segment_volume(prepared, phases=phases, phase_order=phases).labels.reshape(truth.shape)}
        for method, labels in found.items():
            scores.setdefault(f"{k}-phase {method}", []).append(mean_iou(labels, truth, k))
    return [{"case": f"independent physics, {len(v)} stacks, zero-shot", "method": m, "score": float(np.mean(v)),
             "note": f"worst {min(v):.3f}"} for m, v in scores.items()]


def scale_rules(args, work: Path) -> list[dict]:
    """Two per-image rules from the feature size (correlation length): resample to the median
    of 16 randomised pretraining samples, or ``scale=auto`` (only an image larger than the
    model's recorded training 90th percentile is brought down to it). Scored on SegmentPy, SAMBA and
    the independent-physics stacks (whose feature sizes lie inside the training range)."""
    from _fibsem_physics import cases, stack

    from electroseg.synthetic import load_preset
    from electroseg.synthetic.randomize import random_sample

    base = load_preset("nmc_fibsem")
    train = [feature_length(random_sample(seed, shape=(4, 192, 192), base=base)[0][2]) for seed in range(1000, 1016)]
    median = float(np.median(train))
    models = {2: _pretrained("electrode-2phase", args), 3: _pretrained("electrode-3phase", args)}
    rules = {"training median": lambda length: min(1.0, median / length),
             "scale=auto (down to the training 90th percentile)": "auto"}
    samples = [(f"segmentpy {n}", tifffile.imread(DATA / "segmentpy" / f"{n}.tif"), _segmentpy_truth(n), 3)
               for n in SEGMENTPY_TEST]
    samples.append(("samba", *samba_rectangles(), 3))
    for i, case in enumerate(cases()):
        volume, truth = stack(case)
        samples.append((f"independent {i}", volume, truth, 2 if case.two_phase else 3))
    groups: dict[tuple[str, str], list] = {}
    lengths: dict[str, list] = {}
    for name, volume, truth, k in samples:
        group = name.split()[0]
        length = feature_length(volume)
        lengths.setdefault(group, []).append(length)
        for rule, factor in (("as it is", lambda _: 1.0), *rules.items()):
            if factor == "auto":  # what electroseg predict does: the model's recorded training feature size
                labels = predict_volume(models[k], volume, scale="auto").labels
            else:
                f = factor(length)
                labels = predict_volume(models[k], volume, scale=f).labels
            groups.setdefault((group, rule), []).append(mean_iou(labels, truth, k))
    print(f"\npretraining feature sizes (px, 16 randomised samples): {sorted(train)}; median {median:.0f}; "
          f"recorded by the shipped models (90th percentile of their training images): "
          f"{models[3].feature_length} (3-phase), {models[2].feature_length} (2-phase)")
    print("feature sizes: " + ", ".join(f"{g} {np.median(v):.0f}" for g, v in lengths.items()))
    return [{"case": f"{group} zero-shot, scale rule", "method": rule, "score": float(np.mean(v)),
             "note": f"{len(v)} image(s)"} for (group, rule), v in groups.items()]


def scale(args, work: Path) -> list[dict]:
    model = _pretrained("electrode-3phase", args)
    rows = []
    images = {n: tifffile.imread(DATA / "segmentpy" / f"{n}.tif") for n in SEGMENTPY_TEST}
    truth = {n: _segmentpy_truth(n) for n in SEGMENTPY_TEST}
    for factor in (1.0, 0.5, 0.25):  # predict_volume shrinks only: scale in (0, 1]
        score = float(np.mean([mean_iou(predict_volume(model, images[n], scale=factor).labels, truth[n], 3)
                               for n in SEGMENTPY_TEST]))
        rows.append({"case": "segmentpy test slices, zero-shot", "method": f"electrode-3phase at scale {factor}",
                     "score": score})
    image, samba_truth = samba_rectangles()
    for factor in (1.0, 0.5, 0.25, 0.125):
        labels = predict_volume(model, image, scale=factor).labels
        recall = [float((labels[samba_truth == k] == k).mean()) for k in range(3)]
        rows.append({"case": "samba SEM rectangles, zero-shot", "method": f"electrode-3phase at scale {factor}",
                     "score": mean_iou(labels, samba_truth, 3),
                     "note": "recall pore/cbd/am " + "/".join(f"{r:.2f}" for r in recall)})
    return rows + scale_rules(args, work)


def blur(args, work: Path) -> list[dict]:
    """Zero-shot on generator CT images blurred beyond (4 px) and within (0.8, 2 px) the shipped
    training range: where does the model put the blurred rim of a particle? Four randomised CT
    microstructures (4 x 256 x 256, seeds 1000-1003), grey levels fixed at pore 0.2, CBD 0.45,
    AM 0.85 so that only the blur varies; AM and CBD fractions, predicted against true."""
    model = _pretrained("electrode-3phase", args)
    rows = []
    for sigma_px in (0.8, 2.0, 4.0):
        found = []
        for seed in range(4):
            image, truth = blurred_ct(sigma_px, seed)
            labels = predict_volume(model, image).labels
            found.append((mean_iou(labels, truth, 3), *(np.mean(a == k) for k in (2, 1) for a in (truth, labels))))
        m = np.mean(found, axis=0)
        rows.append({"case": "generator CT, zero-shot, blur", "method": f"electrode-3phase, sigma {sigma_px:g} px",
                     "score": float(m[0]), "note": f"AM {m[2]:.3f} (true {m[1]:.3f}), CBD {m[4]:.3f} (true {m[3]:.3f})"})
    return rows


def oracle(args, work: Path) -> list[dict]:
    """The control for SegmentPy's zero-shot target: two grey thresholds at image percentiles
    chosen on the test slices' own truth (every pair of even percentiles), after a Gaussian
    smoothing of 0 / 2 px. What intensity alone gives with the phase fractions known."""
    from scipy.ndimage import gaussian_filter

    images = {n: tifffile.imread(DATA / "segmentpy" / f"{n}.tif").astype(np.float32) for n in SEGMENTPY_TEST}
    truth = {n: _segmentpy_truth(n) for n in SEGMENTPY_TEST}
    rows = []
    even = list(range(2, 98, 2))
    for sigma in (0, 2):
        smooth = {n: gaussian_filter(im, sigma) if sigma else im for n, im in images.items()}
        grey = {n: dict(zip(even, np.percentile(im, even))) for n, im in smooth.items()}  # once per image
        best = (-1.0, None)
        for low in even:
            for high in even[even.index(low) + 1:]:
                score = float(np.mean([mean_iou(np.digitize(im, [grey[n][low], grey[n][high]]).astype(np.uint8),
                                                truth[n], 3) for n, im in smooth.items()]))
                best = max(best, (score, (low, high)), key=lambda x: x[0])
        rows.append({"case": "segmentpy test slices, oracle control", "method": f"best two percentiles, smoothed {sigma} px",
                     "score": best[0], "note": f"percentiles {best[1][0]} / {best[1][1]}"})
    return rows


CASES = {"segmentpy": segmentpy, "samba": samba, "independent": independent, "nrel": nrel, "synthetic": synthetic,
         "one_slice": one_slice, "scale": scale, "blur": blur, "oracle": oracle}
DEFAULT_CASES = ("segmentpy", "samba", "independent", "nrel", "synthetic")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=list(DEFAULT_CASES), choices=list(CASES))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--candidate", action="append", default=[], metavar="NAME=PATH",
                        type=lambda text: tuple(text.split("=", 1)),
                        help="score this checkpoint in place of the shipped model NAME (zero-shot rows; "
                             "fine-tuning rows still start from the shipped one)")
    args = parser.parse_args()
    args.override = []
    work = args.work or Path(tempfile.mkdtemp(prefix="pretrained_"))
    rows = []
    for case in args.only:
        rows += CASES[case](args, work)
    print(f"\n{'case':<44}{'method':<50}{'score':>8}  note")
    for r in rows:
        note = r.get("note", "") + (f" ({r['seconds']:.0f} s)" if "seconds" in r else "")
        print(f"{r['case']:<44}{r['method']:<50}{r['score']:>8.3f}  {note}")
    print("\nscore: mean IoU against the truth (nrel: solid fraction of the volume, scribble agreement in the note)")


if __name__ == "__main__":
    main()

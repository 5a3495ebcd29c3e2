"""Domain-randomised training data for the shipped pretrained models.

A model that must segment electrode images nobody here made cannot learn one look of them. As
SynthSeg does for brain MRI, every training volume here draws its microstructure and its
acquisition at random, so that what stays constant, and what the network learns, is the
geometry of the phases:

- **microstructure** (`generate_microstructure`): particle diameter 1.2-6 µm (lognormal spread
  0.2-0.5), AM fraction 0.45-0.75, CBD fraction 0.03-0.18, CBD coat length 0.2-0.9 µm, cracked
  share 0-0.6, roughness, fragments; voxel size 0.03-0.12 µm in-plane, 1-3 times that between
  slices (particles 10 to 200 pixels across);
- **acquisition**, one of:
  - FIB-SEM (`simulate_fibsem`) with random grey levels for the three phases: pores darkest
    (60 %), Pt-filled pores brightest with the binder darkest (30 %) or any order (10 %);
    shine-through strength 0-1 and length 0.05-0.6 µm,
    curtaining, shading, flicker, blur 0.3-1.8 px, photon noise 30-2000 and read noise, edge contrast,
    texture and primary grains;
  - X-ray CT (`simulate_ct`) with random levels, blur 0.3-1.5 px, cupping, rings and noise;
  - an SEM cross-section: FIB-SEM without shine-through or flicker;
- then a random tone curve (gamma 0.5-2), inverted one time in ten.

Two-phase volumes draw the two grey levels in either order.

Two-phase models see CBD merged into the solid (pore, solid). The voxel size is never given to
the network: images are normalised by their own percentiles (``normalization.method:
percentile``).

`make_pretraining_set` writes such volumes with their dense labels and a dataset config that
``electroseg train`` reads (``benchmarks/pretrain.py`` trains the shipped models on it).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from electroseg.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["random_preset", "random_sample", "make_pretraining_set", "VERSION", "BLUR_PX", "ORDERS"]

#: Changes whenever the same seed would draw other volumes (cached sets are keyed by it).
VERSION = 2


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


#: Grey orders of (pore, CBD, AM), dark to bright, and how often each is drawn: unfilled pores
#: darkest (FIB-SEM backscatter, SEM, CT); pores filled with a heavy metal brightest (Pt "kintsugi"
#: infiltration) with the carbon binder darkest; any order at all.
ORDERS = {"unfilled": 0.6, "filled": 0.3, "any": 0.1}

#: Blur of the rendered image, Gaussian sigma in pixels (log-uniform), by acquisition (a section
#: is rendered as FIB-SEM). ``blur_px=(low, high)`` widens it for every acquisition (opt-in:
#: docs/pretrained.md has what 0.3-5 did at the shipped budget).
BLUR_PX = {"ct": (0.3, 1.5), "fibsem": (0.3, 1.8)}


def _levels(rng: np.random.Generator, n: int) -> list[float]:
    """Grey levels of n phases, at least 0.12 apart (phases must be told apart), in an order
    drawn from `ORDERS` (3 phases) or any order (2 phases)."""
    kind = rng.choice(list(ORDERS), p=list(ORDERS.values())) if n == 3 else "any"
    while True:
        levels = np.sort(rng.uniform(0.05, 0.95, size=n))
        if np.min(np.diff(levels)) >= 0.12:
            break
    if kind == "unfilled":      # pore < cbd < am
        ordered = levels
    elif kind == "filled":      # cbd < am < pore
        ordered = levels[[2, 0, 1]]
    else:
        ordered = rng.permutation(levels)
    return [round(float(v), 3) for v in ordered]


def random_preset(rng: np.random.Generator, *, base: Mapping[str, Any],
                  blur_px: tuple[float, float] | None = None) -> dict[str, Any]:
    """A preset with randomised microstructure and acquisition (module docstring), from ``base``
    (a FIB-SEM preset such as ``nmc_fibsem``: its keys and detector options are the template).
    ``blur_px``: the blur range in pixels for every acquisition instead of `BLUR_PX`'s (the same
    draws otherwise: only the blur changes)."""
    preset = copy.deepcopy(dict(base))
    pixel = _log_uniform(rng, 0.03, 0.12)
    preset["voxel_size"] = [round(pixel * _uniform(rng, 1.0, 3.0), 4), round(pixel, 4), round(pixel, 4)]
    preset["drift_step_px"] = 0.0
    preset["fiducial_rows"] = 0
    preset["cycling"] = None
    preset["phase_map"] = None
    micro = dict(preset.get("microstructure") or {})
    micro.update(
        median_diameter_um=_log_uniform(rng, 1.2, 6.0), diameter_sigma=_uniform(rng, 0.2, 0.5),
        am_fraction=_uniform(rng, 0.45, 0.75), cbd_fraction=_uniform(rng, 0.03, 0.18),
        coating_thickness_um=_uniform(rng, 0.2, 0.9), crack_fraction=_uniform(rng, 0.0, 0.6),
        roughness=_uniform(rng, 0.0, 0.1), fragment_fraction=_uniform(rng, 0.0, 0.01))
    preset["microstructure"] = micro
    kind = rng.choice(["fibsem", "fibsem", "ct", "section"])
    if kind == "ct":
        preset["modality"] = "ct"
        preset["detectors"] = {"image": {
            "levels": _levels(rng, 3), "blur_sigma_um": _log_uniform(rng, *(blur_px or BLUR_PX["ct"])) * pixel,
            "cupping": _uniform(rng, 0.0, 0.2), "rings": _uniform(rng, 0.0, 0.04),
            "noise_sigma": _log_uniform(rng, 0.01, 0.12)}}
    else:
        preset["modality"] = "fibsem"
        template = dict(next(iter(base["detectors"].values())))
        template.pop("unfilled_level", None)
        section = kind == "section"
        template.update(
            levels=_levels(rng, 3), texture=_uniform(rng, 0.0, 0.12),
            grain_contrast=_uniform(rng, 0.0, 0.1),
            shine_through=0.0 if section else _uniform(rng, 0.0, 1.0),
            shine_through_um=_uniform(rng, 0.05, 0.6),
            curtaining=_uniform(rng, 0.0, 0.1), edge_contrast=_uniform(rng, 0.0, 0.15),
            blur_sigma_um=_log_uniform(rng, *(blur_px or BLUR_PX["fibsem"])) * pixel, shading=_uniform(rng, 0.0, 0.2),
            flicker=0.0 if section else _uniform(rng, 0.0, 0.04),
            photons=_log_uniform(rng, 30.0, 2000.0), read_noise=_log_uniform(rng, 0.005, 0.06))
        preset["detectors"] = {"image": template}
    preset["name"] = f"random_{kind}"
    return preset


def random_sample(seed: int, *, shape, base: Mapping[str, Any], two_phase: bool = False,
                  blur_px: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """One randomised volume: (image float32 (Z, Y, X), labels uint8, preset used)."""
    from electroseg.synthetic.sample import make_images, make_labels_and_particles

    rng = np.random.default_rng(seed)
    preset = random_preset(rng, base=base, blur_px=blur_px)
    labels, _, _ = make_labels_and_particles(preset, seed=seed, shape=list(shape))
    images, _ = make_images(labels, preset, seed=seed)
    image = np.asarray(next(iter(images.values())), np.float32)
    lo, hi = np.percentile(image, [0.5, 99.5])
    image = np.clip((image - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    image = image ** _log_uniform(rng, 0.5, 2.0)
    if rng.random() < 0.1:
        image = 1.0 - image
    if two_phase:
        labels = (labels != 0).astype(np.uint8)   # pore 0, solid (CBD and AM) 1
    return image.astype(np.float32), labels.astype(np.uint8), preset


def make_pretraining_set(out: str | Path, *, n_volumes: int, shape=(16, 160, 160), seed: int = 0,
                         two_phase: bool = False, base_preset: str = "nmc_fibsem",
                         val_volumes: int = 2, blur_px: tuple[float, float] | None = None) -> dict[str, Any]:
    """Write ``n_volumes`` randomised volumes (``vNNN/image.tif``, ``vNNN/labels.tif``) and
    ``data.yaml``, a dataset config (the last ``val_volumes`` volumes are the validation split);
    existing files of the same seed are kept (keep other settings in another folder). ``blur_px``:
    see `random_preset`. Returns the dataset config."""
    import yaml

    from electroseg.io import write_tiff
    from electroseg.synthetic.sample import load_preset

    if n_volumes <= val_volumes:
        raise InputError(f"n_volumes: expected more than val_volumes={val_volumes}, got {n_volumes}")
    out = Path(out)
    base = load_preset(base_preset)
    volumes = []
    for i in range(n_volumes):
        folder = out / f"v{i:03d}"
        if not (folder / "labels.tif").is_file():
            image, labels, preset = random_sample(seed * 100_000 + i, shape=shape, base=base, two_phase=two_phase,
                                                   blur_px=blur_px)
            write_tiff(folder / "image.tif", image, voxel_size=tuple(preset["voxel_size"]))
            write_tiff(folder / "labels.tif", labels, voxel_size=tuple(preset["voxel_size"]))
            logger.info("pretraining volume %d/%d: %s", i + 1, n_volumes, preset["name"])
        volumes.append({"images": {"image": f"v{i:03d}/image.tif"}, "labels": f"v{i:03d}/labels.tif",
                        "split": "val" if i >= n_volumes - val_volumes else "train"})
    config = {"name": f"pretrain_{'2phase' if two_phase else '3phase'}", "root": str(out.resolve()),
              "phases": ["pore", "solid"] if two_phase else ["pore", "cbd", "am"],
              "voxel_size": None, "depth_axis": 1, "channels": ["image"], "volumes": volumes,
              "ignore_value": 255, "label_values": None, "pseudo_labels": False, "classical": {},
              "preprocess": []}
    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / "data" / f"{config['name']}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return config

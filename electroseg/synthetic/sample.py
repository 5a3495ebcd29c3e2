"""Complete synthetic samples from a preset: labels, simulated image(s), sparse labels, truth.

A preset (``configs/preset/<name>.yaml``) holds the arguments of the generators:

``name, shape, voxel_size, phases, phase_map, depth_axis, sparse_slices, microstructure``
(`generate_microstructure` options), ``cycling`` (`detach_cbd` options or null),
``modality`` (``fibsem`` or ``ct``), ``drift_step_px``, ``detectors`` (name ->
`simulate_fibsem` or `simulate_ct` options) and, for Pt-infiltrated (kintsugi) samples,
``pt_free_opening_um``: pores at most this wide in-plane stay empty (`narrow_pores`) and every
detector shows them at its ``unfilled_level``. ``fiducial_rows`` (FIB-SEM, default 0) images the
protective cap with tracking marks in that many rows above the specimen (`simulate_fibsem`):
the images are then taller than the labels, and ``preprocess=fibsem_markers`` registers on the
band and crops it.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from electroseg.errors import InputError
from electroseg.io.labels import UNLABELLED as IGNORE_VALUE
from electroseg.synthetic._fields import check_shape, check_voxel_size
from electroseg.synthetic.ct import simulate_ct
from electroseg.synthetic.fibsem import narrow_pores, random_drift_shifts, simulate_fibsem
from electroseg.synthetic.microstructure import (
    detach_cbd,
    generate_microstructure,
    merge_phases,
)

logger = logging.getLogger(__name__)

PRESET_KEYS = frozenset({
    "name", "shape", "voxel_size", "phases", "phase_map", "depth_axis", "sparse_slices", "sparse_pairs",
    "microstructure", "cycling", "modality", "drift_step_px", "detectors", "pt_free_opening_um",
    "fiducial_rows",
})
MODALITIES = ("fibsem", "ct")


@dataclass(frozen=True)
class Sample:
    """A synthetic electrode sample with exact ground truth.

    Attributes
    ----------
    name : str
        Preset name.
    seed : int
    labels : ndarray of uint8, shape (Z, Y, X)
        Dense ground truth, phase indices into ``phases``.
    images : dict of str to ndarray of uint8, shape (Z, fiducial_rows + Y, X)
        One simulated stack per detector (channel name -> image), in acquisition frame.
    voxel_size : tuple of float
        µm (z, y, x).
    phases : tuple of str
    depth_axis : int
    shifts : ndarray of float64, shape (Z, 2)
        Drift (dy, dx) in pixels applied to every detector's slice k.
    sparse_slices : tuple of int
        Z indices labelled in `sparse_labels`.
    summary : dict
        Generator record: particle_count, cracked_count, detached_fraction, targets.
    particle_ids : ndarray of int32, shape (Z, Y, X), or None
        The generator's particle instances: id of the placed particle owning each AM voxel
        (1..n, the pieces of a cracked particle share its id), 0 elsewhere (particles.tif).
    """

    name: str
    seed: int
    labels: np.ndarray
    images: dict[str, np.ndarray]
    voxel_size: tuple[float, float, float]
    phases: tuple[str, ...]
    depth_axis: int
    shifts: np.ndarray
    sparse_slices: tuple[int, ...]
    summary: dict = field(default_factory=dict)
    particle_ids: np.ndarray | None = None

    @property
    def fiducial_rows(self) -> int:
        """Rows of cap with tracking marks above the specimen in every image (0 = none)."""
        return next(iter(self.images.values())).shape[1] - self.labels.shape[1]

    @property
    def channels(self) -> tuple[str, ...]:
        """Detector names in file order."""
        return tuple(self.images)

    def sparse_labels(self) -> np.ndarray:
        """Ground truth on `sparse_slices` only, ``255`` elsewhere (like a hand-labelled file)."""
        sparse = np.full_like(self.labels, IGNORE_VALUE)
        index = list(self.sparse_slices)
        sparse[index] = self.labels[index]
        return sparse


def load_preset(name: str, *, config_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Read ``<config_dir>/preset/<name>.yaml`` (default: the built-in configs) as a dict."""
    import yaml

    from electroseg.config import builtin_config_dir

    folder = Path(config_dir) if config_dir is not None else builtin_config_dir()
    path = folder / "preset" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (folder / "preset").glob("*.yaml"))
        raise InputError(f"preset: expected one of {known}, got {name!r} ({path} not found)")
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _seeds(seed: int, count: int) -> list[int]:
    children = np.random.SeedSequence(seed).spawn(count)
    return [int(child.generate_state(1)[0]) for child in children]


def _check_preset(preset: Mapping[str, Any], shape) -> tuple[tuple, tuple, tuple]:
    if not isinstance(preset, Mapping):
        raise InputError(f"preset: expected a mapping of preset parameters, "
                         f"got {type(preset).__name__}")
    name = preset.get("name")
    unknown = sorted(set(preset) - PRESET_KEYS)
    missing = sorted({"shape", "voxel_size", "detectors"} - set(preset))
    if unknown or missing:
        raise InputError(f"preset {name!r}: unknown keys {unknown}, missing keys {missing}; "
                         f"expected keys among {sorted(PRESET_KEYS)}")
    shape = check_shape(shape if shape is not None else preset["shape"])
    voxel_size = check_voxel_size(preset["voxel_size"], 3, name="preset voxel_size")
    if preset.get("modality", "fibsem") not in MODALITIES:
        raise InputError(f"preset modality: expected one of {list(MODALITIES)}, "
                         f"got {preset.get('modality')!r}")
    if not isinstance(preset["detectors"], Mapping) or not preset["detectors"]:
        raise InputError(f"preset {name!r} detectors: expected a mapping name -> options with at "
                         f"least one detector, got {preset['detectors']!r}")
    return shape, voxel_size, tuple(preset.get("phases", ("pore", "cbd", "am")))


def _options(func, options: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    """``options`` as keyword arguments of ``func``; unknown names are an InputError."""
    options = dict(options or {})
    accepted = {name for name, p in inspect.signature(func).parameters.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY} - {"voxel_size", "seed", "shifts",
                                                                 "noise_seed", "depth_axis",
                                                                 "fiducial_rows"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise InputError(f"{where}: unknown options {unknown}; expected options among "
                         f"{sorted(accepted)}")
    return options


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed: expected a non-negative integer, got {seed!r}")
    return int(seed)


def make_labels(preset: Mapping[str, Any], *, seed: int = 0,
                shape: Sequence[int] | None = None) -> tuple[np.ndarray, dict]:
    """Ground-truth labels of a preset (pristine or cycled) and the generator summary.

    With the same seed, a preset and its ``cycling`` variant share the same particles.
    """
    labels, _, summary = make_labels_and_particles(preset, seed=seed, shape=shape)
    return labels, summary


def make_labels_and_particles(preset: Mapping[str, Any], *, seed: int = 0,
                              shape: Sequence[int] | None = None
                              ) -> tuple[np.ndarray, np.ndarray, dict]:
    """`make_labels` plus the particle instance map (int32, 0 outside AM; see `Sample`)."""
    shape, voxel_size, phases = _check_preset(preset, shape)
    seed_micro, seed_cycle, _, _ = _seeds(_check_seed(seed), 4)
    options = _options(generate_microstructure, preset.get("microstructure"),
                       "preset microstructure")
    micro = generate_microstructure(shape, voxel_size=voxel_size, seed=seed_micro,
                                    depth_axis=int(preset.get("depth_axis", 1)), **options)
    if preset.get("cycling"):
        micro = detach_cbd(micro, seed=seed_cycle,
                           **_options(detach_cbd, preset["cycling"], "preset cycling"))
    labels = micro.labels
    if preset.get("phase_map") is not None:
        labels = merge_phases(labels, preset["phase_map"])
    if int(labels.max()) >= len(phases):
        raise InputError(f"preset phases: expected a name for every label up to "
                         f"{int(labels.max())}, got {list(phases)}")
    return labels, micro.particle_ids, micro.to_dict()


def make_images(labels: np.ndarray, preset: Mapping[str, Any], *, seed: int = 0,
                fiducial_rows: int | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Simulate every detector of a preset on ``labels``; return (images, drift shifts).

    FIB-SEM detectors image one specimen together: they share the drift, texture, grains and
    curtains (``seed``) and have independent noise (``noise_seed``). ``fiducial_rows`` > 0
    adds the cap with tracking marks above the specimen (`simulate_fibsem`): the images are
    then that many rows taller than ``labels`` (same seed, same specimen and drift); None = the
    preset's ``fiducial_rows`` (default 0).
    """
    if fiducial_rows is None:
        fiducial_rows = _fiducial_rows(preset)
    _, voxel_size, _ = _check_preset(preset, labels.shape)
    _, _, seed_drift, seed_image = _seeds(_check_seed(seed), 4)
    simulator = simulate_ct if preset.get("modality", "fibsem") == "ct" else simulate_fibsem
    detectors = [(str(name), _options(simulator, options, f"preset detectors.{name}"))
                 for name, options in preset["detectors"].items()]
    if simulator is simulate_ct:
        if fiducial_rows:
            raise InputError(f"fiducial_rows: a marker band is a FIB-SEM feature; preset "
                             f"{preset.get('name')!r} is CT")
        images = {name: simulate_ct(labels, voxel_size=voxel_size,
                                    seed=_detector_seed(seed_image, index), **options).image
                  for index, (name, options) in enumerate(detectors)}
        return images, np.zeros((labels.shape[0], 2))
    shifts = random_drift_shifts(labels.shape[0], step_px=float(preset.get("drift_step_px", 0.0)),
                                 seed=seed_drift)
    opening = float(preset.get("pt_free_opening_um") or 0.0)
    if opening <= 0 and any(options.get("unfilled_level") is not None for _, options in detectors):
        raise InputError(f"preset {preset.get('name')!r}: unfilled_level is set but pt_free_opening_um "
                         f"(the widest Pt-free pore, µm) is not")
    if opening > 0:  # kintsugi: narrow pores are left without Pt, the same voxels for every detector
        lacking = [name for name, options in detectors if options.get("unfilled_level") is None]
        if lacking:
            raise InputError(f"preset {preset.get('name')!r}: pt_free_opening_um needs unfilled_level "
                             f"(grey of an empty pore) in every detector; missing in {lacking}")
        unfilled = narrow_pores(labels, voxel_size, opening)
        detectors = [(name, {**options, "unfilled": unfilled}) for name, options in detectors]
    images = {name: simulate_fibsem(labels, voxel_size=voxel_size, shifts=shifts, seed=seed_image,
                                    noise_seed=_detector_seed(seed_image, index),
                                    fiducial_rows=fiducial_rows, **options).image
              for index, (name, options) in enumerate(detectors)}
    return images, shifts


def _fiducial_rows(preset: Mapping[str, Any]) -> int:
    rows = preset.get("fiducial_rows") or 0
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 0:
        raise InputError(f"preset {preset.get('name')!r} fiducial_rows: expected a number of rows "
                         f">= 0 (0 = no marker band), got {rows!r}")
    return int(rows)


def _detector_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def make_sample(preset: Mapping[str, Any], *, seed: int = 0,
                shape: Sequence[int] | None = None) -> Sample:
    """Build a complete sample (labels, images, drift, sparse slices) from preset parameters.

    Parameters
    ----------
    preset : mapping
        Preset parameters (see module docstring), e.g. from `load_preset`.
    seed : int
        Same seed, same bytes; the pristine and cycled variants share particles.
    shape : sequence of 3 int, optional
        Overrides the preset's (Z, Y, X); particle sizes stay in µm.
    """
    labels, particle_ids, summary = make_labels_and_particles(preset, seed=seed, shape=shape)
    images, shifts = make_images(labels, preset, seed=seed)
    count = int(preset.get("sparse_slices", 3))
    num_z = labels.shape[0]
    sparse = tuple(sorted({int(round((i + 1) * num_z / (count + 1))) for i in range(count)}))
    if preset.get("sparse_pairs"):  # each labelled slice with the next: the through-slice error is measurable
        sparse = tuple(sorted({z for s in sparse for z in (s, s + 1) if z < num_z}))
    _, voxel_size, phases = _check_preset(preset, labels.shape)
    logger.info("sample %r seed %d: shape %s, %d particles, channels %s", preset.get("name"),
                seed, labels.shape, summary["particle_count"], list(images))
    return Sample(str(preset.get("name", "custom")), int(seed), labels, images, voxel_size,
                  phases, int(preset.get("depth_axis", 1)), shifts, sparse, summary,
                  particle_ids)


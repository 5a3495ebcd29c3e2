"""FIB-SEM image models written apart from `electroseg.synthetic`, on microstructures it did not make.

The classical route must not be judged on the project's own simulator alone (a step that helps only
there fits its assumptions). This module images *real* 3-phase label volumes from $ELECTROSEG_DATA (default ../shared/data)
(TauFactor's GAN NMC, MATBOX nmc-1-cal with bridge CBD, the inpainter NMC) with several physical
models of a FIB-SEM backscatter stack, none of them the project's:

- shine-through law: none; exponential fade ``s exp(-d / L)`` of the first wall behind a pore
  voxel; linear fade to zero at depth ``D``; Lorentzian ``s / (1 + (d / L)^2)``; a *volume* model
  in which the pore shows an exponentially weighted mean of all the material behind it (not just
  the first wall). ``d`` is the distance in slices along +Z (the milling direction) to the material.
- in-plane Gaussian blur (the probe), Gaussian + signal-dependent noise, vertical curtaining
  stripes, a slow shading gradient, CBD texture; grey levels drawn per stack.

`stack(case)` returns (image float32 (Z, Y, X), truth uint8 with pore 0, cbd 1, am 2).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

SHARED = Path(os.environ.get("ELECTROSEG_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")

# label volume -> (file, mapping stored value -> pore 0 / cbd 1 / am 2)
STRUCTURES = {
    "taufactor": ("taufactor/electrode.tiff", {0: 0, 85: 2, 170: 1}),
    "matbox": ("matbox/nmc-1-cal_generatedCBD_bridge.tif", {0: 0, 1: 2, 2: 1}),
    "inpainter": ("inpainter/unmasked.tif", {0: 0, 1: 2, 2: 1}),
}


@dataclass(frozen=True)
class Case:
    structure: str
    law: str  # none | exponential | linear | lorentzian | volume
    strength: float = 0.6  # fraction of (wall - pore) a pore shows right in front of a wall
    length: float = 2.0  # slices (decay length, or the depth D of the linear law)
    blur: float = 1.0  # in-plane Gaussian sigma (pixels)
    noise: float = 0.05  # Gaussian noise sigma (fraction of the AM - pore contrast)
    curtains: float = 0.04  # stripe amplitude (same units)
    seed: int = 0
    two_phase: bool = False  # CBD and AM merged into one solid (pore 0, solid 1)

    @property
    def name(self) -> str:
        kind = f"{self.structure}{' 2-phase' if self.two_phase else ''}"
        if self.law == "none":
            return f"{kind} no shine-through"
        return f"{kind} {self.law} s={self.strength:g} L={self.length:g}"


def structure(name: str, shape=(40, 160, 160), seed: int = 0, zoom=(1, 2, 2)) -> np.ndarray:
    """A crop of a real 3-phase label volume as pore 0, cbd 1, am 2, each voxel repeated ``zoom``
    times along (Z, Y, X): these volumes were sampled at 0.4 µm, and FIB-SEM samples the section
    finer than it mills, so the structure changes from every slice to the next."""
    import tifffile

    path, mapping = STRUCTURES[name]
    volume = tifffile.imread(SHARED / path)
    lut = np.zeros(256, np.uint8)
    for stored, phase in mapping.items():
        lut[stored] = phase
    rng = np.random.default_rng(seed)
    size = [-(-t // z) for t, z in zip(shape, zoom)]
    start = [int(rng.integers(0, max(1, s - t + 1))) for s, t in zip(volume.shape, size)]
    crop = lut[volume[tuple(slice(a, a + t) for a, t in zip(start, size))]]
    for axis in range(3):
        crop = np.repeat(crop, zoom[axis], axis=axis)
    return np.ascontiguousarray(crop[tuple(slice(0, t) for t in shape)])


def _distance_behind(solid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every voxel, slices to the first solid voxel at larger Z (inf if none) and its index."""
    z_size = solid.shape[0]
    distance = np.full(solid.shape, np.inf, np.float32)
    wall_z = np.full(solid.shape, -1, np.int32)
    next_d = np.full(solid.shape[1:], np.inf, np.float32)
    next_z = np.full(solid.shape[1:], -1, np.int32)
    for z in range(z_size - 1, -1, -1):
        distance[z], wall_z[z] = next_d + 1, next_z
        next_d = np.where(solid[z], 0.0, next_d + 1).astype(np.float32)
        next_z = np.where(solid[z], z, next_z)
    return distance, wall_z


def _fade(law: str, d: np.ndarray, length: float) -> np.ndarray:
    if law == "exponential":
        return np.exp(-(d - 1) / length)
    if law == "linear":
        return np.clip(1 - (d - 1) / length, 0, 1)
    if law == "lorentzian":
        return 1 / (1 + ((d - 1) / length) ** 2)
    raise ValueError(law)


def stack(case: Case, shape=(40, 160, 160)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1000 + case.seed)
    truth = structure(case.structure, shape, seed=case.seed)
    if case.two_phase:
        truth = np.where(truth == 0, 0, 2).astype(np.uint8)
    pore, cbd, am = 0.15 + 0.05 * rng.random(), 0.42 + 0.08 * rng.random(), 0.82 + 0.06 * rng.random()
    levels = np.array([pore, cbd, am], np.float32)
    clean = levels[truth]
    texture = ndi.gaussian_filter(rng.normal(0, 1, truth.shape).astype(np.float32), 1.0)
    clean += np.where(truth == 1, 0.05 * texture / texture.std(), 0).astype(np.float32)
    signal = clean.copy()
    is_pore = truth == 0
    if case.law == "volume":  # exponentially weighted mean of everything behind the voxel
        behind = np.zeros_like(clean)
        weight_sum = np.zeros(clean.shape[1:], np.float32)
        for z in range(truth.shape[0] - 1, -1, -1):
            if z + 1 < truth.shape[0]:
                decay = np.float32(np.exp(-1 / case.length))
                behind[z] = decay * (behind[z + 1] + (clean[z + 1] - pore))
                weight_sum = decay * (weight_sum + 1)
        normalised = np.divide(behind, np.maximum(weight_sum, 1e-6)[None], dtype=np.float32)
        signal[is_pore] += (case.strength * normalised)[is_pore]
    elif case.law != "none":
        distance, wall_z = _distance_behind(truth != 0)
        found = is_pore & (wall_z >= 0)
        z, y, x = np.nonzero(found)
        wall = clean[wall_z[found], y, x]
        signal[found] += case.strength * _fade(case.law, distance[found], case.length) * (wall - pore)
    image = ndi.gaussian_filter(signal, [0, case.blur, case.blur])
    contrast = am - pore
    yy, xx = np.mgrid[: shape[1], : shape[2]] / max(shape[1:])
    image *= (1 + 0.08 * (yy - 0.5) + 0.05 * (xx - 0.5))[None].astype(np.float32)
    stripes = ndi.gaussian_filter1d(rng.normal(0, 1, shape[2]), 1.5)
    image += (case.curtains * contrast * stripes / stripes.std())[None, None, :].astype(np.float32)
    image += rng.normal(0, 1, image.shape).astype(np.float32) * case.noise * contrast * np.sqrt(
        np.clip(image / am, 0.2, None))
    if case.two_phase:
        truth = (truth != 0).astype(np.uint8)
    return image.astype(np.float32), truth


def cases() -> list[Case]:
    """Three structures x five shine-through laws (plus a sharper, noisier acquisition)."""
    out = []
    for i, name in enumerate(STRUCTURES):
        out.append(Case(name, "none", seed=i))
        out.append(Case(name, "exponential", strength=0.7, length=2.5, noise=0.12, seed=i))
        out.append(Case(name, "linear", strength=0.5, length=4.0, blur=0.7, noise=0.08, seed=i))
        out.append(Case(name, "lorentzian", strength=0.6, length=1.5, blur=1.3, noise=0.03, seed=i))
        out.append(Case(name, "volume", strength=0.5, length=3.0, noise=0.10, curtains=0.08, seed=i))
    for i, name in enumerate(STRUCTURES):  # porous solids imaged in two phases
        out.append(Case(name, "none", noise=0.10, seed=10 + i, two_phase=True))
        out.append(Case(name, "exponential", strength=0.8, length=3.0, seed=10 + i, two_phase=True))
    return out

"""Electrode microstructures with exact ground truth: AM particles, CBD coating and necks, pores.

Labels follow the project default phases: 0 pore, 1 cbd, 2 am (uint8, (Z, Y, X)).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import edt
import numpy as np

from electroseg.errors import InputError
from electroseg.synthetic._fields import (
    check_fraction,
    check_shape,
    check_voxel_size,
    child_rngs,
    smooth_field,
)
from electroseg.synthetic.particles import place_particles

logger = logging.getLogger(__name__)

PORE, CBD, AM = 0, 1, 2


@dataclass(frozen=True)
class Microstructure:
    """A labelled electrode volume and how it was made.

    Attributes
    ----------
    labels : ndarray of uint8, shape (Z, Y, X)
        0 pore, 1 cbd, 2 am.
    particle_ids : ndarray of int32, shape (Z, Y, X)
        Index (1-based) of the placed particle owning each AM voxel, 0 elsewhere.
    voxel_size : tuple of float
        µm per voxel (z, y, x).
    particle_count : int
        Particles placed (before cracks split some of them into fragments).
    cracked_count : int
        Particles with a planar crack.
    detached_fraction : float
        Share of the AM surface from which CBD was detached (0 for a pristine electrode).
    target_fraction : tuple of float
        Requested (pore, cbd, am) volume fractions.
    """

    labels: np.ndarray
    particle_ids: np.ndarray
    voxel_size: tuple[float, float, float]
    particle_count: int
    cracked_count: int
    detached_fraction: float = 0.0
    target_fraction: tuple[float, float, float] = (float("nan"),) * 3

    def to_dict(self) -> dict:
        """JSON-ready summary (no arrays)."""
        counts = np.bincount(self.labels.ravel(), minlength=3)[:3] / self.labels.size
        return {
            "shape": list(self.labels.shape),
            "voxel_size_um": list(self.voxel_size),
            "particle_count": self.particle_count,
            "cracked_count": self.cracked_count,
            "detached_fraction": self.detached_fraction,
            "label_fractions": dict(zip(("pore", "cbd", "am"), map(float, counts))),
            "target_fraction": dict(zip(("pore", "cbd", "am"), self.target_fraction)),
        }


def generate_microstructure(
    shape: Sequence[int],
    *,
    voxel_size: Sequence[float] = (0.1, 0.05, 0.05),
    am_fraction: float = 0.65,
    cbd_fraction: float = 0.10,
    median_diameter_um: float = 3.5,
    diameter_sigma: float = 0.35,
    aspect_sigma: float = 0.12,
    max_overlap: float = 0.15,
    roughness: float = 0.05,
    roughness_length_um: float = 0.3,
    fragment_fraction: float = 0.005,
    fragment_diameter_um: float = 0.5,
    crack_fraction: float = 0.3,
    crack_width_um: float = 0.08,
    crack_cbd_fill: float = 0.3,
    coating_thickness_um: float = 0.55,
    patch_length_um: float = 0.4,
    neck_radius_um: float = 0.25,
    cbd_depth_gradient: float = 0.0,
    depth_axis: int = 1,
    seed: int = 0,
) -> Microstructure:
    """Generate a pristine electrode: cracked lognormal AM particles, CBD coating and necks.

    Parameters
    ----------
    shape : sequence of 3 int
        (Z, Y, X) voxels.
    voxel_size : sequence of 3 float
        µm per voxel (z, y, x); anisotropic sizes are honoured exactly.
    am_fraction, cbd_fraction : float
        Target volume fractions. AM is reached to within one particle, CBD exactly (top-k).
    median_diameter_um, diameter_sigma : float
        Lognormal secondary-particle diameter: median (µm) and sigma of its logarithm.
    aspect_sigma : float
        Sigma of the log semi-axis ratios (0 = spheres).
    max_overlap : float
        Allowed overlap: centres are kept at least ``(1 - max_overlap) (r_i + r_j)`` apart.
    roughness, roughness_length_um : float
        Relative radial amplitude (std) and correlation length (µm) of surface bumps; they also
        make cracks wavy. 0 = smooth ellipsoids.
    fragment_fraction, fragment_diameter_um : float
        Volume fraction (part of ``am_fraction``) and typical diameter (µm) of small
        free-standing AM fragments in the pores.
    crack_fraction, crack_width_um, crack_cbd_fill : float
        Share of particles with a planar crack, crack width, share of cracks filled with CBD.
    coating_thickness_um, patch_length_um : float
        CBD preference decays with distance to AM on ``coating_thickness_um``; patches of
        the coating have correlation length ``patch_length_um``. Together with the necks they
        set the PBA (presets are tuned to the published ~0.55).
    neck_radius_um : float
        Pores inside the morphological closing of AM with this radius (necks between
        neighbouring particles) are filled with CBD first.
    cbd_depth_gradient, depth_axis : float, int
        Binder migration: the CBD score gains ``cbd_depth_gradient * (1 - 2 t)`` with ``t`` in
        [0, 1] from separator (index 0 of ``depth_axis``) to current collector, so a positive
        value puts more CBD near the separator (0 = uniform).
    seed : int
        Seed of `numpy.random.default_rng`; the same seed gives the same bytes.

    Returns
    -------
    Microstructure

    Notes
    -----
    CBD = the ``cbd_fraction * N`` non-AM voxels (open cracks excluded) with the highest score
    ``s = g(x) - d(x) / coating_thickness_um + 3 [x in neck] + 100 [x in CBD-filled crack]``
    (plus the depth term) where ``g`` is a unit Gaussian random field and ``d`` the distance (µm) to AM.
    """
    shape = check_shape(shape)
    vs = check_voxel_size(voxel_size, 3)
    am_fraction = check_fraction(am_fraction, "am_fraction", low=0.05, high=0.9)
    cbd_fraction = check_fraction(cbd_fraction, "cbd_fraction", high=1.0 - am_fraction)
    _check_positive(median_diameter_um=median_diameter_um,
                    coating_thickness_um=coating_thickness_um,
                    patch_length_um=patch_length_um, crack_width_um=crack_width_um,
                    fragment_diameter_um=fragment_diameter_um)
    if depth_axis not in (0, 1, 2):
        raise InputError(f"depth_axis: expected 0, 1 or 2 for a (Z, Y, X) volume, "
                         f"got {depth_axis!r}")
    rng_particles, rng_cbd, rng_rough = child_rngs(seed, 3)
    bumps = None
    if roughness > 0:
        bumps = np.float32(roughness) * smooth_field(
            shape, sigma_px=[roughness_length_um / v for v in vs], rng=rng_rough)
    ids, cracks, particles = place_particles(
        shape, voxel_size=vs, am_fraction=am_fraction, median_diameter_um=median_diameter_um,
        diameter_sigma=diameter_sigma, aspect_sigma=aspect_sigma, max_overlap=max_overlap,
        crack_fraction=check_fraction(crack_fraction, "crack_fraction"),
        crack_cbd_fill=check_fraction(crack_cbd_fill, "crack_cbd_fill"),
        crack_width_um=crack_width_um, rng=rng_particles, roughness=bumps,
        fragment_fraction=check_fraction(fragment_fraction, "fragment_fraction", high=am_fraction),
        fragment_diameter_um=fragment_diameter_um)
    labels = np.where(ids > 0, AM, PORE).astype(np.uint8)
    labels[cracks == 2] = CBD
    _add_cbd(labels, cracks, cbd_fraction, vs, coating_thickness_um=coating_thickness_um,
             patch_length_um=patch_length_um, neck_radius_um=neck_radius_um,
             depth_gradient=(float(cbd_depth_gradient), depth_axis), rng=rng_cbd)
    cracked = sum(p.crack_normal is not None for p in particles)
    logger.info("microstructure %s: %d particles (%d cracked)", shape, len(particles), cracked)
    targets = (1.0 - am_fraction - cbd_fraction, cbd_fraction, am_fraction)
    return Microstructure(labels, ids, vs, len(particles), cracked, 0.0, targets)


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, float)) or not value > 0:
            raise InputError(f"{name}: expected a positive number in µm, got {value!r}")


def _add_cbd(labels, cracks, cbd_fraction, voxel_size, *, coating_thickness_um, patch_length_um,
             neck_radius_um, depth_gradient, rng) -> None:
    """Fill the best-scoring pore voxels with CBD in place (see generate_microstructure)."""
    am = labels == AM
    dist = edt.edt(~am, anisotropy=voxel_size).astype(np.float32)
    sigma_px = [patch_length_um / v for v in voxel_size]
    score = smooth_field(labels.shape, sigma_px=sigma_px, rng=rng)
    score -= dist / np.float32(coating_thickness_um)
    if neck_radius_um > 0:
        dilated = dist <= neck_radius_um
        closed = edt.edt(dilated, anisotropy=voxel_size) > neck_radius_um
        score[closed] += 3.0
    gradient, axis = depth_gradient
    if gradient != 0:
        ramp = np.linspace(gradient, -gradient, labels.shape[axis], dtype=np.float32)
        score += ramp.reshape([-1 if a == axis else 1 for a in range(3)])
    # CBD-filled cracks come first; open cracks stay pore. If the cracks alone exceed the
    # budget, the lowest-scoring crack voxels are left open so the CBD fraction stays exact.
    score[cracks == 2] += 100.0
    candidates = np.flatnonzero((labels != AM) & (cracks != 1))
    wanted = min(int(round(cbd_fraction * labels.size)), candidates.size)
    labels.ravel()[candidates] = PORE
    if wanted == 0:
        return
    top = np.argpartition(score.ravel()[candidates], candidates.size - wanted)[-wanted:]
    labels.ravel()[candidates[top]] = CBD


def detach_cbd(
    micro: Microstructure,
    *,
    detach_fraction: float = 0.2,
    gap_um: float | None = None,
    patch_length_um: float = 0.5,
    seed: int = 0,
) -> Microstructure:
    """Cycled electrode: CBD detached from a share of the AM surface, leaving a pore gap.

    Parameters
    ----------
    micro : Microstructure
        The pristine electrode (not modified).
    detach_fraction : float
        Share of the AM surface (in smooth random patches) where CBD lets go. Since patches are
        independent of the coating, PBA drops by about this share:
        ``pba_cycled ~ pba_pristine * (1 - detach_fraction)``.
    gap_um : float, optional
        CBD voxels closer than this to AM inside a patch become pore. Default: the largest
        voxel edge, so contacts along every axis are removed.
    patch_length_um : float
        Correlation length of the detachment patches.
    seed : int
        Seed of the patch field; the particles are those of ``micro`` whatever the seed.

    Returns
    -------
    Microstructure
        Same ``particle_ids``; labels with the detached CBD set to pore.
    """
    detach_fraction = check_fraction(detach_fraction, "detach_fraction")
    vs = micro.voxel_size
    gap = max(vs) * 1.01 if gap_um is None else float(gap_um)
    _check_positive(gap_um=gap, patch_length_um=patch_length_um)
    labels = micro.labels.copy()
    dist = edt.edt(labels != AM, anisotropy=vs)
    shell = (dist > 0) & (dist <= gap)
    field = smooth_field(labels.shape, sigma_px=[patch_length_um / v for v in vs],
                         rng=np.random.default_rng(seed))
    if detach_fraction > 0 and shell.any():
        threshold = np.quantile(field[shell], 1.0 - detach_fraction)
        labels[shell & (field > threshold) & (labels == CBD)] = PORE
    return Microstructure(labels, micro.particle_ids, vs, micro.particle_count,
                          micro.cracked_count, detach_fraction, micro.target_fraction)


def merge_phases(labels: np.ndarray, mapping: Sequence[int]) -> np.ndarray:
    """Relabel phases: ``out = mapping[labels]`` (e.g. ``(0, 0, 1)`` merges CBD into pore).

    >>> merge_phases(np.array([0, 1, 2], np.uint8), (0, 0, 1)).tolist()
    [0, 0, 1]
    """
    lut = np.asarray(mapping, dtype=np.uint8)
    if labels.size and int(labels.max()) >= lut.size:
        raise InputError(f"mapping: expected a value for every label up to {int(labels.max())}, "
                         f"got {len(lut)} values")
    return lut[labels]

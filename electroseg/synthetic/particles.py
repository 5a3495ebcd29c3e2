"""Active-material particles: lognormal ellipsoids placed with limited overlap, some cracked."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.distance import cdist

logger = logging.getLogger(__name__)

_CANDIDATES = 48
_MAX_ATTEMPTS = 4000
_MAX_BUMP = 1.2  # surface bumps reach at most 20 % beyond the ellipsoid


@dataclass(frozen=True)
class Ellipsoid:
    """One particle: centre and semi-axes in µm, rotation (3x3, columns = principal axes)."""

    center_um: np.ndarray
    semi_axes_um: np.ndarray
    rotation: np.ndarray
    crack_normal: np.ndarray | None = None
    crack_offset_um: float = 0.0
    crack_fill_cbd: bool = False
    crack_width_um: float = 0.0

    @property
    def radius_um(self) -> float:
        """Equivalent-volume sphere radius (geometric mean of the semi-axes)."""
        return float(np.prod(self.semi_axes_um) ** (1.0 / 3.0))


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))


def _draw_particle(center, radius, *, aspect_sigma, crack_fraction, crack_cbd_fill, crack_width_um,
                   rng) -> Ellipsoid:
    log_axes = rng.normal(0.0, aspect_sigma, 3)
    axes = radius * np.exp(log_axes - log_axes.mean())
    normal, offset, fill = None, 0.0, False
    if rng.random() < crack_fraction:
        normal = rng.standard_normal(3)
        normal /= np.linalg.norm(normal)
        offset = float(rng.normal(0.0, 0.25 * radius))
        fill = bool(rng.random() < crack_cbd_fill)
    return Ellipsoid(np.asarray(center, float), axes, _random_rotation(rng), normal, offset, fill,
                    crack_width_um)


def _clearance(candidates: np.ndarray, radius: float, centers: np.ndarray, radii: np.ndarray,
               overlap: float) -> np.ndarray:
    """Per candidate: min over placed spheres of distance minus the allowed centre distance."""
    if len(centers) == 0:
        return np.full(len(candidates), np.inf)
    dist = cdist(candidates, centers)
    return np.min(dist - (1.0 - overlap) * (radius + radii[None, :]), axis=1)


def render_particle(ids: np.ndarray, cracks: np.ndarray, particle: Ellipsoid, label: int,
                    voxel_size: tuple[float, float, float],
                    roughness: np.ndarray | None = None) -> int:
    """Write ``label`` into the free voxels of ``ids`` covered by ``particle``; return voxels added.

    Voxels already owned by another particle or by a crack keep their owner (earlier particles
    win overlaps). Crack voxels of this particle are marked in ``cracks`` (1 pore, 2 CBD filled).
    ``roughness`` (same shape as ``ids``, dimensionless, ~0.05) perturbs the surface radially,
    ``sqrt(q) <= 1 + roughness``, and makes cracks wavy.
    """
    vs = np.asarray(voxel_size)
    extent = _MAX_BUMP * particle.semi_axes_um.max()
    lo = np.maximum(np.floor((particle.center_um - extent) / vs).astype(int), 0)
    hi = np.minimum(np.ceil((particle.center_um + extent) / vs).astype(int) + 1, ids.shape)
    if np.any(hi <= lo):
        return 0
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    axes = [(np.arange(a, b) * v - c).astype(np.float32)
            for a, b, v, c in zip(lo, hi, vs, particle.center_um)]
    z, y, x = axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]
    form = (particle.rotation / particle.semi_axes_um**2) @ particle.rotation.T
    q = (form[0, 0] * z * z + form[1, 1] * y * y + form[2, 2] * x * x
         + 2 * form[0, 1] * z * y + 2 * form[0, 2] * z * x + 2 * form[1, 2] * y * x)
    limit = 1.0 if roughness is None else np.minimum(1.0 + roughness[box], _MAX_BUMP)
    free = (q <= limit * limit) & (ids[box] == 0) & (cracks[box] == 0)
    if particle.crack_normal is not None:
        # The crack half-width is at least half a voxel along the plane normal so the crack
        # always cuts the voxel grid (a planar crack thinner than a voxel would vanish).
        half = 0.5 * max(particle.crack_width_um, float(np.abs(particle.crack_normal) @ vs))
        n = particle.crack_normal
        distance = n[0] * z + n[1] * y + n[2] * x - particle.crack_offset_um
        if roughness is not None:
            distance = distance - 2.0 * particle.radius_um * roughness[box]
        crack = free & (np.abs(distance) <= half)
        cracks[box][crack] = 2 if particle.crack_fill_cbd else 1
        free &= ~crack
    ids[box][free] = label
    return int(free.sum())


@dataclass
class _Packing:
    """Mutable state of the placement: volumes, placed spheres (for clearance), AM voxels."""

    ids: np.ndarray
    cracks: np.ndarray
    voxel_size: tuple[float, float, float]
    roughness: np.ndarray | None
    centers: np.ndarray = field(default_factory=lambda: np.empty((0, 3)))
    radii: np.ndarray = field(default_factory=lambda: np.empty(0))
    particles: list = field(default_factory=list)
    filled: int = 0

    def add(self, particle: Ellipsoid, radius: float) -> None:
        added = render_particle(self.ids, self.cracks, particle, len(self.particles) + 1,
                                self.voxel_size, self.roughness)
        if added:
            self.particles.append(particle)
            self.centers = np.vstack([self.centers, particle.center_um])
            self.radii = np.append(self.radii, radius)
            self.filled += added


def place_particles(
    shape: tuple[int, int, int],
    *,
    voxel_size: tuple[float, float, float],
    am_fraction: float,
    median_diameter_um: float,
    diameter_sigma: float,
    aspect_sigma: float,
    max_overlap: float,
    crack_fraction: float,
    crack_cbd_fill: float,
    crack_width_um: float,
    rng: np.random.Generator,
    roughness: np.ndarray | None = None,
    fragment_fraction: float = 0.0,
    fragment_diameter_um: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, list[Ellipsoid]]:
    """Random sequential addition of ellipsoids until the AM fraction reaches ``am_fraction``.

    Each new particle draws a lognormal diameter; among random candidate centres the one with
    the largest clearance is kept; if none fits within ``max_overlap`` the radius shrinks by 15 %
    (this leaves small particles in the gaps), and below 0.3 x median radius the allowed
    overlap grows instead, so dense targets (AM 0.6-0.7) are always reached. Then free-standing
    fragments (uncracked, diameter ~``fragment_diameter_um``, clear of the placed spheres)
    are added in the pores up to ``fragment_fraction`` of the volume (part of the AM target).
    ``roughness`` is passed to `render_particle`.

    Returns
    -------
    ids : ndarray of int32, shape (Z, Y, X)
        Particle index + 1 per voxel, 0 outside particles.
    cracks : ndarray of uint8, shape (Z, Y, X)
        0 no crack, 1 crack left open (pore), 2 crack filled with CBD.
    particles : list of Ellipsoid
    """
    packing = _Packing(np.zeros(shape, np.int32), np.zeros(shape, np.uint8), voxel_size, roughness)
    size_um = np.asarray(shape) * np.asarray(voxel_size)
    draw = dict(aspect_sigma=aspect_sigma, crack_fraction=crack_fraction,
                crack_cbd_fill=crack_cbd_fill, crack_width_um=crack_width_um)
    target = am_fraction * packing.ids.size
    overlap = _fill(packing, target - fragment_fraction * packing.ids.size, size_um,
                    0.5 * median_diameter_um, diameter_sigma, max_overlap, draw, rng)
    _add_fragments(packing, target, size_um, fragment_diameter_um, aspect_sigma, rng)
    # Where the pores were too tight for all fragments, particles make up the AM target.
    overlap = _fill(packing, target, size_um, 0.5 * median_diameter_um, diameter_sigma, overlap,
                    draw, rng)
    logger.debug("placed %d particles, AM fraction %.3f, final overlap %.2f",
                 len(packing.particles), packing.filled / packing.ids.size, overlap)
    return packing.ids, packing.cracks, packing.particles


def _fill(packing: _Packing, target: float, size_um, median_r: float, diameter_sigma: float,
          overlap: float, draw: dict, rng) -> float:
    """Add lognormal particles until ``target`` AM voxels; return the final allowed overlap."""
    for _ in range(_MAX_ATTEMPTS):
        if packing.filled >= target:
            break
        radius = min(median_r * np.exp(rng.normal(0.0, diameter_sigma)), 3.0 * median_r)
        center, radius = _best_site(packing, radius, size_um, overlap, 0.3 * median_r, rng)
        if center is None:
            overlap = min(overlap + 0.02, 0.6)
            continue
        packing.add(_draw_particle(center, radius, rng=rng, **draw), radius)
    return overlap


def _best_site(packing: _Packing, radius: float, size_um: np.ndarray, overlap: float,
               min_radius: float, rng) -> tuple[np.ndarray | None, float]:
    """Centre with the largest clearance, shrinking the radius until one fits (or None)."""
    while True:
        margin = 0.5 * radius
        candidates = rng.uniform(-margin, size_um + margin, (_CANDIDATES, 3))
        gap = _clearance(candidates, radius, packing.centers, packing.radii, overlap)
        best = int(np.argmax(gap))
        if gap[best] >= 0:
            return candidates[best], radius
        if radius < min_radius:
            return None, radius
        radius *= 0.85


def _add_fragments(packing: _Packing, target: float, size_um, diameter_um: float,
                   aspect_sigma: float, rng) -> None:
    """Small uncracked fragments in the pores, clear of the placed spheres, up to ``target``.

    Stops early after ``_CANDIDATES`` draws in a row find no room.
    """
    misses = 0
    for _ in range(_MAX_ATTEMPTS):
        if packing.filled >= target or misses >= _CANDIDATES:
            return
        radius = 0.5 * diameter_um * np.exp(rng.normal(0.0, 0.3))
        candidates = rng.uniform(0.0, size_um, (_CANDIDATES, 3))
        gap = _clearance(candidates, 1.1 * radius, packing.centers, packing.radii, 0.0)
        best = int(np.argmax(gap))
        if gap[best] < 0:
            misses += 1
            continue
        misses = 0
        packing.add(_draw_particle(candidates[best], radius, aspect_sigma=aspect_sigma,
                                   crack_fraction=0.0, crack_cbd_fill=0.0, crack_width_um=0.0,
                                   rng=rng), radius)

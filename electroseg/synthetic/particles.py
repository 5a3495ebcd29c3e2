"""Active-material particles: lognormal ellipsoids placed with limited overlap, some cracked."""

from __future__ import annotations

import logging
from dataclasses import dataclass

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
) -> tuple[np.ndarray, np.ndarray, list[Ellipsoid]]:
    """Random sequential addition of ellipsoids until the AM fraction reaches ``am_fraction``.

    Each new particle draws a lognormal diameter; among random candidate centres the one with
    the largest clearance is kept; if none fits within ``max_overlap`` the radius shrinks by 15 %
    (this leaves small particles in the gaps, like fragments), and below 0.3 x median radius
    the allowed overlap grows instead, so dense targets (AM 0.6-0.7) are always reached.
    ``roughness`` is passed to `render_particle`.

    Returns
    -------
    ids : ndarray of int32, shape (Z, Y, X)
        Particle index + 1 per voxel, 0 outside particles.
    cracks : ndarray of uint8, shape (Z, Y, X)
        0 no crack, 1 crack left open (pore), 2 crack filled with CBD.
    particles : list of Ellipsoid
    """
    vs = np.asarray(voxel_size)
    size_um = np.asarray(shape) * vs
    ids = np.zeros(shape, np.int32)
    cracks = np.zeros(shape, np.uint8)
    target = am_fraction * ids.size
    median_r = 0.5 * median_diameter_um
    centers, radii, particles = np.empty((0, 3)), np.empty(0), []
    filled, overlap = 0, max_overlap
    for _ in range(_MAX_ATTEMPTS):
        if filled >= target:
            break
        radius = min(median_r * np.exp(rng.normal(0.0, diameter_sigma)), 3.0 * median_r)
        while True:
            margin = 0.5 * radius
            cand = rng.uniform(-margin, size_um + margin, (_CANDIDATES, 3))
            gap = _clearance(cand, radius, centers, radii, overlap)
            best = int(np.argmax(gap))
            if gap[best] >= 0 or radius < 0.3 * median_r:
                break
            radius *= 0.85
        if gap[best] < 0:
            overlap = min(overlap + 0.02, 0.6)
            continue
        particle = _draw_particle(cand[best], radius, aspect_sigma=aspect_sigma,
                                  crack_fraction=crack_fraction, crack_cbd_fill=crack_cbd_fill,
                                  crack_width_um=crack_width_um, rng=rng)
        added = render_particle(ids, cracks, particle, len(particles) + 1, voxel_size, roughness)
        if added == 0:
            continue
        particles.append(particle)
        centers = np.vstack([centers, particle.center_um])
        radii = np.append(radii, radius)
        filled += added
    logger.debug("placed %d particles, AM fraction %.3f, final overlap %.2f",
                 len(particles), filled / ids.size, overlap)
    return ids, cracks, particles

"""Face-pair counts and the AM/CBD contact probability ("PBA") by neighbour counting."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from electroseg import DEFAULT_PHASES
from electroseg.analysis._validate import check_depth_axis, check_labels, phase_index
from electroseg.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["FacePairCounts", "PBAProfile", "face_pair_counts", "pba_profile", "pooled_pba"]

_CHUNK_VOXELS = 1 << 24
_THREADED_VOXELS = 1 << 24  # volumes from this size are counted on two threads


@dataclass(frozen=True, eq=False)
class FacePairCounts:
    """Counts of adjacent voxel pairs by phase, per depth plane and axis.

    Attributes
    ----------
    phases : tuple of str
    depth_axis : int
    pairs : ndarray, shape (n_depth, ndim, n_phases, n_phases), int64
        ``pairs[k, a, i, j]``: voxel pairs adjacent along axis ``a`` whose lower-index voxel has
        phase i and whose upper-index voxel has phase j, the lower voxel lying in depth plane k.
        Pairs involving an ignored voxel are not counted.
    voxels : ndarray, shape (n_depth, n_phases), int64
        Voxels of each phase per depth plane.
    ignored : ndarray, shape (n_depth,), int64
        Ignored voxels per depth plane.
    """

    phases: tuple[str, ...]
    depth_axis: int
    pairs: np.ndarray
    voxels: np.ndarray
    ignored: np.ndarray

    def symmetric(self) -> np.ndarray:
        """Unordered pair counts, shape (n_depth, ndim, n_phases, n_phases) (:func:`unordered`)."""
        return unordered(self.pairs)


def unordered(pairs: np.ndarray) -> np.ndarray:
    """Unordered pair counts from ordered ones ``M`` (..., n, n): ``M + Mᵀ`` off the diagonal,
    ``M`` on it."""
    sym = pairs + np.swapaxes(pairs, -1, -2)
    diag = np.arange(pairs.shape[-1])
    sym[..., diag, diag] //= 2
    return sym


def am_contacts(sym: np.ndarray, i_am: int, i_cbd: int) -> tuple[np.ndarray, np.ndarray]:
    """``(contacts, surface)`` from unordered pair counts (..., n, n): AM-CBD pairs, and AM pairs
    with any other phase (the face-method PBA is their ratio)."""
    return sym[..., i_am, i_cbd], sym[..., i_am, :].sum(axis=-1) - sym[..., i_am, i_am]


@dataclass(frozen=True, eq=False)
class PBAProfile:
    """AM/CBD contact probability per depth plane.

    Attributes
    ----------
    method : {"face", "voxel"}
    depth_axis : int
    contacts : ndarray, shape (n_depth,), int64
        ``C(k)``: AM–CBD in-plane pairs (face) or AM surface voxels touching CBD (voxel).
    surface : ndarray, shape (n_depth,), int64
        ``S(k)``: AM-surface in-plane pairs (face) or AM surface voxels (voxel).
    per_depth : list of float or None
        ``C(k) / S(k)``, None where ``S(k) = 0``.
    pooled : float or None
        ``ΣC / ΣS``; None when there is no AM surface.
    depth_mean : float or None
        Mean of the defined ``per_depth`` values.
    """

    method: str
    depth_axis: int
    contacts: np.ndarray
    surface: np.ndarray
    per_depth: list
    pooled: float | None
    depth_mean: float | None

    @classmethod
    def from_counts(cls, contacts: np.ndarray, surface: np.ndarray, *, method: str = "face",
                    depth_axis: int = 1) -> PBAProfile:
        """Build from ``C(k)`` and ``S(k)``; e.g. to pool two volumes of equal depth exactly."""
        contacts = np.asarray(contacts, dtype=np.int64)
        surface = np.asarray(surface, dtype=np.int64)
        per_depth = [float(c) / float(s) if s > 0 else None for c, s in zip(contacts, surface)]
        defined = [v for v in per_depth if v is not None]
        total = int(surface.sum())
        pooled = float(contacts.sum()) / total if total else None
        depth_mean = float(np.mean(defined)) if defined else None
        return cls(method, int(depth_axis), contacts, surface, per_depth, pooled, depth_mean)

    def to_dict(self) -> dict:
        """The ``pba`` entry of metrics.json: method, pooled, depth_mean, per_depth."""
        return {"method": self.method, "pooled": self.pooled, "depth_mean": self.depth_mean,
                "per_depth": list(self.per_depth)}

    def as_table(self):
        """pandas DataFrame: depth_index, contacts, surface, pba (NaN where undefined)."""
        import pandas as pd

        return pd.DataFrame({"depth_index": np.arange(len(self.contacts)),
                             "contacts": self.contacts, "surface": self.surface,
                             "pba": [np.nan if v is None else v for v in self.per_depth]})


def pooled_pba(profiles: Iterable[PBAProfile]) -> float | None:
    """PBA pooled over several volumes: ``Σ_volumes ΣC / Σ_volumes ΣS`` (None if no surface)."""
    profiles = list(profiles)
    surface = sum(int(p.surface.sum()) for p in profiles)
    contacts = sum(int(p.contacts.sum()) for p in profiles)
    return contacts / surface if surface else None


def face_pair_counts(labels: np.ndarray, *, depth_axis: int = 1,
                     phases: Sequence[str] = DEFAULT_PHASES,
                     ignore_value: int = 255) -> FacePairCounts:
    """Count face-adjacent voxel pairs by phase, per depth plane and per axis.

    Parameters
    ----------
    labels : ndarray, shape (Z, Y, X) or (Y, X), uint8
        Phase indices; pairs touching ``ignore_value`` are skipped.
    depth_axis : int
        Axis along which the counts are resolved.
    phases : sequence of str
    ignore_value : int

    Returns
    -------
    FacePairCounts

    Notes
    -----
    Plane by plane, each voxel and its upper neighbours along every axis are packed into one
    uint8/uint16 code (K = n_phases + 1 values, ignore mapped to n_phases) counted with a
    single ``np.bincount``; memory stays at a few planes, never a whole-volume temporary.
    Volumes of 16 M voxels or more are counted as two depth ranges on two threads.

    Examples
    --------
    >>> import numpy as np
    >>> counts = face_pair_counts(np.array([[2, 1, 1]], dtype=np.uint8), depth_axis=0)
    >>> int(counts.pairs[0, 1, 2, 1]), int(counts.pairs[0, 1, 1, 1])
    (1, 1)
    """
    labels = check_labels(labels, phases=phases, ignore_value=ignore_value)
    axis = check_depth_axis(depth_axis, labels.ndim)
    n = len(phases)
    if (n + 1) ** (labels.ndim + 1) <= 1 << 16:
        threads = 2 if labels.size >= _THREADED_VOXELS and labels.shape[axis] > 2 else 1
        pairs, voxels = _split_counts(labels, axis, n, threads=threads)
    else:
        pairs, voxels = _per_axis_counts(labels, axis, n)
    return FacePairCounts(tuple(phases), axis, pairs[:, :, :n, :n], voxels[:, :n], voxels[:, n])


def _split_counts(labels: np.ndarray, axis: int, n: int, *,
                  threads: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_fused_counts` on ``threads`` depth ranges at once (numpy's bincount and ufunc
    loops release the GIL). Each range but the last also reads the first plane of the next
    one, for the pairs across the cut; that plane's own row is dropped."""
    if threads <= 1:
        return _fused_counts(labels, axis, n)
    from concurrent.futures import ThreadPoolExecutor

    cuts = np.linspace(0, labels.shape[axis], threads + 1).round().astype(int)
    parts = [labels[(slice(None),) * axis + (slice(lo, hi + 1),)]
             for lo, hi in zip(cuts[:-1], cuts[1:])]
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda part: _fused_counts(part, axis, n), parts))
    sizes = np.diff(cuts)
    pairs = np.concatenate([r[0][:size] for r, size in zip(results, sizes)])
    voxels = np.concatenate([r[1][:size] for r, size in zip(results, sizes)])
    return pairs, voxels


def _fused_counts(labels: np.ndarray, axis: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every axis in one ``np.bincount`` per plane.

    Each voxel gets the code ``(((v K + n_0) K + n_1) K + d)`` (K = n + 1 values, ignore mapped
    to n) from itself, its upper in-plane neighbours n_i and its neighbour d in the next plane;
    planes are padded with the ignore code so border voxels pair with "ignore". Marginals of
    the K^(ndim+1) histogram give the voxel counts and the pair counts of every axis.
    """
    k, m = n + 1, labels.ndim - 1
    width = m + 2
    dtype = np.uint8 if k ** width <= 256 else np.uint16
    n_depth = labels.shape[axis]
    pairs = np.zeros((n_depth, labels.ndim, k, k), dtype=np.int64)
    voxels = np.zeros((n_depth, k), dtype=np.int64)
    plane_shape = tuple(s for a, s in enumerate(labels.shape) if a != axis)
    buffers = [np.full(tuple(s + 1 for s in plane_shape), n, dtype=np.uint8) for _ in range(2)]
    core = tuple(slice(0, s) for s in plane_shape)
    in_plane = [a for a in range(labels.ndim) if a != axis]

    def count(index: int, current: np.ndarray, following: np.ndarray) -> None:
        code = np.multiply(current[core], dtype(k), dtype=dtype)
        for d in range(m):
            code += current[core[:d] + (slice(1, None),) + core[d + 1:]]
            code *= dtype(k)
        code += following[core]
        hist = np.bincount(code.ravel(), minlength=k ** width).reshape((k,) * width)
        others = range(1, width)
        voxels[index] = hist.sum(axis=tuple(others))
        for d, a in enumerate(in_plane):
            pairs[index, a] = hist.sum(axis=tuple(i for i in others if i != d + 1))
        pairs[index, axis] = hist.sum(axis=tuple(range(1, width - 1)))

    last = -1
    for index, plane in _planes(labels, axis, None):
        np.minimum(plane, np.uint8(n), out=buffers[index % 2][core])
        if index > 0:
            count(index - 1, buffers[(index - 1) % 2], buffers[index % 2])
        last = index
    buffers[(last + 1) % 2].fill(n)
    count(last, buffers[last % 2], buffers[(last + 1) % 2])
    return pairs, voxels


def _per_axis_counts(labels: np.ndarray, axis: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """One ``np.bincount`` of ``a * K + b`` per plane and axis (for many phases)."""
    k = n + 1
    has_ignore = int(labels.max()) >= n
    n_depth = labels.shape[axis]
    pairs = np.zeros((n_depth, labels.ndim, k, k), dtype=np.int64)
    voxels = np.zeros((n_depth, k), dtype=np.int64)
    in_plane = [a for a in range(labels.ndim) if a != axis]
    previous = None
    for index, plane in _planes(labels, axis, n if has_ignore else None):
        for j, a in enumerate(in_plane):
            pairs[index, a] = _count_pairs(plane, j, k)
        voxels[index] = _plane_voxels(plane, pairs[index, in_plane[0]], k)
        if previous is not None:
            pairs[index - 1, axis] = _code_count(previous, plane, k)
        previous = plane
    return pairs, voxels


def _planes(labels: np.ndarray, axis: int, ignore_code: int | None) -> Iterator:
    """Yield (k, plane) for every depth plane; ignore mapped to ``ignore_code`` when given."""
    moved = np.moveaxis(labels, axis, 0)
    per_plane = max(1, moved[0].size)
    step = max(1, _CHUNK_VOXELS // per_plane)
    for start in range(0, moved.shape[0], step):
        chunk = moved[start:start + step]
        if axis == labels.ndim - 1:
            chunk = np.ascontiguousarray(chunk)
        if ignore_code is not None:
            chunk = np.minimum(chunk, np.uint8(ignore_code))
        for offset in range(chunk.shape[0]):
            yield start + offset, chunk[offset]


def _code_count(lower: np.ndarray, upper: np.ndarray, k: int) -> np.ndarray:
    dtype = np.uint8 if k * k <= 256 else np.uint16
    code = np.multiply(lower, dtype(k), dtype=dtype)
    code += upper
    return np.bincount(code.ravel(), minlength=k * k).reshape(k, k)


def _count_pairs(plane: np.ndarray, dim: int, k: int) -> np.ndarray:
    lower = [slice(None)] * plane.ndim
    upper = [slice(None)] * plane.ndim
    lower[dim], upper[dim] = slice(None, -1), slice(1, None)
    return _code_count(plane[tuple(lower)], plane[tuple(upper)], k)


def _plane_voxels(plane: np.ndarray, first_axis_pairs: np.ndarray, k: int) -> np.ndarray:
    """Voxels per value in a plane: lower members of the pairs along its first axis plus the
    last row, which has no upper neighbour (saves a pass over the plane)."""
    last = plane[-1] if plane.ndim else plane
    return first_axis_pairs.sum(axis=1) + np.bincount(np.ravel(last), minlength=k)[:k]


def pba_profile(labels: np.ndarray, *, depth_axis: int = 1,
                phases: Sequence[str] = DEFAULT_PHASES, method: str = "face",
                ignore_value: int = 255, am: str = "am", cbd: str = "cbd") -> PBAProfile:
    """Probability that active-material surface touches carbon-binder domain, per depth plane.

    Parameters
    ----------
    labels : ndarray, shape (Z, Y, X) or (Y, X), uint8
        Phase indices; ``ignore_value`` voxels and every pair touching them are excluded.
    depth_axis : int
        Axis from separator to current collector; the in-plane axes are all the others.
    phases : sequence of str
        Must contain ``am`` and ``cbd``.
    method : {"face", "voxel"}
        Count face pairs (default) or AM surface voxels.
    ignore_value : int
    am, cbd : str
        Names of the active-material and carbon-binder phases.

    Returns
    -------
    PBAProfile

    Notes
    -----
    Face method (docs/reference-metrics.md "neighbour counting"): over voxel pairs adjacent along an in-plane
    axis within depth plane k, ``S(k)`` counts pairs with exactly one AM voxel and ``C(k)`` pairs
    with one AM and one CBD voxel. ``per_depth[k] = C(k)/S(k)``, ``pooled = ΣC/ΣS``,
    ``depth_mean`` = mean of the defined ``per_depth``. Voxel method: ``S(k)`` counts AM voxels
    with at least one non-AM in-plane neighbour, ``C(k)`` those with at least one CBD one.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[1, 2, 0], [0, 2, 1]], dtype=np.uint8)
    >>> pba_profile(labels, depth_axis=0).per_depth
    [0.5, 0.5]
    """
    if method not in ("face", "voxel"):
        raise InputError(f"method: expected 'face' or 'voxel', got {method!r}")
    labels = check_labels(labels, phases=phases, ignore_value=ignore_value)
    axis = check_depth_axis(depth_axis, labels.ndim)
    i_am = phase_index(phases, am, argument="am")
    i_cbd = phase_index(phases, cbd, argument="cbd")
    if method == "face":
        counts = face_pair_counts(labels, depth_axis=axis, phases=phases,
                                  ignore_value=ignore_value)
        result = pba_from_pairs(counts, am=am, cbd=cbd)
    else:
        contacts, surface = _voxel_counts(labels, axis, i_am, i_cbd, len(phases))
        result = PBAProfile.from_counts(contacts, surface, method="voxel", depth_axis=axis)
    if result.pooled is None:
        logger.warning("labels: no AM surface in-plane (phase %r absent or never next to "
                       "another phase); PBA is null", am)
    return result


def pba_from_pairs(counts: FacePairCounts, *, am: str = "am", cbd: str = "cbd") -> PBAProfile:
    """Face-method PBA from precomputed :class:`FacePairCounts` (see :func:`pba_profile`)."""
    i_am = phase_index(counts.phases, am, argument="am")
    i_cbd = phase_index(counts.phases, cbd, argument="cbd")
    in_plane = [a for a in range(counts.pairs.shape[1]) if a != counts.depth_axis]
    contacts, surface = am_contacts(counts.symmetric()[:, in_plane].sum(axis=1), i_am, i_cbd)
    return PBAProfile.from_counts(contacts, surface, method="face", depth_axis=counts.depth_axis)


def _voxel_counts(labels: np.ndarray, axis: int, i_am: int, i_cbd: int,
                  n: int) -> tuple[np.ndarray, np.ndarray]:
    n_depth = labels.shape[axis]
    contacts = np.zeros(n_depth, dtype=np.int64)
    surface = np.zeros(n_depth, dtype=np.int64)
    for index, plane in _planes(labels, axis, None):
        is_am = plane == i_am
        near_other = _touches(plane, (plane != i_am) & (plane < n))
        near_cbd = _touches(plane, plane == i_cbd)
        surface[index] = np.count_nonzero(is_am & near_other)
        contacts[index] = np.count_nonzero(is_am & near_cbd)
    return contacts, surface


def _touches(plane: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """True where a voxel has a face neighbour (within the plane) in ``mask``."""
    out = np.zeros_like(mask)
    for dim in range(plane.ndim):
        lower = [slice(None)] * plane.ndim
        upper = [slice(None)] * plane.ndim
        lower[dim], upper[dim] = slice(None, -1), slice(1, None)
        out[tuple(lower)] |= mask[tuple(upper)]
        out[tuple(upper)] |= mask[tuple(lower)]
    return out

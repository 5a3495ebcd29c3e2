"""The segmentation's own error on the headline metrics, measured on hand-labelled slices.

Sub-block intervals (``uncertainty``) say how much a metric varies across the specimen; they
say nothing about how wrong the segmentation is. This module measures that error where it can
be measured: on slices someone labelled by hand (or a dense truth), which the segmentation did
not learn from. On each labelled slice the same counts are made on the hand labels and on the
segmentation, in tiles (strips across the non-depth in-plane axis, each spanning the whole
depth), and each metric of the whole volume is corrected by the error seen there:

- **volume fractions**: ``φ_seg(volume) − (φ_seg − φ_hand)(labelled voxels)``; the error in a
  labelled area is the error anywhere else the images look alike.
- **PBA** (pooled, face method over the two in-plane axes): corrected axis by axis. Along the
  slice's own in-plane axis across the depth: ``PBA_seg,x(volume) − (PBA_seg,x −
  PBA_hand,x)(slices)``. Along the slicing axis (between slices: FIB-SEM's coarse, milled
  direction, where shine-through acts), a single labelled slice holds no faces: the error there
  is measured only where two **adjacent** slices are labelled. Without such a pair it is not
  measured: the estimate takes the through-slice error equal to the in-slice error, and the
  interval also spans a second reading, the through-slice contact fraction equal to the
  corrected in-slice one (the electrode's plane has no preferred direction). The two
  axes are pooled with the segmentation's AM surface along each. ``pba_depth_mean`` moves by the
  pooled correction.
- **interface areas**: per pair and axis, the area per volume is ``faces of this pair per voxel
  / voxel edge along that axis``; the slices' error in it is added (faces between slices: as
  PBA, measured on adjacent labelled slices, else the two readings).

The segmentation interval is a two-level percentile bootstrap: positions (runs of adjacent
labelled slices) drawn with replacement, then tiles within each drawn position, because the
error varies from one position to the next and the tiles of one slice share it. The total
interval adds the sub-block sampling half width in quadrature. The particle median
diameter has no segmentation interval here: particles are 3-D objects, and a slice cannot count
how a segmentation splits or merges them (its value in ``segmentation`` says so).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from electroseg.analysis._bootstrap import check_bootstrap, none_if_nan, percentile_interval, ratio
from electroseg.analysis._validate import check_depth_axis, check_labels
from electroseg.analysis.contacts import FacePairCounts, am_contacts, face_pair_counts, unordered
from electroseg.analysis.surfaces import face_areas
from electroseg.errors import InputError

__all__ = ["SliceErrors", "dense_slices", "measure_slice_errors", "segmentation_intervals", "slice_depth",
           "PARTICLE_NOTE", "DENSE_SHARE"]

PARTICLE_NOTE = ("not measured: particles are 3-D objects and a labelled slice cannot tell how the "
                 "segmentation splits or merges them")


@dataclass(frozen=True, eq=False)
class SliceErrors:
    """Counts on the hand labels and on the segmentation, per tile of the labelled slices.

    Attributes
    ----------
    phases : tuple of str
    depth : int
        Which of a slice's two axes is the electrode depth (0: the volume's axis 1, as for
        ``(Z, Y, X)`` volumes with ``depth_axis=1``; 1: the volume's axis 2).
    voxels : ndarray, shape (2, n_tiles, n_phases), int64
        Labelled voxels per phase: ``[0]`` hand labels, ``[1]`` segmentation (the same voxels).
    faces : ndarray, shape (2, n_tiles, 2, n_phases, n_phases), int64
        Unordered face-pair counts along each slice axis (pairs with both voxels labelled).
    through : ndarray, shape (2, n_tiles, n_phases, n_phases), int64
        Unordered face pairs between the tile's slice and the next one where both are labelled
        (zero where the next slice is not).
    planes : tuple of int
        Indices of the labelled slices along the slicing axis (axis 0).
    groups : ndarray, shape (n_tiles,), int64
        The position of each tile's slice: adjacent labelled slices share one (the bootstrap
        resamples positions, then tiles within them).
    """

    phases: tuple[str, ...]
    depth: int
    voxels: np.ndarray
    faces: np.ndarray
    through: np.ndarray
    planes: tuple[int, ...]
    groups: np.ndarray

    @property
    def n_tiles(self) -> int:
        return int(self.voxels.shape[1])

    @property
    def labelled_voxels(self) -> int:
        return int(self.voxels[0].sum())

    def to_dict(self) -> dict:
        """JSON-able form (stored in checkpoints)."""
        return {"phases": list(self.phases), "depth": self.depth, "voxels": self.voxels.tolist(),
                "faces": self.faces.tolist(), "through": self.through.tolist(), "planes": list(self.planes),
                "groups": self.groups.tolist()}

    @property
    def through_pairs(self) -> int:
        """Through-slice face pairs counted (between adjacent labelled slices)."""
        return int(self.through[0].sum())

    @classmethod
    def from_dict(cls, data: Mapping) -> SliceErrors:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(tuple(data["phases"]), int(data["depth"]), np.asarray(data["voxels"], np.int64),
                       np.asarray(data["faces"], np.int64), np.asarray(data["through"], np.int64),
                       tuple(int(p) for p in data["planes"]), np.asarray(data["groups"], np.int64))
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"slice errors: expected a dict as written by SliceErrors.to_dict, got {err!r}") from None

    def pooled(self, other: SliceErrors) -> SliceErrors:
        """The tiles of both (e.g. the slices of several held-out volumes)."""
        if other.phases != self.phases or other.depth != self.depth:
            raise InputError(f"slice errors: cannot pool phases {list(other.phases)} (depth {other.depth}) "
                             f"with {list(self.phases)} (depth {self.depth})")
        return SliceErrors(self.phases, self.depth, np.concatenate([self.voxels, other.voxels], axis=1),
                           np.concatenate([self.faces, other.faces], axis=1),
                           np.concatenate([self.through, other.through], axis=1), self.planes + other.planes,
                           np.concatenate([self.groups, other.groups + int(self.groups.max()) + 1]))


#: Fewer labelled positions (runs of adjacent labelled slices) than this: the result carries a caution.
FEW_POSITIONS = 3

#: A slice counts as hand-labelled for the error measurement when at least this share of it is labelled.
DENSE_SHARE = 0.5


def dense_slices(hand_labels: np.ndarray, *, ignore_value: int = 255,
                 share: float = DENSE_SHARE) -> tuple[np.ndarray, int]:
    """Hand labels with the slices (planes across axis 0) less than ``share`` labelled set to
    ``ignore_value``, and how many labelled slices were left out. A 2-D image is one slice.

    Examples
    --------
    >>> import numpy as np
    >>> hand = np.full((3, 4, 4), 255, np.uint8); hand[0] = 1; hand[2, 0, 0] = 2
    >>> kept, left_out = dense_slices(hand)
    >>> int((kept != 255).sum()), left_out
    (16, 1)
    """
    hand = np.asarray(hand_labels)
    planes = hand if hand.ndim == 3 else hand[None]
    labelled = (planes != ignore_value).reshape(planes.shape[0], -1).mean(axis=1)
    sparse = (labelled > 0) & (labelled < share)
    if not sparse.any():
        return hand, 0
    kept = planes.copy()
    kept[sparse] = ignore_value
    return kept.reshape(hand.shape), int(sparse.sum())


def slice_depth(ndim: int, depth_axis: int) -> int:
    """Which axis of a labelled slice is the depth, for labels of ``ndim`` dimensions with
    ``depth_axis`` (:attr:`SliceErrors.depth`: errors apply only where it matches).

    Examples
    --------
    >>> slice_depth(3, 1), slice_depth(3, -1), slice_depth(2, 0)
    (0, 1, 0)
    """
    return depth_axis % ndim - (ndim - 2)


def _promote(labels: np.ndarray, depth_axis: int) -> tuple[np.ndarray, int]:
    """``(Y, X)`` → ``(1, Y, X)``; the depth axis follows."""
    return (labels[None], depth_axis + 1) if labels.ndim == 2 else (labels, depth_axis)


def measure_slice_errors(labels: np.ndarray, hand_labels: np.ndarray, *, depth_axis: int = 1,
                         phases: Sequence[str] = ("pore", "cbd", "am"), ignore_value: int = 255,
                         tiles_per_slice: int = 8, source: str = "hand labels") -> SliceErrors | None:
    """Count phases and face pairs on every labelled slice (a plane across axis 0), hand labels
    against the segmentation.

    Parameters
    ----------
    labels : ndarray, shape (Z, Y, X) or (Y, X)
        The segmentation.
    hand_labels : ndarray, same shape
        Hand labels, ``ignore_value`` where unlabelled. Voxels the segmentation ignores are left
        out too. Label whole slices (or whole regions of them): scribbles that avoid the phase
        boundaries miss exactly the errors that move PBA and the interfaces.
    depth_axis : int
        Not 0 for a volume: the labelled slices are planes across axis 0.
    tiles_per_slice : int
        Strips per slice across its non-depth axis, each spanning the whole depth (the bootstrap
        units).

    Returns
    -------
    SliceErrors or None
        None when no voxel is labelled.

    Examples
    --------
    >>> import numpy as np
    >>> seg = np.zeros((3, 4, 8), np.uint8); seg[:, :, 4:] = 2
    >>> hand = np.full_like(seg, 255); hand[1] = seg[1]; hand[1, :, 4] = 1
    >>> errors = measure_slice_errors(seg, hand, depth_axis=1, tiles_per_slice=2)
    >>> errors.planes, errors.voxels[0].sum(axis=0).tolist(), errors.voxels[1].sum(axis=0).tolist()
    ((1,), [16, 4, 12], [16, 0, 16])
    """
    phases = tuple(phases)
    labels = check_labels(labels, phases=phases, ignore_value=ignore_value, name="segmentation")
    hand = check_labels(hand_labels, phases=phases, ignore_value=ignore_value, name=source)
    if hand.shape != labels.shape:
        raise InputError(f"{source}: expected the segmentation's shape {labels.shape}, got {hand.shape}")
    if isinstance(tiles_per_slice, bool) or not isinstance(tiles_per_slice, (int, np.integer)) or tiles_per_slice < 1:
        raise InputError(f"tiles_per_slice: expected a positive integer, got {tiles_per_slice!r}")
    axis = check_depth_axis(depth_axis, labels.ndim)
    labels, axis = _promote(labels, axis)
    hand, _ = _promote(hand, 0)
    if axis == 0:
        raise InputError("depth_axis: the labelled slices are planes across axis 0, which must not be the depth axis")
    depth = axis - 1                     # in a slice's own axes
    across = 1 - depth
    n = len(phases)
    labelled = (hand != ignore_value) & (labels != ignore_value)
    width = labels.shape[1 + across]
    edges = np.linspace(0, width, min(int(tiles_per_slice), width) + 1).round().astype(int)
    tile_of = np.searchsorted(edges, np.arange(width), side="right") - 1   # tile of each position across
    shape = labels.shape[1:]
    tile = np.broadcast_to(tile_of[None, :] if across == 1 else tile_of[:, None], shape)
    n_tiles = len(edges) - 1
    voxels, faces, through, planes, groups = [], [], [], [], []
    for z in range(labels.shape[0]):
        both = labelled[z]
        if not both.any():
            continue
        group = (groups[-1][0] if planes[-1] == z - 1 else groups[-1][0] + 1) if planes else 0
        planes.append(z)
        nxt = labelled[z + 1] & both if z + 1 < labels.shape[0] else None
        per_source = []
        for source_labels in (hand, labels):
            plane = source_labels[z]
            counts_v = _tile_counts(plane[both], None, tile[both], n_tiles, n)
            along = []
            for axis in (0, 1):  # a face belongs to the tile of its upper voxel: none is lost at a tile edge
                lower = [slice(None), slice(None)]
                upper = [slice(None), slice(None)]
                lower[axis], upper[axis] = slice(0, -1), slice(1, None)
                keep = both[tuple(lower)] & both[tuple(upper)]
                along.append(_tile_counts(plane[tuple(lower)][keep], plane[tuple(upper)][keep],
                                          tile[tuple(upper)][keep], n_tiles, n))
            between = (np.zeros((n_tiles, n, n), np.int64) if nxt is None or not nxt.any() else
                       _tile_counts(plane[nxt], source_labels[z + 1][nxt], tile[nxt], n_tiles, n))
            per_source.append((counts_v, np.stack(along, axis=1), between))
        present = per_source[0][0].sum(axis=1) > 0            # tiles holding labelled voxels
        voxels.append(np.stack([c[0][present] for c in per_source]))
        faces.append(np.stack([c[1][present] for c in per_source]))
        through.append(np.stack([c[2][present] for c in per_source]))
        groups.append(np.full(int(present.sum()), group, np.int64))
    if not voxels:
        return None
    return SliceErrors(phases, depth, np.concatenate(voxels, axis=1), np.concatenate(faces, axis=1),
                       np.concatenate(through, axis=1), tuple(planes), np.concatenate(groups))


def _tile_counts(first: np.ndarray, second: np.ndarray | None, tiles: np.ndarray, n_tiles: int,
                 n: int) -> np.ndarray:
    """Per tile: voxel counts per phase (``second`` None), shape (n_tiles, n); or unordered pair
    counts of ``first``/``second`` (same length), shape (n_tiles, n, n), ``M + Mᵀ`` off the
    diagonal as :meth:`FacePairCounts.symmetric`."""
    tiles = tiles.astype(np.int64)
    if second is None:
        return np.bincount(tiles * n + first, minlength=n_tiles * n).reshape(n_tiles, n)
    code = (tiles * n + first.astype(np.int64)) * n + second.astype(np.int64)
    return unordered(np.bincount(code, minlength=n_tiles * n * n).reshape(n_tiles, n, n))


# ---- the corrected metrics --------------------------------------------------------------------

def _pba(sym: np.ndarray, i_am: int, i_cbd: int) -> np.ndarray:
    """Face PBA from unordered counts ``sym`` (..., n, n); NaN without AM surface."""
    return ratio(*am_contacts(sym, i_am, i_cbd))


def _fraction(voxels: np.ndarray) -> np.ndarray:
    return ratio(voxels, voxels.sum(axis=-1, keepdims=True))


def _pair_share(sym: np.ndarray) -> np.ndarray:
    """Share of the counted voxel pairs that are each unordered phase pair, ``(..., n, n)`` (the
    faces between two slices per voxel position where both are labelled)."""
    upper = np.triu(np.ones(sym.shape[-2:], bool))
    return ratio(sym, np.where(upper, sym, 0).sum(axis=(-2, -1))[..., None, None])


def _corrected(volume: dict, phases: tuple[str, ...], depth: int, counts: dict) -> dict[str, tuple]:
    """Corrected metrics from slice counts summed over a set of tiles (leading axes: resamples),
    each as ``(estimate, other reading)``: equal where the through-slice error was measured, else
    (through-slice error = in-slice error, through-slice value = corrected in-slice value).
    ``volume`` holds the whole segmentation's counts (axis 0 = slicing, axes 1, 2 = slice axes)."""
    out: dict[str, tuple] = {}
    shift = _fraction(counts["seg_voxels"]) - _fraction(counts["hand_voxels"])
    for i, p in enumerate(phases):
        value = np.clip(volume["fractions"][i] - shift[..., i], 0.0, 1.0)
        out[f"volume_fraction_{p}"] = (value, value)
    across = 1 - depth
    hand_in, seg_in = counts["hand_faces"][..., across, :, :], counts["seg_faces"][..., across, :, :]
    measured = volume["slicing_axis"] and counts["measured"]
    if {"am", "cbd"} <= set(phases):
        i_am, i_cbd = phases.index("am"), phases.index("cbd")
        bias = _pba(seg_in, i_am, i_cbd) - _pba(hand_in, i_am, i_cbd)
        in_slice = np.clip(volume["pba"][1 + across] - bias, 0.0, 1.0)
        if not volume["slicing_axis"] or volume["pba_weight"] == 0:  # no AM surface across the slices
            readings = (in_slice, in_slice)
        else:
            if measured:
                through_bias = _pba(counts["seg_through"], i_am, i_cbd) - _pba(counts["hand_through"], i_am, i_cbd)
                through = (np.clip(volume["pba"][0] - through_bias, 0.0, 1.0),) * 2
            else:
                through = (np.clip(volume["pba"][0] - bias, 0.0, 1.0), in_slice)
            w = volume["pba_weight"]                       # share of the AM surface across the slices
            readings = tuple((1 - w) * in_slice + w * t for t in through)
        out["pba_pooled"] = readings
        if volume.get("pba_pooled") is not None and volume.get("pba_depth_mean") is not None:
            out["pba_depth_mean"] = tuple(np.clip(volume["pba_depth_mean"] + (r - volume["pba_pooled"]), 0.0, 1.0)
                                          for r in readings)
    # interfaces: i-j faces along an axis per voxel, divided by the voxel edge along it, are that
    # axis's area per volume; the slices' error in that number is added
    labelled = counts["hand_voxels"].sum(axis=-1)[..., None, None, None]
    error = ratio(counts["hand_faces"] - counts["seg_faces"], labelled)                   # (..., 2, n, n)
    error_through = _pair_share(counts["hand_through"]) - _pair_share(counts["seg_through"])
    density, edge = volume["density_by_axis"], volume["edge"]                            # per µm, (3, n, n); µm
    for i, j in combinations(range(len(phases)), 2):
        in_plane = sum(density[1 + k, i, j] + error[..., k, i, j] / edge[1 + k] for k in (0, 1))
        if not volume["slicing_axis"]:
            readings = (in_plane, in_plane)
        elif measured:
            readings = (in_plane + density[0, i, j] + error_through[..., i, j] / edge[0],) * 2
        else:
            readings = (in_plane + density[0, i, j] + error[..., across, i, j] / edge[0],
                        in_plane + density[1 + across, i, j] + error[..., across, i, j] / edge[1 + across])
        out[f"surface_{phases[i]}-{phases[j]}_per_um"] = tuple(np.maximum(r, 0.0) for r in readings)
    return out


def _resample_weights(groups: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Two-level bootstrap as tile multiplicities, shape (n_boot, n_tiles): positions (runs of
    adjacent labelled slices) drawn with replacement, then the tiles of each drawn position."""
    ids = np.unique(groups)
    drawn = rng.multinomial(len(ids), np.full(len(ids), 1 / len(ids)), size=n_boot)   # (n_boot, n_groups)
    weights = np.zeros((n_boot, groups.size), np.int64)
    for g, gid in enumerate(ids):
        members = np.flatnonzero(groups == gid)
        weights[:, members] = rng.multinomial(drawn[:, g] * members.size, np.full(members.size, 1 / members.size))
    return weights


def _one_position_weights(groups: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Predictive bootstrap as tile multiplicities, shape (n_boot, n_tiles): one position drawn
    per resample, then its tiles drawn with replacement (as many as it has)."""
    ids = np.unique(groups)
    picked = rng.integers(0, len(ids), size=n_boot)
    weights = np.zeros((n_boot, groups.size), np.int64)
    for g, gid in enumerate(ids):
        members = np.flatnonzero(groups == gid)
        rows = np.flatnonzero(picked == g)
        weights[np.ix_(rows, members)] = rng.multinomial(members.size, np.full(members.size, 1 / members.size),
                                                         size=rows.size)
    return weights


def _sums(errors: SliceErrors, weights=None) -> dict:
    """Slice counts summed over all tiles, or per resample (``weights``: tile multiplicities)."""
    def total(array):
        return array.sum(0) if weights is None else np.tensordot(weights, array, axes=(1, 0))
    return {"hand_voxels": total(errors.voxels[0]), "seg_voxels": total(errors.voxels[1]),
            "hand_faces": total(errors.faces[0]), "seg_faces": total(errors.faces[1]),
            "hand_through": total(errors.through[0]), "seg_through": total(errors.through[1]),
            "measured": errors.through_pairs > 0}


def segmentation_intervals(labels: np.ndarray, errors: SliceErrors, *, voxel_size: Sequence[float],
                           pba_pooled: float | None = None, pba_depth_mean: float | None = None,
                           sampling: Mapping | None = None, particle_median_um: float | None = None,
                           ignore_value: int = 255, confidence: float = 0.95, n_boot: int = 2000,
                           seed: int = 0, source: str = "hand labels",
                           counts: FacePairCounts | None = None, transfer: bool = False) -> dict:
    """``uncertainty.segmentation`` and ``uncertainty.total`` of metrics.json.

    Parameters
    ----------
    labels : ndarray, shape (Z, Y, X) or (Y, X)
        The segmentation (the whole volume the metrics describe); its depth axis is the one
        ``errors`` was measured with (``errors.depth + 1`` for a volume).
    errors : SliceErrors
        From :func:`measure_slice_errors` on this segmentation, or stored with a checkpoint
        (measured on held-out slices of other volumes imaged alike).
    transfer : bool
        The errors were measured on other volumes or images than ``labels`` (a checkpoint's
        held-out slices). The interval is then a prediction interval for this one volume: each
        resample takes the error of **one** labelled position (its tiles resampled) instead of
        the mean over resampled positions, because this volume's error is a new draw from the
        spread between positions, not their average. The estimate is still corrected by the mean
        error. With one labelled position the two are the same. (Same volume, ``transfer`` False:
        the error of the unlabelled rest is the mean of the labelled positions', and the
        interval is that mean's.)
    voxel_size : sequence of float
    pba_pooled, pba_depth_mean : float, optional
        The reported values; ``pba_depth_mean`` is moved by the pooled value's correction.
    sampling : mapping, optional
        ``{metric: (ci_low, ci_high)}`` sub-block intervals; the total interval adds their half
        width in quadrature. Without it, ``total`` is None.
    particle_median_um : float, optional
        The reported particle median diameter, listed with :data:`PARTICLE_NOTE`.
    source : str
        Where the labelled slices came from (written into the result).
    counts : FacePairCounts, optional
        :func:`face_pair_counts` of ``labels`` with its depth axis, when already counted (as
        ``analyze_labels`` has); else counted here.

    Returns
    -------
    dict
        ``{"method", "source", "confidence", "labelled", "through_slice", "segmentation":
        {metric: {estimate, ci_low, ci_high, reported}}, "total": {metric: {estimate, ci_low,
        ci_high}} or None}``.

    Examples
    --------
    A segmentation that misses the CBD column the hand labels hold on the labelled slice:

    >>> import numpy as np
    >>> seg = np.zeros((3, 4, 8), np.uint8); seg[:, :, 4:] = 2
    >>> hand = np.full_like(seg, 255); hand[1] = seg[1]; hand[1, :, 4] = 1
    >>> errors = measure_slice_errors(seg, hand, depth_axis=1, tiles_per_slice=2)
    >>> out = segmentation_intervals(seg, errors, voxel_size=(1, 1, 1), n_boot=50)
    >>> out["segmentation"]["volume_fraction_cbd"]["estimate"], out["segmentation"]["volume_fraction_cbd"]["reported"]
    (0.125, 0.0)
    """
    check_bootstrap(n_boot, seed, confidence)
    phases = errors.phases
    labels = check_labels(labels, phases=phases, ignore_value=ignore_value, name="segmentation")
    sizes = tuple(float(v) for v in voxel_size)
    if len(sizes) != labels.ndim:
        raise InputError(f"voxel_size: expected {labels.ndim} values, got {len(sizes)}")
    sizes3 = sizes if labels.ndim == 3 else (1.0, *sizes)
    if counts is None:
        counts = face_pair_counts(labels, depth_axis=errors.depth + labels.ndim - 2, phases=phases,
                                  ignore_value=ignore_value)
    sym = counts.symmetric().sum(axis=0)                  # (ndim, n, n)
    if labels.ndim == 2:                                  # no slicing axis: no faces along it
        sym = np.concatenate([np.zeros_like(sym[:1]), sym])
    voxels = counts.voxels.sum(axis=0)
    volume_um3 = float(voxels.sum()) * float(np.prod(sizes3))
    volume = {"fractions": _fraction(voxels), "edge": np.asarray(sizes3),
              "density_by_axis": face_areas(sizes3)[:, None, None] * sym / volume_um3,
              "slicing_axis": labels.ndim == 3 and labels.shape[0] > 1,
              "pba_pooled": pba_pooled, "pba_depth_mean": pba_depth_mean}
    if {"am", "cbd"} <= set(phases):
        i_am, i_cbd = phases.index("am"), phases.index("cbd")
        volume["pba"] = _pba(sym, i_am, i_cbd)             # per axis
        surface = am_contacts(sym, i_am, i_cbd)[1]
        in_plane = surface[0] + surface[2 - errors.depth]
        volume["pba_weight"] = float(surface[0] / in_plane) if in_plane > 0 else 0.0
    estimate = _corrected(volume, phases, errors.depth, _sums(errors))
    draw = _one_position_weights if transfer else _resample_weights
    weights = draw(errors.groups, int(n_boot), np.random.default_rng(seed))
    samples = _corrected(volume, phases, errors.depth, _sums(errors, weights))
    reported = {f"volume_fraction_{p}": none_if_nan(float(volume["fractions"][i])) for i, p in enumerate(phases)}
    reported.update({"pba_pooled": pba_pooled, "pba_depth_mean": pba_depth_mean})
    total_density = volume["density_by_axis"].sum(axis=0)
    for i, j in combinations(range(len(phases)), 2):
        reported[f"surface_{phases[i]}-{phases[j]}_per_um"] = none_if_nan(float(total_density[i, j]))
    segmentation: dict = {}
    total: dict | None = {} if sampling is not None else None
    for name, (a, b) in estimate.items():
        lows, highs = zip(*(percentile_interval(r, confidence) for r in samples[name]))
        lows, highs = [v for v in lows if np.isfinite(v)], [v for v in highs if np.isfinite(v)]
        entry = {"estimate": none_if_nan(float(a)), "ci_low": min(lows) if lows else None,
                 "ci_high": max(highs) if highs else None, "reported": reported.get(name)}
        if None not in (entry["ci_low"], entry["ci_high"], entry["estimate"]):  # the estimate lies inside
            entry["ci_low"], entry["ci_high"] = (min(entry["ci_low"], entry["estimate"]),
                                                 max(entry["ci_high"], entry["estimate"]))
        segmentation[name] = entry
        if total is not None:
            total[name] = _combine(entry, sampling.get(name), upper=None if name.startswith("surface_") else 1.0)
    if particle_median_um is not None:
        blank = {"estimate": None, "ci_low": None, "ci_high": None, "note": PARTICLE_NOTE}
        segmentation["particle_median_diameter_um"] = {**blank, "reported": particle_median_um}
        if total is not None:
            total["particle_median_diameter_um"] = dict(blank)
    if not volume["slicing_axis"]:
        through_note = "none: a single slice"
    elif errors.through_pairs:
        through_note = f"measured on {errors.through_pairs} face pairs between adjacent labelled slices"
    else:
        through_note = ("not measured (no two adjacent slices labelled): the PBA and interface estimates take "
                        "the through-slice error equal to the in-slice one, and their intervals also span "
                        "the through-slice value equal to the in-slice one; label two adjacent slices to "
                        "measure it")
    resampling = ("a prediction interval for this volume, the errors having been measured on other "
                  "volumes: each resample takes one labelled position's error, its tiles resampled"
                  if transfer else "bootstrap over their positions, then tiles within them")
    positions = int(np.unique(errors.groups).size)
    caution = None
    if positions < FEW_POSITIONS:
        caution = (f"the error was measured at {positions} labelled position(s) only: the interval cannot show "
                   "how much it varies from one position to the next (on SegmentPy's real images, two held-out "
                   "slices gave intervals that held the true PBA in 7 of 12 cases); label more slices, spread "
                   "through the stack")
    return {"method": f"each metric corrected by its error on hand-labelled slices ({resampling}); total: "
                      "the sub-block sampling half width added in quadrature",
            "source": source, "confidence": confidence, "transfer": bool(transfer), "caution": caution,
            "labelled": {"slices": list(errors.planes), "voxels": errors.labelled_voxels,
                         "tiles": errors.n_tiles, "positions": positions},
            "through_slice": through_note, "segmentation": segmentation, "total": total}


def _combine(entry: Mapping, interval, *, upper: float | None = 1.0) -> dict:
    """Estimate ± the segmentation's and the sampling's half widths added in quadrature, kept
    within [0, ``upper``] (fractions and PBA; surfaces have no upper bound)."""
    value, low, high = entry["estimate"], entry["ci_low"], entry["ci_high"]
    if value is None or low is None or high is None:
        return {"estimate": value, "ci_low": None, "ci_high": None}
    half = 0.0
    if interval is not None and None not in tuple(interval):
        half = (float(interval[1]) - float(interval[0])) / 2
    below = float(np.hypot(max(value - low, 0.0), half))
    above = float(np.hypot(max(high - value, 0.0), half))
    high = value + above if upper is None else min(value + above, upper)
    return {"estimate": value, "ci_low": max(value - below, 0.0), "ci_high": high}

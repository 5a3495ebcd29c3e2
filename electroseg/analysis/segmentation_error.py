"""The segmentation's own error on the headline metrics, measured on hand-labelled slices.

Sub-block intervals (``uncertainty``) say how much a metric varies across the specimen; they
say nothing about how wrong the segmentation is. This module measures that error where it can
be measured: on slices someone labelled by hand (or a dense truth), which the segmentation did
not learn from. On each labelled slice every voxel, and every face between two neighbouring
voxels, is counted by what the segmentation called it and what the hand labels say it is, in
tiles (strips across the non-depth in-plane axis, each spanning the whole depth). That gives
``P(hand class | segmentation class)``: of the voxels the segmentation called CBD, how many are
CBD; of the faces it called AM|pore, how many are AM|CBD, AM|pore, pore|pore... Each count of the
whole segmentation is then shared out over the hand classes with those shares (what looks alike
to the segmentation is alike, wherever it lies), and the metrics are computed from the shared-out
counts:

- **volume fractions**: the voxels of each phase as segmented, shared out by ``P(hand phase |
  segmented phase)``.
- **PBA** (pooled, face method over the two in-plane axes): the faces along the slice's own
  in-plane axis across the depth are shared out by the labelled slices' faces along that axis.
  Along the slicing axis (between slices: FIB-SEM's coarse, milled direction, where
  shine-through acts) a single labelled slice holds no faces: the shares there are measured only
  where two **adjacent** slices are labelled. Without such a pair the through-slice faces are
  read three ways: shared out as the in-slice ones; the in-slice error per voxel added to them;
  the through-slice contact fraction equal to the corrected in-slice one (the electrode's plane
  has no preferred direction). The estimate is their median and the interval spans all three.
  The AM-CBD and AM-other faces of both axes are then pooled.
  ``pba_depth_mean`` moves by the pooled correction.
- **interface areas**: per pair and axis, the shared-out faces times the face area, per volume
  (faces between slices: as PBA, measured on adjacent labelled slices, else the three readings).

Sharing out counts (a conditional, or calibration, estimator) rather than subtracting the
slices' error in each metric (a difference estimator) narrows the PBA correction's spread from
one labelled pair of slices to the next by a fifth on the generator's stacks and by a third
on real microstructures imaged with other physics (``docs/reference-metrics.md``): the shares
depend on how the images look; a metric's value on a slice also on which few particles it cuts.

The segmentation interval is a two-level percentile bootstrap: positions (runs of adjacent
labelled slices) drawn with replacement, then tiles within each drawn position, because the
error varies from one position to the next and the tiles of one slice share it. The total
interval adds the sub-block sampling half width in quadrature. The particle (number) median
diameter has no segmentation interval here: particles are 3-D objects, and a slice cannot count
how a segmentation splits or merges them (its value in ``segmentation`` says so). The
volume-weighted median (D50 by volume), which the small fragments of a noisy split hardly move,
is corrected for the AM boundary's displacement (the cube root of the AM fraction's ratio,
shared out over reported; the square root in 2-D) and its total interval adds the sampling of
the particles by block.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from electroseg.analysis._bootstrap import check_bootstrap, none_if_nan, percentile_interval, ratio
from electroseg.analysis._validate import check_depth_axis, check_labels
from electroseg.analysis.contacts import FacePairCounts, am_contacts, face_pair_counts
from electroseg.analysis.surfaces import face_areas
from electroseg.errors import InputError

__all__ = ["SliceErrors", "dense_slices", "measure_slice_errors", "pair_codes", "segmentation_intervals", "slice_depth",
           "PARTICLE_NOTE", "DENSE_SHARE"]

PARTICLE_NOTE = ("not measured: particles are 3-D objects and a labelled slice cannot tell how the "
                 "segmentation splits or merges them, which moves the number median most; "
                 "particle_volume_weighted_median_um (D50 by volume) has an interval")


def pair_codes(n: int) -> np.ndarray:
    """Index of each unordered phase pair, shape (n, n), symmetric: pairs ``(i, j)`` with
    ``i <= j`` numbered row by row (``n (n + 1) / 2`` codes, same-phase pairs included).

    Examples
    --------
    >>> pair_codes(3).tolist()
    [[0, 1, 2], [1, 3, 4], [2, 4, 5]]
    """
    rows, cols = np.triu_indices(n)
    codes = np.empty((n, n), np.int64)
    codes[rows, cols] = codes[cols, rows] = np.arange(rows.size)
    return codes


@dataclass(frozen=True, eq=False)
class SliceErrors:
    """What the segmentation called each labelled voxel and face, against the hand labels, per
    tile of the labelled slices.

    Attributes
    ----------
    phases : tuple of str
    depth : int
        Which of a slice's two axes is the electrode depth (0: the volume's axis 1, as for
        ``(Z, Y, X)`` volumes with ``depth_axis=1``; 1: the volume's axis 2).
    voxel_joint : ndarray, shape (n_tiles, n_phases, n_phases), int64
        Labelled voxels per ``[segmentation phase, hand phase]``.
    face_joint : ndarray, shape (n_tiles, 2, n_pairs, n_pairs), int64
        Faces along each slice axis per ``[segmentation pair, hand pair]`` (unordered phase
        pairs numbered by :func:`pair_codes`, same-phase pairs included), both voxels labelled.
    through_joint : ndarray, shape (n_tiles, n_pairs, n_pairs), int64
        The same for the faces between the tile's slice and the next one where both are labelled
        (zero where the next slice is not).
    planes : tuple of int
        Indices of the labelled slices along the slicing axis (axis 0).
    groups : ndarray, shape (n_tiles,), int64
        The position of each tile's slice: adjacent labelled slices share one (the bootstrap
        resamples positions, then tiles within them).
    """

    phases: tuple[str, ...]
    depth: int
    voxel_joint: np.ndarray
    face_joint: np.ndarray
    through_joint: np.ndarray
    planes: tuple[int, ...]
    groups: np.ndarray

    @property
    def n_tiles(self) -> int:
        return int(self.voxel_joint.shape[0])

    @property
    def labelled_voxels(self) -> int:
        return int(self.voxel_joint.sum())

    @property
    def voxels(self) -> np.ndarray:
        """Labelled voxels per phase, shape (2, n_tiles, n_phases): ``[0]`` hand labels, ``[1]``
        segmentation (the same voxels)."""
        return np.stack([self.voxel_joint.sum(axis=1), self.voxel_joint.sum(axis=2)])

    @property
    def faces(self) -> np.ndarray:
        """Unordered face-pair counts along each slice axis, shape (2, n_tiles, 2, n, n): ``[0]``
        hand labels, ``[1]`` segmentation (as :meth:`FacePairCounts.symmetric`)."""
        codes = pair_codes(len(self.phases))
        return np.stack([self.face_joint.sum(axis=-2)[..., codes], self.face_joint.sum(axis=-1)[..., codes]])

    @property
    def through_pairs(self) -> int:
        """Through-slice face pairs counted (between adjacent labelled slices)."""
        return int(self.through_joint.sum())

    def to_dict(self) -> dict:
        """JSON-able form (stored in checkpoints)."""
        return {"phases": list(self.phases), "depth": self.depth, "voxel_joint": self.voxel_joint.tolist(),
                "face_joint": self.face_joint.tolist(), "through_joint": self.through_joint.tolist(),
                "planes": list(self.planes), "groups": self.groups.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping) -> SliceErrors:
        """Inverse of :meth:`to_dict`."""
        if isinstance(data, Mapping) and "voxel_joint" not in data and "voxels" in data:
            raise InputError("slice errors: stored by an earlier electroseg, which kept the hand labels' and the "
                             "segmentation's counts apart; the correction needs them voxel by voxel: measure the "
                             "errors again (retrain, or give hand_labels=)")
        try:
            return cls(tuple(data["phases"]), int(data["depth"]), np.asarray(data["voxel_joint"], np.int64),
                       np.asarray(data["face_joint"], np.int64), np.asarray(data["through_joint"], np.int64),
                       tuple(int(p) for p in data["planes"]), np.asarray(data["groups"], np.int64))
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"slice errors: expected a dict as written by SliceErrors.to_dict, got {err!r}") from None

    def pooled(self, other: SliceErrors) -> SliceErrors:
        """The tiles of both (e.g. the slices of several held-out volumes)."""
        if other.phases != self.phases or other.depth != self.depth:
            raise InputError(f"slice errors: cannot pool phases {list(other.phases)} (depth {other.depth}) "
                             f"with {list(self.phases)} (depth {self.depth})")
        return SliceErrors(self.phases, self.depth, np.concatenate([self.voxel_joint, other.voxel_joint]),
                           np.concatenate([self.face_joint, other.face_joint]),
                           np.concatenate([self.through_joint, other.through_joint]), self.planes + other.planes,
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
    codes = pair_codes(n)
    n_pairs = int(codes.max()) + 1
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
        seg, own = labels[z], hand[z]
        counts_v = _joint_counts(seg[both], own[both], tile[both], n_tiles, n)
        along = []
        for axis in (0, 1):  # a face belongs to the tile of its upper voxel: none is lost at a tile edge
            lower = [slice(None), slice(None)]
            upper = [slice(None), slice(None)]
            lower[axis], upper[axis] = slice(0, -1), slice(1, None)
            lower, upper = tuple(lower), tuple(upper)
            keep = both[lower] & both[upper]
            along.append(_joint_counts(codes[seg[lower][keep], seg[upper][keep]],
                                       codes[own[lower][keep], own[upper][keep]],
                                       tile[upper][keep], n_tiles, n_pairs))
        nxt = labelled[z + 1] & both if z + 1 < labels.shape[0] else None
        between = (np.zeros((n_tiles, n_pairs, n_pairs), np.int64) if nxt is None or not nxt.any()
                   else _joint_counts(codes[seg[nxt], labels[z + 1][nxt]], codes[own[nxt], hand[z + 1][nxt]],
                                      tile[nxt], n_tiles, n_pairs))
        present = counts_v.sum(axis=(1, 2)) > 0              # tiles holding labelled voxels
        voxels.append(counts_v[present])
        faces.append(np.stack(along, axis=1)[present])
        through.append(between[present])
        groups.append(np.full(int(present.sum()), group, np.int64))
    if not voxels:
        return None
    return SliceErrors(phases, depth, np.concatenate(voxels), np.concatenate(faces), np.concatenate(through),
                       tuple(planes), np.concatenate(groups))


def _joint_counts(seg: np.ndarray, hand: np.ndarray, tiles: np.ndarray, n_tiles: int, k: int) -> np.ndarray:
    """Per tile, how often each ``[segmentation class, hand class]`` occurs (classes ``0..k-1``),
    shape (n_tiles, k, k)."""
    code = (tiles.astype(np.int64) * k + seg.astype(np.int64)) * k + hand.astype(np.int64)
    return np.bincount(code, minlength=n_tiles * k * k).reshape(n_tiles, k, k)


# ---- the corrected metrics --------------------------------------------------------------------

def _fraction(voxels: np.ndarray) -> np.ndarray:
    return ratio(voxels, voxels.sum(axis=-1, keepdims=True))


def _conditional(joint: np.ndarray) -> np.ndarray:
    """``P(hand class | segmentation class)`` from joint counts ``(..., k, k)`` (rows: the
    segmentation's class); a class the labelled slices never show keeps its own (identity row)."""
    rows = joint.sum(axis=-1, keepdims=True)
    return np.where(rows > 0, joint / np.where(rows > 0, rows, 1), np.eye(joint.shape[-1]))


def _reassigned(counts: np.ndarray, joint: np.ndarray) -> np.ndarray:
    """The volume's counts per segmentation class ``(k,)`` shared out over the hand classes as on
    the labelled slices, ``(..., k)`` (one per resample of ``joint``)."""
    return np.einsum("k,...kl->...l", counts, _conditional(joint))


def _corrected(volume: dict, phases: tuple[str, ...], depth: int, sums: dict) -> dict[str, tuple]:
    """Corrected metrics from slice counts summed over a set of tiles (leading axes: resamples),
    each as a tuple of readings, the first the estimate. Where the through-slice error was
    measured there is one; else the through-slice faces are read three ways (shared out as the
    in-slice ones; the in-slice error per voxel added to them; the through-slice value equal to
    the corrected in-slice one), and the estimate is their median. ``volume`` holds the whole
    segmentation's counts (axis 0 = slicing, axes 1, 2 = slice axes)."""
    out: dict[str, tuple] = {}
    codes = pair_codes(len(phases))
    fractions = _reassigned(volume["fractions"], sums["voxels"])
    for i, p in enumerate(phases):
        out[f"volume_fraction_{p}"] = (fractions[..., i],)
    across = 1 - depth
    pairs = volume["pairs"]                                   # (3, n_pairs): per axis, the segmentation's faces
    in_slice = [_reassigned(pairs[1 + k], sums["faces"][..., k, :, :])[..., codes] for k in (0, 1)]
    if not volume["slicing_axis"]:
        through = []                                          # a single slice: no faces between slices
    elif sums["measured"]:
        through = [_reassigned(pairs[0], sums["through"])[..., codes]]
    else:                                                     # not measured: two readings from the counts ...
        joint = sums["faces"][..., across, :, :]
        shared = _reassigned(pairs[0], joint)[..., codes]
        error = (joint.sum(axis=-2) - joint.sum(axis=-1))[..., codes]     # hand minus segmentation
        labelled = sums["voxels"].sum(axis=(-2, -1))[..., None, None]
        added = np.maximum(pairs[0][codes] + error / labelled * volume["voxels"], 0.0)
        through = [shared, added, None]                       # ... and None: the value equal to the in-slice one

    def readings(value, in_plane_value) -> tuple:
        found = [in_plane_value if t is None else value(t) for t in through] or [in_plane_value]
        return (found[0],) if len(found) == 1 else (np.median(np.stack(found), axis=0), *found)

    if {"am", "cbd"} <= set(phases):
        i_am, i_cbd = phases.index("am"), phases.index("cbd")
        contacts, surface = am_contacts(in_slice[across], i_am, i_cbd)

        def pooled(t):
            z_contacts, z_surface = am_contacts(t, i_am, i_cbd)
            return ratio(contacts + z_contacts, surface + z_surface)

        found = readings(pooled, ratio(contacts, surface))
        out["pba_pooled"] = found
        if volume.get("pba_pooled") is not None and volume.get("pba_depth_mean") is not None:
            out["pba_depth_mean"] = tuple(np.clip(volume["pba_depth_mean"] + (r - volume["pba_pooled"]), 0.0, 1.0)
                                          for r in found)
    if volume.get("particle_weighted_median") is not None and "am" in phases:
        # a displaced AM boundary scales every particle alike: diameters by the cube root of
        # the AM volume's ratio (square root of the area's in 2-D; spheres grown or shrunk by a
        # voxel come back within 3 %)
        i_am = phases.index("am")
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = (fractions[..., i_am] / volume["fractions"][i_am]) ** (1.0 / volume["ndim"])
        out["particle_volume_weighted_median_um"] = (volume["particle_weighted_median"] * scale,)
    # interfaces: faces along an axis times the face area, per volume, summed over the axes
    area, size = volume["face_area"], volume["volume_um3"]
    density = [area[1 + k] * in_slice[k] / size for k in (0, 1)]
    for i, j in combinations(range(len(phases)), 2):
        in_plane = density[0][..., i, j] + density[1][..., i, j]
        out[f"surface_{phases[i]}-{phases[j]}_per_um"] = readings(
            lambda t, i=i, j=j: in_plane + area[0] * t[..., i, j] / size, in_plane + density[across][..., i, j])
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
    return {"voxels": total(errors.voxel_joint), "faces": total(errors.face_joint),
            "through": total(errors.through_joint), "measured": errors.through_pairs > 0}


def segmentation_intervals(labels: np.ndarray, errors: SliceErrors, *, voxel_size: Sequence[float],
                           pba_pooled: float | None = None, pba_depth_mean: float | None = None,
                           sampling: Mapping | None = None, particle_median_um: float | None = None,
                           particle_weighted_median_um: float | None = None, ignore_value: int = 255,
                           confidence: float = 0.95, n_boot: int = 2000,
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
        width in quadrature. ``(ci_low, ci_high, estimate)``: each side of the estimate added to
        the same side (a skewed interval). Without it, ``total`` is None.
    particle_median_um : float, optional
        The reported particle median diameter, listed with :data:`PARTICLE_NOTE`.
    particle_weighted_median_um : float, optional
        The reported volume-weighted median diameter (D50 by volume), corrected for the AM
        boundary's displacement: times the cube root of the AM fraction shared out over the
        reported one, the square root in 2-D (``particle_volume_weighted_median_um``).
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
    upper = np.triu_indices(len(phases))
    volume = {"fractions": _fraction(voxels), "pairs": sym[:, upper[0], upper[1]].astype(np.float64),
              "face_area": face_areas(sizes3), "volume_um3": volume_um3, "voxels": float(voxels.sum()),
              "slicing_axis": labels.ndim == 3 and labels.shape[0] > 1,
              "pba_pooled": pba_pooled, "pba_depth_mean": pba_depth_mean,
              "particle_weighted_median": particle_weighted_median_um, "ndim": labels.ndim}
    estimate = _corrected(volume, phases, errors.depth, _sums(errors))
    draw = _one_position_weights if transfer else _resample_weights
    weights = draw(errors.groups, int(n_boot), np.random.default_rng(seed))
    samples = _corrected(volume, phases, errors.depth, _sums(errors, weights))
    reported = {f"volume_fraction_{p}": none_if_nan(float(volume["fractions"][i])) for i, p in enumerate(phases)}
    reported.update({"pba_pooled": pba_pooled, "pba_depth_mean": pba_depth_mean,
                     "particle_volume_weighted_median_um": particle_weighted_median_um})
    total_density = (face_areas(sizes3)[:, None, None] * sym).sum(axis=0) / volume_um3
    for i, j in combinations(range(len(phases)), 2):
        reported[f"surface_{phases[i]}-{phases[j]}_per_um"] = none_if_nan(float(total_density[i, j]))
    segmentation: dict = {}
    total: dict | None = {} if sampling is not None else None
    for name, (a, *_) in estimate.items():
        lows, highs = zip(*(percentile_interval(r, confidence) for r in samples[name]))
        lows, highs = [v for v in lows if np.isfinite(v)], [v for v in highs if np.isfinite(v)]
        entry = {"estimate": none_if_nan(float(a)), "ci_low": min(lows) if lows else None,
                 "ci_high": max(highs) if highs else None, "reported": reported.get(name)}
        if None not in (entry["ci_low"], entry["ci_high"], entry["estimate"]):  # the estimate lies inside
            entry["ci_low"], entry["ci_high"] = (min(entry["ci_low"], entry["estimate"]),
                                                 max(entry["ci_high"], entry["estimate"]))
        segmentation[name] = entry
        if total is not None:
            unbounded = name.startswith("surface_") or name == "particle_volume_weighted_median_um"
            total[name] = _combine(entry, sampling.get(name), upper=None if unbounded else 1.0)
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
        through_note = ("not measured (no two adjacent slices labelled): the PBA and interface estimates read the "
                        "through-slice faces three ways (shared out as the in-slice faces, the in-slice error per "
                        "voxel added, the through-slice value equal to the in-slice one), take the median and "
                        "span all three; label two adjacent slices to measure it")
    resampling = ("a prediction interval for this volume, the errors having been measured on other "
                  "volumes: each resample takes one labelled position's error, its tiles resampled"
                  if transfer else "bootstrap over their positions, then tiles within them")
    positions = int(np.unique(errors.groups).size)
    caution = None
    if positions < FEW_POSITIONS:
        caution = (f"the error was measured at {positions} labelled position(s) only: the interval cannot show "
                   "how much it varies from one position to the next (on SegmentPy's real images, two held-out "
                   "slices gave intervals that held the true PBA in 6 of 12 cases); label more slices, spread "
                   "through the stack")
    return {"method": f"the segmentation's voxel and face counts shared out over the hand-labelled classes as on "
                      f"the labelled slices ({resampling}); total: the sub-block sampling half width added in "
                      "quadrature",
            "source": source, "confidence": confidence, "transfer": bool(transfer), "caution": caution,
            "labelled": {"slices": list(errors.planes), "voxels": errors.labelled_voxels,
                         "tiles": errors.n_tiles, "positions": positions},
            "through_slice": through_note, "segmentation": segmentation, "total": total}


def _combine(entry: Mapping, interval, *, upper: float | None = 1.0) -> dict:
    """Estimate ± the segmentation's and the sampling's half widths added in quadrature, kept
    within [0, ``upper``] (fractions and PBA; surfaces have no upper bound).

    ``interval`` is ``(ci_low, ci_high)`` (half its width on either side: intervals of means,
    near symmetric) or ``(ci_low, ci_high, estimate)``, whose sides are added separately (the
    volume-weighted median's bootstrap is skewed: a few large particles hold half the volume)."""
    value, low, high = entry["estimate"], entry["ci_low"], entry["ci_high"]
    if value is None or low is None or high is None:
        return {"estimate": value, "ci_low": None, "ci_high": None}
    down = up = 0.0
    if interval is not None and None not in tuple(interval):
        if len(interval) == 3:
            low_s, high_s, centre = (float(v) for v in interval)
            down, up = max(centre - low_s, 0.0), max(high_s - centre, 0.0)
        else:
            down = up = (float(interval[1]) - float(interval[0])) / 2
    below = float(np.hypot(max(value - low, 0.0), down))
    above = float(np.hypot(max(high - value, 0.0), up))
    high = value + above if upper is None else min(value + above, upper)
    return {"estimate": value, "ci_low": max(value - below, 0.0), "ci_high": high}

"""Compiled kernels of the particle split (numba): basins of a distance map, their saddles,
merging, and the closing that bridges cracks.

Every kernel is one pass over the volume (or over the region graph) and works in place on
compact arrays: a ``uint8`` direction per voxel, ``uint32`` labels, ``float32`` distances. The
module is imported only when a split runs, so importing :mod:`electroseg.analysis` does not
load numba.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.typed import Dict

OUTSIDE = np.uint8(255)
ROOT = np.uint8(254)


def neighbour_offsets(rank: int, sizes) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (k, 3) of the neighbours within ``rank`` (1 = faces) and 1 / their length in µm."""
    offsets = [(dz, dy, dx) for dz in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
               if 0 < abs(dz) + abs(dy) + abs(dx) <= rank]
    offsets = np.asarray(offsets, np.int64)
    length = np.sqrt(((offsets * np.asarray(sizes, np.float64)) ** 2).sum(axis=1))
    return offsets, (1.0 / length).astype(np.float32)


@njit(cache=True, nogil=True, inline="always")
def _steepest_neighbour(distance, offsets, inv_length, z, y, x):
    """Index of the neighbour of (z, y, x) with the steepest ascent of ``distance`` (gradient
    ``(d(q) - d(p)) / |q - p|``), or -1 where no neighbour is higher."""
    nz, ny, nx = distance.shape
    v = distance[z, y, x]
    best = np.float32(0.0)
    best_k = -1
    for k in range(offsets.shape[0]):
        zz = z + offsets[k, 0]
        yy = y + offsets[k, 1]
        xx = x + offsets[k, 2]
        if zz < 0 or zz >= nz or yy < 0 or yy >= ny or xx < 0 or xx >= nx:
            continue
        g = (distance[zz, yy, xx] - v) * inv_length[k]
        if g > best:
            best = g
            best_k = k
    return best_k


@njit(cache=True, nogil=True, parallel=True)
def steepest_ascent(distance, offsets, inv_length, direction):
    """``direction[p]`` = index of the neighbour of steepest ascent of ``distance`` (gradient
    ``(d(q) - d(p)) / |q - p|``), ROOT where no neighbour is higher, OUTSIDE where d = 0.
    Planes in parallel (each voxel's direction depends only on ``distance``)."""
    nz, ny, nx = distance.shape
    for z in prange(nz):
        for y in range(ny):
            for x in range(nx):
                v = distance[z, y, x]
                if v <= 0:
                    direction[z, y, x] = 255
                    continue
                best_k = _steepest_neighbour(distance, offsets, inv_length, z, y, x)
                direction[z, y, x] = 254 if best_k < 0 else best_k


@njit(cache=True, nogil=True, parallel=True)
def descend_labels(direction, flat_offsets, labels, chunks):
    """Give every voxel the label of the root its ascent path ends at (``labels`` holds the
    roots' labels on entry, 0 elsewhere; filled in place).

    ``chunks`` ranges of starting voxels run in parallel. Paths of two chunks may meet; both
    then write the same label (the root's) to the same voxels, so the result does not depend
    on the order, and a path stops early where another has already written its label.
    """
    d = direction.ravel()
    out = labels.ravel()
    size = d.size
    step = (size + chunks - 1) // chunks
    for c in prange(chunks):
        stack = np.empty(4096, np.int64)
        for p in range(c * step, min(size, (c + 1) * step)):
            if out[p] != 0 or d[p] == 255:
                continue
            n = 0
            q = p
            while out[q] == 0:
                if n == stack.size:
                    bigger = np.empty(2 * stack.size, np.int64)
                    bigger[:n] = stack
                    stack = bigger
                stack[n] = q
                n += 1
                q = q + flat_offsets[d[q]]
            label = out[q]
            for i in range(n):
                out[stack[i]] = label


def backward_offsets(offsets: np.ndarray) -> np.ndarray:
    """The offsets (k, 3) that point to voxels earlier in raster (C) order."""
    keep = [k for k, (dz, dy, dx) in enumerate(offsets.tolist())
            if dz < 0 or (dz == 0 and (dy < 0 or (dy == 0 and dx < 0)))]
    return np.ascontiguousarray(offsets[keep])


@njit(cache=True, nogil=True)
def _find(parent, i):
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:  # path compression
        parent[i], i = root, parent[i]
    return root


@njit(cache=True, nogil=True)
def label_roots(direction, backward, labels):
    """Connected components of the ROOT voxels of ``direction``, neighbours given by their
    ``backward`` offsets (:func:`backward_offsets`), numbered 1..n in raster order of each
    component's first voxel (as ``cc3d.connected_components`` numbers them). ``labels``
    (uint32 zeros, same shape) is filled in place; returns n.

    One scan of ``direction``, then union-find over the root voxels alone: the roots are a
    sparse set (about 1 % of the voxels), which cc3d would label in a full pass of its own.
    """
    nz, ny, nx = direction.shape
    parent = np.empty(1024, np.int64)
    where = np.empty(1024, np.int64)  # flat index of every root voxel, raster order
    n_roots = 0
    n = 0
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if direction[z, y, x] != 254:
                    continue
                current = 0
                for k in range(backward.shape[0]):
                    zz = z + backward[k, 0]
                    yy = y + backward[k, 1]
                    xx = x + backward[k, 2]
                    if zz < 0 or yy < 0 or yy >= ny or xx < 0 or xx >= nx or direction[zz, yy, xx] != 254:
                        continue
                    other = _find(parent, np.int64(labels[zz, yy, xx]))
                    if current == 0:
                        current = other
                    elif other != current:  # union: the older (smaller) label is the root
                        lo, hi = min(current, other), max(current, other)
                        parent[hi] = lo
                        current = lo
                if current == 0:
                    n += 1
                    if n == parent.size:
                        grown = np.empty(2 * parent.size, np.int64)
                        grown[:n] = parent[:n]
                        parent = grown
                    parent[n] = n
                    current = n
                labels[z, y, x] = current
                if n_roots == where.size:
                    grown = np.empty(2 * where.size, np.int64)
                    grown[:n_roots] = where[:n_roots]
                    where = grown
                where[n_roots] = (z * ny + y) * nx + x
                n_roots += 1
    # final ids in order of each set's smallest provisional label, which is its first voxel's
    final = np.zeros(n + 1, np.int64)
    count = 0
    for i in range(1, n + 1):
        if _find(parent, i) == i:
            count += 1
            final[i] = count
    flat = labels.ravel()
    for r in range(n_roots):
        p = where[r]
        flat[p] = final[_find(parent, np.int64(flat[p]))]
    return count


@njit(cache=True, nogil=True)
def root_peaks(direction, distance, labels, n_labels):
    """Distance at each label's root (its largest distance), float64 (n_labels + 1,)."""
    peak = np.zeros(n_labels + 1, np.float64)
    d = direction.ravel()
    dist = distance.ravel()
    lab = labels.ravel()
    for p in range(d.size):
        if d[p] == 254:
            if dist[p] > peak[lab[p]]:
                peak[lab[p]] = dist[p]
    return peak


@njit(cache=True, nogil=True)
def label_peaks(labels, distance, n_labels):
    """Largest distance in each label, float64 (n_labels + 1,)."""
    peak = np.zeros(n_labels + 1, np.float64)
    dist = distance.ravel()
    lab = labels.ravel()
    for p in range(lab.size):
        if dist[p] > peak[lab[p]]:
            peak[lab[p]] = dist[p]
    return peak


def face_saddles(labels, distance, threads: int = 1):
    """Face-adjacent label pairs ``a < b`` and their saddle ``max min(d(p), d(q))``, in the
    order a scan of the volume (Z, then Y, then X) first meets them.

    Slabs of planes run in ``threads`` threads (the kernel releases the GIL); each slab sees
    the plane after it for its last plane's +Z faces. The pairs are merged in slab order,
    keeping each pair's first position and largest saddle, so the result is that of one scan
    whatever the number of threads (equal saddles are merged in this order downstream).
    """
    nz = labels.shape[0]
    count = max(1, min(int(threads), nz // 8))
    bounds = np.linspace(0, nz, count + 1).astype(int)
    slabs = [(labels[z0 : min(nz, z1 + 1)], distance[z0 : min(nz, z1 + 1)], z1 - z0)
             for z0, z1 in zip(bounds[:-1], bounds[1:])]
    if count == 1:
        return _face_saddles(*slabs[0])
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(count) as pool:
        parts = list(pool.map(lambda slab: _face_saddles(*slab), slabs))
    keys = np.concatenate([np.asarray(a, np.int64) << 32 | np.asarray(b, np.int64) for a, b, _ in parts])
    values = np.concatenate([v for _, _, v in parts])
    unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    best = np.full(unique.size, -np.inf)
    np.maximum.at(best, inverse, values)
    order = np.argsort(first, kind="stable")
    unique = unique[order]
    return unique >> 32, unique & 0xFFFFFFFF, best[order]


@njit(cache=True, nogil=True)
def _face_saddles(labels, distance, z_stop):
    """`face_saddles` of the planes ``0 .. z_stop - 1`` of a slab (plane ``z_stop``, if the
    slab has it, is only looked at across their +Z faces), in the order first met."""
    nz, ny, nx = labels.shape
    best = Dict.empty(key_type=types.int64, value_type=types.float32)
    last_key = np.int64(-1)
    last_value = np.float32(0.0)
    for z in range(min(nz, z_stop)):
        for y in range(ny):
            for x in range(nx):
                a = labels[z, y, x]
                if a == 0:
                    continue
                v = distance[z, y, x]
                for axis in range(3):
                    zz, yy, xx = z, y, x
                    if axis == 0:
                        zz += 1
                        if zz >= nz:
                            continue
                    elif axis == 1:
                        yy += 1
                        if yy >= ny:
                            continue
                    else:
                        xx += 1
                        if xx >= nx:
                            continue
                    b = labels[zz, yy, xx]
                    if b == 0 or b == a:
                        continue
                    w = distance[zz, yy, xx]
                    s = v if v < w else w
                    lo, hi = (a, b) if a < b else (b, a)
                    key = (np.int64(lo) << 32) | np.int64(hi)
                    if key == last_key:
                        if s > last_value:
                            last_value = s
                            best[key] = s
                        continue
                    if key in best:
                        if s > best[key]:
                            best[key] = s
                    else:
                        best[key] = s
                    last_key = key
                    last_value = best[key]
    n = len(best)
    keys = np.empty(n, np.int64)
    values = np.empty(n, np.float64)
    i = 0
    for key, value in best.items():
        keys[i] = key
        values[i] = value
        i += 1
    return keys >> 32, keys & 0xFFFFFFFF, values


@njit(cache=True, nogil=True)
def union_by_saddle(n_labels, peak, a, b, saddle, ratio, order):
    """Merge pairs in ``order`` while ``saddle >= ratio * min(peak of both sets)``.

    Returns the map label -> new label (0 -> 0, merged sets numbered 1..m in label order).
    """
    parent = np.arange(n_labels + 1)
    top = peak.copy()
    for k in order:
        ra = a[k]
        while parent[ra] != ra:
            parent[ra] = parent[parent[ra]]
            ra = parent[ra]
        rb = b[k]
        while parent[rb] != rb:
            parent[rb] = parent[parent[rb]]
            rb = parent[rb]
        if ra == rb:
            continue
        smaller = top[ra] if top[ra] < top[rb] else top[rb]
        if saddle[k] >= ratio * smaller:
            if ra < rb:
                parent[rb] = ra
                top[ra] = max(top[ra], top[rb])
            else:
                parent[ra] = rb
                top[rb] = max(top[ra], top[rb])
    mapping = np.zeros(n_labels + 1, np.uint32)
    m = 0
    for i in range(1, n_labels + 1):
        r = i
        while parent[r] != r:
            r = parent[r]
        if r == i:
            m += 1
            mapping[i] = m
    for i in range(1, n_labels + 1):
        r = i
        while parent[r] != r:
            r = parent[r]
        mapping[i] = mapping[r]
    return mapping


@njit(cache=True, nogil=True)
def remap_inplace(labels, mapping):
    flat = labels.ravel()
    for p in range(flat.size):
        flat[p] = mapping[flat[p]]


@njit(cache=True, nogil=True)
def grow_by_ascent(labels, distance, offsets, inv_length):
    """Label the unlabelled voxels with ``distance > 0`` by following the steepest ascent of
    ``distance`` to a labelled voxel (left 0 where the ascent ends at a maximum); in place."""
    nz, ny, nx = labels.shape
    path = np.empty((4096, 3), np.int64)
    for z0 in range(nz):
        for y0 in range(ny):
            for x0 in range(nx):
                if labels[z0, y0, x0] != 0 or distance[z0, y0, x0] <= 0:
                    continue
                z, y, x = z0, y0, x0
                n = 0
                label = np.uint32(0)
                while True:
                    if n == path.shape[0]:
                        bigger = np.empty((2 * n, 3), np.int64)
                        bigger[:n] = path
                        path = bigger
                    path[n, 0] = z
                    path[n, 1] = y
                    path[n, 2] = x
                    n += 1
                    best_k = _steepest_neighbour(distance, offsets, inv_length, z, y, x)
                    if best_k < 0:
                        break
                    z += offsets[best_k, 0]
                    y += offsets[best_k, 1]
                    x += offsets[best_k, 2]
                    if labels[z, y, x] != 0:
                        label = labels[z, y, x]
                        break
                for i in range(n):
                    labels[path[i, 0], path[i, 1], path[i, 2]] = label


def ball_offsets(radius: float, sizes) -> np.ndarray:
    """Offsets (k, 3) of the voxels within ``radius`` µm of a voxel (itself excluded)."""
    reach = [int(np.floor(radius / s + 1e-9)) for s in sizes]
    grid = np.stack(np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij"), -1)
    grid = grid.reshape(-1, 3)
    inside = ((grid * np.asarray(sizes)) ** 2).sum(axis=1) <= radius * radius * (1 + 1e-9)
    inside &= np.any(grid != 0, axis=1)
    return grid[inside].astype(np.int64)


@njit(cache=True, nogil=True, inline="always")
def _any_neighbour(array, offsets, z, y, x, value):
    """Whether a neighbour of (z, y, x) within the array, at one of ``offsets``, equals ``value``."""
    nz, ny, nx = array.shape
    for k in range(offsets.shape[0]):
        zz = z + offsets[k, 0]
        yy = y + offsets[k, 1]
        xx = x + offsets[k, 2]
        if zz < 0 or zz >= nz or yy < 0 or yy >= ny or xx < 0 or xx >= nx:
            continue
        if array[zz, yy, xx] == value:
            return True
    return False


@njit(cache=True, nogil=True, parallel=True)
def close_with(mask, offsets):
    """Binary closing of ``mask`` by the neighbourhood ``offsets`` (outside the array counts as
    dilated, as a closing by EDT with black_border=False): a bool array. Planes in parallel."""
    nz, ny, nx = mask.shape
    dilated = mask.copy()
    for z in prange(nz):
        for y in range(ny):
            for x in range(nx):
                if not mask[z, y, x] and _any_neighbour(mask, offsets, z, y, x, True):
                    dilated[z, y, x] = True
    closed = mask.copy()
    for z in prange(nz):
        for y in range(ny):
            for x in range(nx):
                if not mask[z, y, x] and dilated[z, y, x]:
                    closed[z, y, x] = not _any_neighbour(dilated, offsets, z, y, x, False)
    return closed

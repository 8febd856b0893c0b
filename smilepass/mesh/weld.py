"""Vertex welding.

`weld_exact` merges corners with bit-identical coordinates (what an STL reader needs: STL stores three
corners per triangle). It sorts a 64-bit hash of the coordinates packed with the corner number, then
checks that neighbours in the sorted order really are equal, so a hash collision can only leave two
copies unmerged, never merge different points (and `nearby_remap` merges such copies afterwards).

`nearby_remap` closes float-noise cracks: vertices closer than a tolerance (relative to the bounding
box) are merged. A crack always shows as boundary edges, so only vertices on boundary edges are
searched (a grid of tolerance-sized cells over a few thousand points instead of the whole scan). Open3D's
`remove_duplicated_vertices()` merges exact matches only.
"""
from __future__ import annotations

import numpy as np

from .topology import components_from_pairs, mark_new_keys, or_row_numbers

_MULT = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9))
_MIX = np.uint64(0xFF51AFD7ED558CCD)
_CHECK_SLICE = 1 << 18  # points per slice when checking hash groups against the coordinates


def _hash(bits: np.ndarray, word) -> np.ndarray:
    """64-bit hash of each row's three coordinate bit patterns (a slice at a time: its temporaries stay
    small). A double keeps what varies in its top bits (sign, exponent, leading mantissa; round
    coordinates leave the low bits zero) and a multiplication only carries bits upward, so each
    coordinate's top half is folded onto its bottom half first: without that, x * M ^ y kept ~12 bits
    of x and y together and 100,000 corners on 125 distinct points of a grid stayed 27,000 apart."""
    columns = [bits[:, k].astype(np.uint64) for k in range(3)]
    if word is np.uint32:
        h = columns[0] << np.uint64(32)
        h |= columns[1]
    else:
        for c in columns:
            c ^= c >> np.uint64(32)
        h = columns[0] * _MULT[1]
        h ^= columns[1]
    h *= _MULT[0]
    h ^= columns[2]
    h *= _MULT[2]
    h ^= h >> np.uint64(31)
    h *= _MIX
    h ^= h >> np.uint64(29)
    return h


def _as_words(P: np.ndarray):
    """(n, index type, word type, P's coordinates as unsigned words of their own width): bit-identical
    coordinates are equal words."""
    word = np.uint32 if P.dtype == np.float32 else np.uint64
    return len(P), np.int32 if len(P) < 2**31 else np.int64, word, P.view(word)


# Probing rounds of weld_exact's table before it hands over to the sort (a bad hash; never seen).
_MAX_ROUNDS = 32


def weld_exact(P: np.ndarray):
    """(unique_points, inverse, first) with P == unique_points[inverse] and unique_points == P[first],
    numbered by first appearance. Bit-identical coordinates only: -0.0 and 0.0 stay apart here
    (nearby_remap joins them). `inverse` is int32 when it fits. Memory beyond P: about 30 bytes per point.

    A hash table with linear probing, all points at once: each round every point still unplaced looks
    at its slot; the lowest point number claims an empty slot (np.minimum.at), and a point equal to its
    slot's owner joins it, the others move to the next slot. The points of one coordinate triple move
    together, so its owner is its first appearance. A third of the time of sorting the hashes (no sort
    in random order, no check of the groups in hash order, no scatter back: 0.23 against 0.40 s at 1M
    triangles, measured 2026-12-06), and a hash collision costs a probe instead of a split group."""
    n, index_type, word, bits = _as_words(P)
    if n == 0:
        return P.copy(), np.zeros(0, index_type), np.zeros(0, np.int64)
    tbits = max(4, (2 * n - 1).bit_length())  # load factor at most 1/2 (a PLY: every point distinct)
    size = 1 << tbits
    slot_type = np.int32 if tbits < 31 else np.int64
    slot = np.empty(n, slot_type)
    for start in range(0, n, _CHECK_SLICE):
        h = _hash(bits[start:start + _CHECK_SLICE], word)
        h >>= np.uint64(64 - tbits)  # the hash's top bits: the best mixed
        slot[start:start + _CHECK_SLICE] = h
    del h
    empty = np.iinfo(index_type).max
    table = np.full(size, empty, index_type)
    # Round one: every slot is empty, so each is claimed by the lowest point number hashed to it.
    np.minimum.at(table, slot, np.arange(n, dtype=index_type))
    owner = np.take(table, slot)
    # Each point against its slot's owner: whole rows gathered (one 12- or 24-byte record per point,
    # mostly near it in the file), then compared column by column (twice as fast as three gathers).
    # A slice at a time: a whole gathered copy of the points was the peak of the weld's memory.
    bits = np.ascontiguousarray(bits)
    points = bits.view(np.dtype((np.void, 3 * bits.itemsize))).ravel()
    same = np.empty(n, bool)
    for start in range(0, n, _CHECK_SLICE):
        stop = min(start + _CHECK_SLICE, n)
        rows = np.take(points, owner[start:stop]).view(word).reshape(-1, 3)
        part = same[start:stop]
        np.equal(rows[:, 0], bits[start:stop, 0], out=part)
        part &= rows[:, 1] == bits[start:stop, 1]
        part &= rows[:, 2] == bits[start:stop, 2]
    del rows, points
    pending = np.flatnonzero(~same)  # claimed by another point: probe on
    del same
    for _ in range(_MAX_ROUNDS):
        if len(pending) == 0:
            break
        at = np.take(slot, pending) + 1
        at &= size - 1
        slot[pending] = at
        held = np.take(table, at)
        free = held == empty
        np.minimum.at(table, at[free], pending[free].astype(index_type))
        held = np.take(table, at)
        same = np.ones(len(pending), bool)
        for k in range(3):
            column = bits[:, k]
            same &= np.take(column, held) == np.take(column, pending)
        owner[pending[same]] = held[same]
        pending = pending[~same]
    else:
        if len(pending):
            return _weld_sorted(P)
    del table, slot
    first_mask = owner == np.arange(n, dtype=index_type)
    first = np.flatnonzero(first_mask)
    rank = np.cumsum(first_mask, dtype=index_type)
    rank -= 1
    del first_mask
    inverse = np.take(rank, owner)  # owners are mostly near their points in the file: a kind gather
    return np.take(P, first, axis=0), inverse, first


def _weld_sorted(P: np.ndarray):
    """weld_exact by sorting the hashes (its fallback, for n > 0). Memory beyond P: about 20 bytes per
    point."""
    n, index_type, word, bits = _as_words(P)
    h = np.empty(n, np.uint64)
    for start in range(0, n, _CHECK_SLICE):
        h[start:start + _CHECK_SLICE] = _hash(bits[start:start + _CHECK_SLICE], word)
    pbits = max(1, (n - 1).bit_length())
    new = np.empty(n, bool)
    new[0] = True
    if 63 - pbits >= 24:
        # Hash on top, point number below, one in-place sort (np.sort is several times faster than
        # np.argsort here); the point numbers then read off in sorted order.
        h >>= np.uint64(pbits + 1)
        packed = h.view(np.int64)
        packed <<= pbits
        or_row_numbers(packed)
        packed.sort()
        mark_new_keys(packed, pbits, new)
        packed &= (1 << pbits) - 1
        order = packed
    else:  # enormous inputs: plain argsort on the hash
        order = np.argsort(h)
        hs = h[order]
        np.not_equal(hs[1:], hs[:-1], out=new[1:])
        del h, hs
    # Equal hashes must also be equal points: a collision only splits a group (never merges points).
    # Whole points gathered a slice at a time: one cache miss per point instead of one per coordinate
    # (hash order is random), and no sorted copy of a whole coordinate column.
    points = np.ascontiguousarray(bits).view(np.dtype((np.void, 3 * bits.itemsize))).ravel()
    for start in range(1, n, _CHECK_SLICE):
        stop = min(start + _CHECK_SLICE, n)
        rows = np.take(points, order[start - 1:stop]).view(word).reshape(-1, 3)
        for k in range(3):
            new[start:stop] |= rows[1:, k] != rows[:-1, k]
    del points
    # Number the merged points in order of first appearance (a group's first corner is the lowest
    # number in it, because the point number breaks ties in the sort). The file's order is spatially
    # coherent, hash order is random: every later gather over vertices is much kinder to the cache.
    first_of_group = order[new]
    appears = np.zeros(n, bool)
    appears[first_of_group] = True
    rank = np.cumsum(appears, dtype=index_type)
    rank -= 1
    group_id = np.take(rank, first_of_group)  # new number of each group, in hash order
    del rank
    group = np.cumsum(new, dtype=index_type)
    group -= 1
    inverse = np.empty(n, index_type)
    inverse[order] = np.take(group_id, group)
    del group, group_id
    first = np.flatnonzero(appears)
    return np.take(P, first, axis=0), inverse, first


def near_pairs(P: np.ndarray, r: float) -> np.ndarray:
    """(k, 2) index pairs i < j of points closer than r: a grid of r-sized cells, points sorted by cell,
    and each cell matched against itself and its 13 'forward' neighbours with searchsorted."""
    n = len(P)
    if n < 2:
        return np.zeros((0, 2), np.int64)
    P = P.astype(np.float64)
    cell = np.floor((P - P.min(axis=0)) / r).astype(np.int64) + 1  # +1: neighbours stay >= 0
    span = cell.max(axis=0) + 2
    if np.prod(span.astype(float)) >= 2.0**62:  # absurdly small r: fall back to a KD-tree
        # Lazy: the web app imports smilepass.mesh but never gets here, and scipy would add
        # about a third to its start-up (measured: `import smilepass`, then scipy).
        from scipy.spatial import cKDTree

        return cKDTree(P).query_pairs(r=r, output_type="ndarray")
    key = (cell[:, 0] * span[1] + cell[:, 1]) * span[2] + cell[:, 2]
    order = np.argsort(key, kind="stable")
    skey = key[order]
    pairs = []
    offsets = [(dx, dy, dz) for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1)]
    for dx, dy, dz in offsets[13:]:  # (0, 0, 0) and the 13 offsets after it: each cell pair once
        target = skey + (dx * span[1] + dy) * span[2] + dz
        lo = np.searchsorted(skey, target, "left")
        hi = np.searchsorted(skey, target, "right")
        if (dx, dy, dz) == (0, 0, 0):
            lo = np.arange(n) + 1  # same cell: only the points after this one
        count = np.maximum(hi - lo, 0)
        total = int(count.sum())
        if total == 0:
            continue
        i = np.repeat(np.arange(n), count)
        j = np.repeat(lo, count) + np.arange(total) - np.repeat(np.cumsum(count) - count, count)
        pairs.append(np.stack([order[i], order[j]], axis=1))
    if not pairs:
        return np.zeros((0, 2), np.int64)
    pairs = np.concatenate(pairs)
    d = np.linalg.norm(P[pairs[:, 0]] - P[pairs[:, 1]], axis=1)
    return np.sort(pairs[d <= r], axis=1)


def nearby_remap(V: np.ndarray, boundary_vertices: np.ndarray, tolerance: float):
    """Boundary vertices closer than `tolerance` merged: (remap, number of vertices merged away), remap[v]
    the vertex that v becomes, the lowest number of its group (None when nothing is merged). Vertex rows
    stay in place (merged-away rows become unreferenced): the caller renumbers the faces' corners."""
    if len(boundary_vertices) < 2 or tolerance <= 0:
        return None, 0
    pairs = near_pairs(V[boundary_vertices], tolerance)
    if len(pairs) == 0:
        return None, 0
    k = len(boundary_vertices)
    _, labels = components_from_pairs(k, pairs[:, 0], pairs[:, 1])
    # Representative of each group: its lowest vertex number.
    rep = np.full(labels.max() + 1, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(rep, labels, boundary_vertices)
    remap = np.arange(len(V), dtype=np.int64)
    remap[boundary_vertices] = rep[labels]
    merged = int((remap[boundary_vertices] != boundary_vertices).sum())
    return (remap, merged) if merged else (None, 0)


# A file whose faces come in no spatial order (some exporters, or faces shuffled on the way) makes every
# later gather over faces and vertices a cache miss once the arrays outgrow the CPU's cache: at 4M
# triangles a shuffled scan took 1.7x the CPU time of the same scan in order. Below this size the
# arrays mostly fit in cache and renumbering would cost more than it saves. (2026-12-07: from 500k faces a
# shuffled 1M arch gained 6 % of CPU, 2.01 -> 1.89 s, but a 1M scan with 45 % zero-area faces spread over
# it lost 0.7 s in cleaning, 0.52 -> 1.19 s: its faces' order is what the degenerate-heavy cleaning
# counts on; so not lowered.)
REORDER_MIN_FACES = 1_500_000
# ... and only when the median face spans more than this fraction of the vertex numbers (a scan in
# scanning order: a few hundred numbers of millions; a shuffled one: a third of them).
_SPREAD_FRACTION = 0.01
_MORTON_BITS = 10  # per axis: 1024 cells across the scan, a few points per cell at 4M triangles


def _spread_bits(x: np.ndarray) -> np.ndarray:
    """Bits 0..9 of x moved to bits 0, 3, 6, ... 27 (for a 3-D Morton code)."""
    x = x.astype(np.uint32)
    for shift, mask in ((16, 0x030000FF), (8, 0x0300F00F), (4, 0x030C30C3), (2, 0x09249249)):
        x |= x << np.uint32(shift)
        x &= np.uint32(mask)
    return x


def spatial_order(V: np.ndarray, F: np.ndarray):
    """(V, F, vertex order) renumbered so that nearby points and faces get nearby numbers, when F's
    order is incoherent (see REORDER_MIN_FACES); None when it is fine as it is. Vertices are sorted by
    the Morton code of their cell in a 1024^3 grid over the bounding box, faces by their lowest new
    vertex number (ties in file order). V[order] is the new V; the faces keep their corners' order."""
    m, n = len(F), len(V)
    if m < REORDER_MIN_FACES or n < 2:
        return None
    spread = F.max(axis=1) - F.min(axis=1)
    if np.median(spread) <= _SPREAD_FRACTION * n:
        return None
    del spread
    lo = V.min(axis=0).astype(np.float64)
    span = V.max(axis=0).astype(np.float64) - lo
    cells = (1 << _MORTON_BITS) - 1
    # A flat axis (every point in one plane: a file of copies of one facet) is one cell, not a division
    # by nothing.
    scale = np.divide(cells, span, out=np.zeros(3), where=span > 0)
    code = np.zeros(n, np.uint32)
    for axis in range(3):
        cell = ((V[:, axis].astype(np.float64) - lo[axis]) * scale[axis]).astype(np.uint32)
        np.minimum(cell, cells, out=cell)
        code |= _spread_bits(cell) << np.uint32(axis)
    # Code on top, vertex number below: one np.sort gives the order (ties by vertex number).
    pbits = max(1, (n - 1).bit_length())
    packed = code.astype(np.int64)
    del code
    packed <<= pbits
    or_row_numbers(packed)
    packed.sort()
    packed &= (1 << pbits) - 1
    order = packed
    number = np.empty(n, F.dtype)
    number[order] = np.arange(n, dtype=F.dtype)
    F = np.take(number, F)
    del number
    fbits = max(1, (m - 1).bit_length())
    packed = F.min(axis=1).astype(np.int64)
    packed <<= fbits
    or_row_numbers(packed)
    packed.sort()
    packed &= (1 << fbits) - 1
    return np.take(V, order, axis=0), np.take(F, packed, axis=0), order

"""Vertex welding.

`weld_exact` merges corners with bit-identical coordinates (what an STL reader needs: STL stores three
corners per triangle). It sorts a 64-bit hash of the coordinates packed with the corner number, then
checks that neighbours in the sorted order really are equal, so a hash collision can only leave two
copies unmerged, never merge different points (and `weld_nearby` merges such copies afterwards).

`weld_nearby` closes float-noise cracks: vertices closer than a tolerance (relative to the bounding
box) are merged. A crack always shows as boundary edges, so only vertices on boundary edges are
searched (a KD-tree over a few thousand points instead of the whole scan). Open3D's
`remove_duplicated_vertices()` merges exact matches only.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

_MULT = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9))
_MIX = np.uint64(0xFF51AFD7ED558CCD)


def weld_exact(P: np.ndarray):
    """(unique_points, inverse, first) with P == unique_points[inverse] and unique_points == P[first];
    -0.0 and 0.0 are the same point."""
    n = len(P)
    if n == 0:
        return P.copy(), np.zeros(0, np.int64), np.zeros(0, np.int64)
    P = P + P.dtype.type(0)  # a copy in which -0.0 became +0.0
    word = np.uint32 if P.dtype == np.float32 else np.uint64
    bits = P.view(word)
    # 64-bit hash of the three coordinates' bit patterns.
    h = bits[:, 0].astype(np.uint64)
    if word is np.uint32:
        h <<= np.uint64(32)
        h |= bits[:, 1]
    else:
        h *= _MULT[1]
        h ^= bits[:, 1]
    h *= _MULT[0]
    h ^= bits[:, 2]
    h *= _MULT[2]
    h ^= h >> np.uint64(31)
    h *= _MIX
    h ^= h >> np.uint64(29)
    pbits = max(1, (n - 1).bit_length())
    kbits = 63 - pbits
    if kbits >= 24:
        packed = (h >> np.uint64(64 - kbits)).view(np.int64)
        packed <<= pbits
        packed |= np.arange(n, dtype=np.int64)
        del h
        packed.sort()
        order = packed & ((1 << pbits) - 1)
        packed >>= pbits
        key_sorted = packed
    else:  # enormous inputs: plain argsort on the hash
        order = np.argsort(h)
        key_sorted = h[order]
        del h
    Ps = np.take(P, order, axis=0)  # several times faster than P[order] for (n, 3) rows
    new = np.empty(n, bool)
    new[0] = True
    np.not_equal(key_sorted[1:], key_sorted[:-1], out=new[1:])
    del key_sorted
    q = Ps.view(word)
    for k in range(3):  # equal hashes must also be equal points (a collision only splits a group)
        new[1:] |= q[1:, k] != q[:-1, k]
    del q
    group = np.cumsum(new, dtype=np.int64)
    group -= 1
    inverse = np.empty(n, np.int64)
    inverse[order] = group
    del group
    unique_points = Ps[new]
    return unique_points, inverse, order[new]


def weld_nearby(V: np.ndarray, F: np.ndarray, boundary_vertices: np.ndarray, tolerance: float):
    """Merge boundary vertices closer than `tolerance`; returns (new F, number of vertices merged away).
    Vertex rows stay in place (merged-away rows become unreferenced)."""
    if len(boundary_vertices) < 2 or tolerance <= 0:
        return F, 0
    from scipy.spatial import cKDTree

    pts = V[boundary_vertices].astype(np.float64)
    pairs = cKDTree(pts).query_pairs(r=tolerance, output_type="ndarray")
    if len(pairs) == 0:
        return F, 0
    k = len(boundary_vertices)
    graph = sp.coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(k, k))
    _, labels = csgraph.connected_components(graph, directed=True, connection="weak")
    # Representative of each group: its lowest vertex number.
    rep = np.full(labels.max() + 1, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(rep, labels, boundary_vertices)
    remap = np.arange(len(V), dtype=np.int64)
    remap[boundary_vertices] = rep[labels]
    merged = int((remap[boundary_vertices] != boundary_vertices).sum())
    return remap[F].astype(F.dtype), merged

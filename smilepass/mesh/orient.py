"""Consistent winding per connected piece, vectorised.

Faces are nodes, manifold edges are graph edges. One breadth-first search (scipy csgraph) from a
virtual root joined to one face of every piece gives each face a parent; whether a face must be
flipped relative to its parent is read from the two faces' vertex order, and the flips are
accumulated along the tree by pointer jumping (log(depth) numpy passes instead of a Python walk).
Then each piece gets one global choice: closed pieces have positive signed volume (normals point
outward); open pieces (an arch scan) keep the winding that most of their input area had.

(Open3D's `orient_triangles()` is not used: it returns False on non-orientable input after having
flipped part of the mesh in place.)
"""
from __future__ import annotations

import numpy as np

from .topology import Edges, face_cross


def _same_direction(P: np.ndarray, C: np.ndarray) -> np.ndarray:
    """True where faces P[i] and C[i] share an edge walked in the same direction by both."""
    out = np.zeros(len(P), bool)
    for k in range(3):
        pa, pb = P[:, k], P[:, (k + 1) % 3]
        for j in range(3):
            out |= (pa == C[:, j]) & (pb == C[:, (j + 1) % 3])
    return out


def _walked_alike(F: np.ndarray, edges: Edges, h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
    """True where the half-edges h1[i] and h2[i] of one edge walk it the same way. Gathers from one bool
    per half-edge (lower to higher vertex) instead of the tails: at 1M faces 5 ms against 25 ms, the
    int32 tails being four times the bytes for the cache."""
    tails = F.ravel()
    heads = edges._heads if edges._heads is not None and len(edges._heads) == len(tails) else F[:, (1, 2, 0)].ravel()
    up = tails < heads
    return up[h1] == up[h2]  # a[i] with int32 i: np.take converts i to intp first (fresh pages from 512k)


def orient(V: np.ndarray, F: np.ndarray, edges: Edges, piece: np.ndarray, n_pieces: int, areas: np.ndarray,
           known_consistent: bool = False, return_edges: bool = False):
    """Returns (F, flipped_mask, inconsistent_edges_left), and the Edges of the returned F as a fourth
    item with return_edges=True (renumbered once, here, instead of again by the caller). `edges` must
    describe F (edge-manifold), `piece` labels the faces connected through manifold edges
    (0..n_pieces-1), `areas` per face. `known_consistent`: the caller already counted no inconsistent
    edge (skips the parity search)."""
    m = len(F)
    flipped = np.zeros(m, bool)
    if m == 0:
        return (F, flipped, 0, edges) if return_edges else (F, flipped, 0)
    h1 = h2 = None
    if not known_consistent:
        h1, h2 = edges.pairs(only_manifold=True)
        same = _walked_alike(F, edges, h1, h2)

    if not known_consistent and same.any():
        # Lazy: the web app imports smilepass.mesh but never gets here, and scipy would add
        # about a third to its start-up (measured: `import smilepass`, then scipy).
        import scipy.sparse as sp
        from scipy.sparse import csgraph

        f1, f2 = h1 // 3, h2 // 3
        roots = np.unique(piece, return_index=True)[1]
        rows = np.concatenate([f1, np.full(len(roots), m)])
        cols = np.concatenate([f2, roots])
        graph = sp.coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(m + 1, m + 1)).tocsr()
        _, pred = csgraph.breadth_first_order(graph, m, directed=False, return_predecessors=True)
        parent = pred.astype(np.int64)
        parent[m] = m
        parent[parent < 0] = m  # not reached (cannot happen: every piece has a root)
        flip = np.zeros(m + 1, bool)
        child = np.flatnonzero(parent[:m] != m)
        flip[child] = _same_direction(np.take(F, parent[child], axis=0), np.take(F, child, axis=0))
        # Pointer jumping: flip[i] becomes the parity of flips on the path from i to the root.
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            flip ^= flip[parent]  # parity of the path to the parent's parent (flip[root] is False)
            parent = grand
        flipped = flip[:m].copy()

    # One global choice per piece: closed pieces by signed volume, open ones by the input majority.
    bh = edges.boundary_halfedges()
    open_piece = np.bincount(piece[bh // 3], minlength=n_pieces) > 0
    invert = np.zeros(n_pieces, bool)
    if flipped.any():
        flipped_area = np.bincount(piece, weights=areas * flipped, minlength=n_pieces)
        piece_area = np.bincount(piece, weights=areas, minlength=n_pieces)
        invert = flipped_area > 0.5 * piece_area
    if not open_piece.all():
        sel = np.flatnonzero(~open_piece[piece])
        cx, cy, cz = face_cross(V, F[sel])
        a = np.take(V, F[sel, 0], axis=0).astype(np.float64) - V.mean(axis=0)
        volume = (a[:, 0] * cx + a[:, 1] * cy + a[:, 2] * cz) / 6.0  # signed tetrahedron volumes
        volume[flipped[sel]] *= -1
        piece_volume = np.bincount(piece[sel], weights=volume, minlength=n_pieces)
        invert = np.where(open_piece, invert, piece_volume < 0)
    flipped ^= invert[piece]

    if not flipped.any():
        left = 0 if known_consistent else int(same.sum())
        return (F, flipped, left, edges) if return_edges else (F, flipped, left)
    F = F.copy()
    turned = np.flatnonzero(flipped)  # by index: a boolean mask on an (n, 3) array is several times slower
    F[turned, 1], F[turned, 2] = F[turned, 2], F[turned, 1]
    # Half-edges 0 and 2 of a flipped face trade places (the same undirected edges): renumbered once,
    # in the new Edges, whose manifold pairs are then the old pairs renumbered.
    del h1, h2
    new_edges = edges.flipped(F, flipped)
    h1, h2 = new_edges.pairs(only_manifold=True)
    left = int(np.count_nonzero(_walked_alike(F, new_edges, h1, h2)))
    return (F, flipped, left, new_edges) if return_edges else (F, flipped, left)

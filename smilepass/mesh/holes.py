"""Boundary loops and hole filling, vectorised.

Boundary loops are traced without a Python loop: for every boundary half-edge `a -> b` the next one is
found by rotating around `b` through the faces of `b`'s fan (all boundary half-edges at once, one
fan step per iteration), so two holes that touch at a vertex stay two loops. The loops are then the
cycles of that successor permutation (connected components of a graph with one edge per half-edge).

A hole is filled with a fan around a new vertex at the loop's centroid (or one triangle for a
three-edge loop). Each new triangle uses the boundary edge in the direction opposite to its face's,
so the filling is wound like its neighbours. Needs consistently oriented, edge-manifold input.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .topology import Edges, components_from_pairs


@dataclass
class Loops:
    halfedges: np.ndarray  # boundary half-edge ids
    tails: np.ndarray
    heads: np.ndarray
    successor: np.ndarray  # index into halfedges of the next boundary half-edge in the loop, -1 if unknown
    label: np.ndarray  # loop number of each boundary half-edge
    count: int
    edges: np.ndarray  # edges per loop
    perimeter: np.ndarray  # length per loop
    simple: np.ndarray  # bool per loop: a proper cycle visiting each vertex once (can be filled)


def _next_in_face(h: np.ndarray) -> np.ndarray:
    return h - h % 3 + (h % 3 + 1) % 3


def find_loops(V: np.ndarray, F: np.ndarray, edges: Edges, max_fan: int = 256) -> Loops:
    bh = edges.boundary_halfedges()
    nb = len(bh)
    f, k = bh // 3, bh % 3
    tails, heads = F[f, k], F[f, (k + 1) % 3]
    if nb == 0:
        z = np.zeros(0, np.int64)
        return Loops(bh, tails, heads, z, z, 0, z, np.zeros(0), np.zeros(0, bool))
    twin = edges.twins(copy=False)
    by_id = np.argsort(bh)
    sorted_bh = bh[by_id]

    def position(h):
        """Index in bh of each half-edge id in h, -1 where it is not a boundary half-edge."""
        i = np.minimum(np.searchsorted(sorted_bh, h), nb - 1)
        return np.where(sorted_bh[i] == h, by_id[i], -1)

    g = _next_in_face(bh)
    pending = position(g) < 0
    for _ in range(max_fan):
        idx = np.flatnonzero(pending)
        if len(idx) == 0:
            break
        t = twin[g[idx]]
        dead = t < 0
        g[idx[dead]] = -1
        pending[idx[dead]] = False
        alive = idx[~dead]
        g[alive] = _next_in_face(t[~dead])
        pending[alive] = position(g[alive]) < 0
    g[pending] = -1
    ok = g >= 0
    successor = np.full(nb, -1, np.int64)
    successor[ok] = position(g[ok])
    ok &= successor >= 0
    ok[ok] = tails[successor[ok]] == heads[ok]  # the walk must leave from the head vertex
    successor[~ok] = -1
    # A permutation needs every half-edge to be some half-edge's successor exactly once.
    indegree = np.bincount(successor[ok], minlength=nb)

    src = np.flatnonzero(ok)
    count, label = components_from_pairs(nb, src, successor[src])
    n_edges = np.bincount(label, minlength=count)
    lengths = np.linalg.norm((V[heads] - V[tails]).astype(np.float64), axis=1)
    perimeter = np.bincount(label, weights=lengths, minlength=count)

    simple = np.ones(count, bool)
    simple[label[~ok]] = False
    simple[label[indegree != 1]] = False
    # A loop passing twice through one vertex would give its fan a non-manifold spoke.
    lv = np.unique(label.astype(np.int64) * (len(V) + 1) + tails)
    distinct = np.bincount(lv // (len(V) + 1), minlength=count)
    simple &= distinct == n_edges
    simple &= n_edges >= 3
    return Loops(bh, tails, heads, successor, label, int(count), n_edges, perimeter, simple)


def fill(V: np.ndarray, F: np.ndarray, loops: Loops, which: np.ndarray, colors: np.ndarray | None = None):
    """Fill the loops whose numbers are in `which`. Returns (V, F, colors, n_new_faces); new faces are
    appended at the end of F and new vertices at the end of V."""
    if len(which) == 0:
        return V, F, colors, 0
    chosen = np.zeros(loops.count, bool)
    chosen[which] = True
    sel = np.flatnonzero(chosen[loops.label])
    lab = loops.label[sel]
    a, b = loops.tails[sel], loops.heads[sel]

    small = loops.edges[lab] == 3
    new_faces = []
    # Three-edge loops: one triangle (b, a, x) where x is the third corner.
    tri = sel[small]
    if len(tri):
        # one half-edge per loop is enough
        _, first = np.unique(loops.label[tri], return_index=True)
        h = tri[first]
        x = loops.heads[loops.successor[h]]
        new_faces.append(np.stack([loops.heads[h], loops.tails[h], x], axis=1))
    # Larger loops: a fan around a new centroid vertex per loop.
    big = ~small
    new_vertices = np.zeros((0, 3), V.dtype)
    new_colors = None
    if big.any():
        big_loops = np.unique(lab[big])
        slot = np.full(loops.count, -1, np.int64)
        slot[big_loops] = np.arange(len(big_loops))
        s = slot[lab[big]]
        sums = np.zeros((len(big_loops), 3))
        np.add.at(sums, s, V[a[big]].astype(np.float64))
        centroids = sums / np.bincount(s, minlength=len(big_loops))[:, None]
        new_vertices = centroids.astype(V.dtype)
        centre = len(V) + s
        new_faces.append(np.stack([b[big], a[big], centre], axis=1))
        if colors is not None:
            csum = np.zeros((len(big_loops), colors.shape[1]))
            np.add.at(csum, s, colors[a[big]].astype(np.float64))
            new_colors = np.rint(csum / np.bincount(s, minlength=len(big_loops))[:, None]).astype(np.uint8)
    added = np.concatenate(new_faces).astype(F.dtype)
    V = np.concatenate([V, new_vertices]) if len(new_vertices) else V
    if colors is not None and new_colors is not None:
        colors = np.concatenate([colors, new_colors])
    return V, np.concatenate([F, added]), colors, len(added)

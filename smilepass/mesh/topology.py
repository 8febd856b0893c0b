"""Edge topology of a triangle mesh with numpy: no Python loops over triangles.

Half-edge `h = 3 * f + k` of face `f` runs from `F[f, k]` to `F[f, (k + 1) % 3]`. Undirected edges are
found by sorting the half-edges on a packed int64 key (`min * n_vertices + max`); when the key and
the half-edge number fit together in 63 bits (any mesh below ~1M vertices) they are packed into one
integer and sorted with `np.sort`, which is several times faster than `np.argsort` on this hardware.

This replaces Open3D's `is_watertight()` / `is_self_intersecting()` / `get_non_manifold_edges()`
(the first two are O(n^2) in Open3D 0.20 and take minutes on a 1M-triangle scan).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph


def sort_groups(keys: np.ndarray, key_max: int):
    """(order, sorted_keys) for non-negative int64 keys; order is a permutation that sorts them."""
    n = len(keys)
    pbits = max(1, (n - 1).bit_length())
    kbits = max(1, int(key_max).bit_length())
    if kbits + pbits <= 63:
        packed = keys << pbits
        packed |= np.arange(n, dtype=np.int64)
        packed.sort()
        order = packed & ((1 << pbits) - 1)
        packed >>= pbits
        return order, packed
    order = np.argsort(keys)
    return order, np.take(keys, order)


def tails_heads(F: np.ndarray):
    tails = F.ravel()
    heads = F[:, (1, 2, 0)].ravel()
    return tails, heads


class Edges:
    """Undirected edges of a face array, with the half-edges of each edge adjacent in `order`."""

    def __init__(self, F: np.ndarray, n_vertices: int):
        self.n_faces = len(F)
        self.n_vertices = n_vertices
        tails, heads = tails_heads(F)
        lo = np.minimum(tails, heads).astype(np.int64)
        hi = np.maximum(tails, heads).astype(np.int64)
        keys = lo * n_vertices
        keys += hi
        del lo, hi
        self.order, sorted_keys = sort_groups(keys, n_vertices * n_vertices)
        del keys
        new = np.empty(len(sorted_keys), bool)
        if len(new):
            new[0] = True
            np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=new[1:])
        del sorted_keys
        self.starts = np.flatnonzero(new)
        self.counts = np.diff(np.append(self.starts, len(new)))
        self._tails, self._heads = tails, heads
        self._he_edge = None

    def subset(self, keep: np.ndarray, F_kept: np.ndarray) -> "Edges":
        """The Edges of F[keep] (== F_kept) without sorting again: dropping half-edges keeps the order."""
        new_face = np.cumsum(keep) - 1
        f = self.order // 3
        kept = keep[f]
        edge_ids = np.repeat(np.arange(self.n_edges), self.counts)[kept]
        out = Edges.__new__(Edges)
        out.n_faces = int(keep.sum())
        out.n_vertices = self.n_vertices
        out.order = 3 * new_face[f[kept]] + self.order[kept] % 3
        new = np.empty(len(edge_ids), bool)
        if len(new):
            new[0] = True
            np.not_equal(edge_ids[1:], edge_ids[:-1], out=new[1:])
        out.starts = np.flatnonzero(new)
        out.counts = np.diff(np.append(out.starts, len(new)))
        out._tails, out._heads = tails_heads(F_kept)
        out._he_edge = None
        return out

    def flipped(self, F_new: np.ndarray, flipped: np.ndarray) -> "Edges":
        """The Edges after the faces in `flipped` had columns 1 and 2 swapped (same undirected edges:
        half-edges 0 and 2 of a flipped face trade places)."""
        out = Edges.__new__(Edges)
        out.__dict__.update(self.__dict__)
        f, k = self.order // 3, self.order % 3
        swap = flipped[f] & (k != 1)
        order = self.order.copy()
        order[swap] = 3 * f[swap] + 2 - k[swap]
        out.order = order
        out._tails, out._heads = tails_heads(F_new)
        out._he_edge = None
        return out

    @property
    def n_edges(self) -> int:
        return len(self.starts)

    @property
    def he_edge(self) -> np.ndarray:
        """Edge id of every half-edge."""
        if self._he_edge is None:
            he_edge = np.empty(len(self.order), np.int64)
            he_edge[self.order] = np.repeat(np.arange(self.n_edges), self.counts)
            self._he_edge = he_edge
        return self._he_edge

    def boundary_halfedges(self) -> np.ndarray:
        return self.order[self.starts[self.counts == 1]]

    def edge_vertices(self, which: np.ndarray) -> np.ndarray:
        """(k, 2) vertex pairs of the given edge ids."""
        h = self.order[self.starts[which]]
        return np.stack([self._tails[h], self._heads[h]], axis=1)

    def pairs(self, counts_at_least: int = 2, only_manifold: bool = False):
        """Half-edge pairs (h1, h2) that share an edge: consecutive half-edges of each edge."""
        if only_manifold:
            s = self.starts[self.counts == 2]
            return self.order[s], self.order[s + 1]
        same = np.ones(len(self.order), bool)
        same[self.starts] = False  # position i is paired with i-1 when it is not an edge start
        pos = np.flatnonzero(same)
        return self.order[pos - 1], self.order[pos]

    def inconsistent_pairs(self):
        """Manifold edges whose two faces walk them in the same direction (inconsistent winding)."""
        h1, h2 = self.pairs(only_manifold=True)
        same = self._tails[h1] == self._tails[h2]
        return h1, h2, same

    def twins(self) -> np.ndarray:
        """The other half-edge of each manifold edge, -1 for boundary and non-manifold edges."""
        twin = np.full(len(self.order), -1, np.int64)
        h1, h2 = self.pairs(only_manifold=True)
        twin[h1] = h2
        twin[h2] = h1
        return twin


def face_components(n_faces: int, h1: np.ndarray, h2: np.ndarray):
    """(count, labels) of faces connected through the given half-edge pairs (scipy csgraph)."""
    if n_faces == 0:
        return 0, np.zeros(0, np.int64)
    graph = sp.coo_matrix((np.ones(len(h1), np.int8), (h1 // 3, h2 // 3)), shape=(n_faces, n_faces)).tocsr()
    count, labels = csgraph.connected_components(graph, directed=True, connection="weak")
    return count, labels


def manifold_components(edges: "Edges", through_non_manifold: bool = False):
    """(count, labels) of faces connected through manifold edges (and through non-manifold ones when
    asked), numbered 0.. in order of their first face.

    Every half-edge links to the next half-edge of its edge (cyclically; a boundary half-edge links to
    itself), so each face has exactly three links. Components then come from min-label propagation
    with hooking and pointer jumping, all in numpy: about 10 rounds on a scan and 2-3x faster than
    csgraph (which converts the graph to float64 CSR and builds its transpose first). Falls back to
    csgraph on inputs that do not converge quickly."""
    m = edges.n_faces
    if m == 0:
        return 0, np.zeros(0, np.int64)
    n = len(edges.order)
    if through_non_manifold:
        nxt = np.arange(1, n + 1, dtype=np.int64)
        ends = np.append(edges.starts[1:], n) - 1
        nxt[ends] = edges.starts
        partner = np.empty(n, np.int64)
        partner[edges.order] = edges.order[nxt]
        del nxt
    else:
        partner = edges.twins()
        alone = partner < 0
        partner[alone] = np.flatnonzero(alone)
    idx_type = np.int32 if m < 2**31 else np.int64
    nbr = (partner // 3).astype(idx_type).reshape(-1, 3)
    del partner
    label = np.arange(m, dtype=idx_type)
    for _ in range(48):
        new = np.minimum(np.minimum(label, label[nbr[:, 0]]), np.minimum(label[nbr[:, 1]], label[nbr[:, 2]]))
        np.minimum.at(new, label, new)  # hook each root to the smallest label seen in its tree
        while True:
            jumped = new[new]
            if np.array_equal(jumped, new):
                break
            new = jumped
        if np.array_equal(new, label):
            break
        label = new
    else:
        h1, h2 = edges.pairs(only_manifold=not through_non_manifold)
        return face_components(m, h1, h2)
    roots, labels = np.unique(label, return_inverse=True)
    return len(roots), labels


def face_areas(V: np.ndarray, F: np.ndarray) -> np.ndarray:
    cx, cy, cz = face_cross(V, F)
    return 0.5 * np.sqrt(cx * cx + cy * cy + cz * cz)


def face_cross(V: np.ndarray, F: np.ndarray):
    """The three components (float64 arrays) of (b - a) x (c - a) for every face (a, b, c).
    Gathers per coordinate from contiguous columns: several times faster than V[F[:, k]] on (n, 3)."""
    X, Y, Z = (np.ascontiguousarray(V[:, k], dtype=np.float64) for k in range(3))
    i0, i1, i2 = (np.ascontiguousarray(F[:, k]) for k in range(3))
    ax, ay, az = X[i0], Y[i0], Z[i0]
    bx = X[i1]
    bx -= ax
    by = Y[i1]
    by -= ay
    bz = Z[i1]
    bz -= az
    cx = X[i2]
    cx -= ax
    cy = Y[i2]
    cy -= ay
    cz = Z[i2]
    cz -= az
    del ax, ay, az
    nx = by * cz
    nx -= bz * cy
    ny = bz * cx
    ny -= bx * cz
    nz = bx * cy
    nz -= by * cx
    return nx, ny, nz


def duplicate_face_mask(F: np.ndarray, n_vertices: int) -> np.ndarray:
    """True for every face whose vertex set already appeared earlier (either winding)."""
    if len(F) == 0:
        return np.zeros(0, bool)
    bits = max(1, (n_vertices - 1).bit_length())
    if 3 * bits <= 63:
        x, y, z = (F[:, k].astype(np.int64) for k in range(3))
        lo = np.minimum(np.minimum(x, y), z)
        hi = np.maximum(np.maximum(x, y), z)
        mid = x + y + z - lo - hi
        keys = (lo << (2 * bits)) | (mid << bits) | hi
        del x, y, z, lo, mid, hi
        sorted_keys = np.sort(keys)
        repeated = sorted_keys[1:][sorted_keys[1:] == sorted_keys[:-1]]
        mask = np.zeros(len(F), bool)
        if len(repeated) == 0:
            return mask
        candidates = np.flatnonzero(np.isin(keys, repeated))
        _, first = np.unique(keys[candidates], return_index=True)
        mask[candidates] = True
        mask[candidates[first]] = False
        return mask
    _, first = np.unique(np.sort(F, axis=1), axis=0, return_index=True)
    mask = np.ones(len(F), bool)
    mask[first] = False
    return mask


def degenerate_face_mask(F: np.ndarray, areas: np.ndarray, area_epsilon: float) -> np.ndarray:
    repeated = (F[:, 0] == F[:, 1]) | (F[:, 1] == F[:, 2]) | (F[:, 0] == F[:, 2])
    return repeated | (areas <= area_epsilon)


def boundary_vertex_components(edges: Edges) -> int:
    """Number of boundary loops, counted as connected pieces of the boundary edges (loops that touch at
    a vertex count once; used for reports, where winding may still be inconsistent)."""
    b = np.flatnonzero(edges.counts == 1)
    if len(b) == 0:
        return 0
    ev = edges.edge_vertices(b)
    verts, inv = np.unique(ev.ravel(), return_inverse=True)
    inv = inv.reshape(-1, 2)
    graph = sp.coo_matrix((np.ones(len(inv), np.int8), (inv[:, 0], inv[:, 1])), shape=(len(verts), len(verts)))
    count, _ = csgraph.connected_components(graph, directed=True, connection="weak")
    return int(count)


def measure(V: np.ndarray, F: np.ndarray, area_epsilon: float, edges: Edges | None = None,
            areas: np.ndarray | None = None, components: int | None = None):
    """(stats, edges, labels): the numbers the report shows for a mesh, its Edges and, when computed
    here on an edge-manifold mesh, the face component labels (both for the caller to reuse)."""
    m = len(F)
    if edges is None:
        edges = Edges(F, len(V))
    if areas is None:
        areas = face_areas(V, F) if m else np.zeros(0)
    used = np.zeros(len(V), bool)
    used[F.ravel()] = True
    n_used = int(used.sum())
    if n_used:
        pts = V if n_used == len(V) else V[used]
        lo, hi = pts.min(axis=0).astype(np.float64), pts.max(axis=0).astype(np.float64)
        bbox = [float(x) for x in hi - lo]
        del pts
    else:
        bbox = [0.0, 0.0, 0.0]
    repeated = (F[:, 0] == F[:, 1]) | (F[:, 1] == F[:, 2]) | (F[:, 0] == F[:, 2])
    degenerate = int((repeated | (areas <= area_epsilon)).sum())
    boundary_edges = int((edges.counts == 1).sum())
    nm = int((edges.counts > 2).sum())
    labels = None
    if components is None:
        if nm == 0:
            components, labels = manifold_components(edges)
        else:
            components, _ = manifold_components(edges, through_non_manifold=True)
    _, _, same = edges.inconsistent_pairs()
    stats = {
        "vertices": n_used,
        "triangles": int(m),
        "boundary_loops": boundary_vertex_components(edges),
        "boundary_edges": boundary_edges,
        "non_manifold_edges": nm,
        "components": int(components),
        "duplicate_triangles": int(duplicate_face_mask(F, len(V)).sum()),
        "degenerate_triangles": degenerate,
        "inconsistent_edges": int(same.sum()),
        "bbox_mm": bbox,
        "surface_area_mm2": float(areas.sum()),
        "closed": bool(m > 0 and boundary_edges == 0 and nm == 0),
    }
    return stats, edges, labels

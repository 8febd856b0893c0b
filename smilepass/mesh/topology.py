"""Edge topology of a triangle mesh with numpy: no Python loops over triangles.

Half-edge `h = 3 * f + k` of face `f` runs from `F[f, k]` to `F[f, (k + 1) % 3]`. Undirected edges are
found by sorting the half-edges on (min vertex, max vertex) with `sort_by_columns`: the key and the
half-edge number packed into one int64 and sorted with `np.sort`, several times faster than
`np.argsort` here (two radix passes when they do not fit in 63 bits, beyond ~1M vertices).

This replaces Open3D's `is_watertight()` / `is_self_intersecting()` / `get_non_manifold_edges()`
(the first two are O(n^2) in Open3D 0.20 and take minutes on a 1M-triangle scan).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

# Whole-array temporaries of packed int64 keys are the peak of a repair's memory (the key array, the
# columns and one more key-sized array): the two steps below go through the keys in slices instead.
_SLICE = 1 << 18


def or_row_numbers(packed: np.ndarray) -> None:
    """packed |= arange(len(packed)), without an arange as long as packed."""
    for start in range(0, len(packed), _SLICE):
        stop = min(start + _SLICE, len(packed))
        packed[start:stop] |= np.arange(start, stop, dtype=packed.dtype)


def mark_new_keys(packed: np.ndarray, shift: int, new: np.ndarray) -> None:
    """new[i] = True where the key above the low `shift` bits differs from the one before it (i >= 1)."""
    for start in range(1, len(packed), _SLICE):
        stop = min(start + _SLICE, len(packed))
        diff = packed[start:stop] ^ packed[start - 1:stop - 1]
        diff >>= shift
        np.not_equal(diff, 0, out=new[start:stop])


# sort_packed() takes numpy's timsort when at most this share of the keys 64 apart are in descending
# order (a clean arch: none; a file with 45 % of its faces degenerate and spread over it: 43-48 %).
_RUNS_MAX_STRIDE_DESCENTS = 0.1
_RUNS_STRIDE = 64


def sort_packed(packed: np.ndarray) -> None:
    """Sort distinct packed int64 keys in place (the row number under each key makes them distinct, so
    any sort gives the same result). The keys of a mesh whose vertices are numbered in order of
    appearance come in long ascending runs, which numpy's timsort merges in a few linear passes (the
    edges of a clean 1M-triangle arch: 15 ms against 24 ms for the default sort, measured 2026-12-06).
    Faces spread over such a file that do not follow it (copies, needles, squashed faces of an export
    gone wrong; or a shuffled file) cut the runs every few keys, and then timsort is 4-10x slower than
    the default sort (numpy's SIMD quicksort: 1M faces, 45 % degenerate: 145-280 ms against 22-45 ms).
    Which one is told by keys_in_runs()."""
    packed.sort(kind="stable" if keys_in_runs(packed) else None)


def keys_in_runs(keys: np.ndarray) -> bool:
    """Whether the keys come in long ascending runs, told by a sample: the keys _RUNS_STRIDE apart."""
    sample = keys[::_RUNS_STRIDE]
    return np.count_nonzero(sample[1:] < sample[:-1]) <= _RUNS_MAX_STRIDE_DESCENTS * max(1, len(sample) - 1)


def sort_by_columns(cols: list, base: int):
    """(order, new): a permutation sorting rows by the integer columns (first column first, each value
    in 0..base-1) and a flag per sorted position that is True where a new row value starts.

    The point number is packed under the key and the packed integers sorted with np.sort (several
    times faster than np.argsort here). When all columns do not fit in 63 bits with the point number
    (meshes beyond ~1M vertices), it sorts column by column from the last one (LSD radix: each pass
    packs one column over the rank from the previous pass), still with np.sort."""
    n = len(cols[0])
    new = np.empty(n, bool)
    if n == 0:
        return np.zeros(0, np.int64), new
    new[0] = True
    pbits = max(1, (n - 1).bit_length())
    cbits = max(1, (int(base) - 1).bit_length())
    mask = (1 << pbits) - 1
    if len(cols) * cbits + pbits <= 63:
        # The first column widened is the start (not zeros shifted and or-ed: a pass less over the keys).
        packed = cols[0].astype(np.int64)
        for col in cols[1:]:
            packed <<= cbits
            packed |= col
        packed <<= pbits
        or_row_numbers(packed)
        sort_packed(packed)
        mark_new_keys(packed, pbits, new)
        packed &= mask
        return packed, new
    extra = len(cols) * cbits + pbits - 63
    if extra <= _BUCKET_BITS and cbits > extra:
        return _sort_in_buckets(cols, cbits, extra, new)
    if cbits + pbits <= 63:
        order = np.arange(n, dtype=np.int64)
        rank = np.arange(n, dtype=np.int64)
        for col in reversed(cols):
            packed = np.take(col, order).astype(np.int64)
            packed <<= pbits
            packed |= rank
            packed.sort()
            packed &= mask
            order = np.take(order, packed)
        del packed, rank
    else:
        order = np.lexsort(list(reversed(cols)))
    new[1:] = False
    for col in cols:
        sorted_col = np.take(col, order)
        new[1:] |= sorted_col[1:] != sorted_col[:-1]
    return order, new


# Up to 2**_BUCKET_BITS buckets in _sort_in_buckets (one more bit per doubling of the mesh).
_BUCKET_BITS = 8


def _sort_in_buckets(cols: list, cbits: int, extra: int, new: np.ndarray):
    """sort_by_columns when the packed key is `extra` bits too wide for 63 (meshes beyond ~1M vertices):
    the rows are first split by the top `extra` bits of the first column (a stable argsort of a uint8,
    which numpy does by radix: one linear pass), then each bucket is one packed np.sort without those
    bits. Sorting column by column instead (LSD) took two sorts and two random gathers over all the
    rows, the steepest-growing part of a repair (Edges at 4M faces: 3.3 s against 0.22 s at 1M)."""
    n = len(cols[0])
    shift = cbits - extra
    bucket = (cols[0] >> shift).astype(np.uint8)
    by_bucket = np.argsort(bucket, kind="stable")
    # Where each bucket starts, from the buckets in sorted order, looked up as uint8: np.bincount, or
    # np.searchsorted with int64 values, first widens every uint8 to an int64 (at 4M faces 192 MB of
    # fresh pages, 0.2-0.4 s of system time).
    firsts = np.arange(2 ** extra, dtype=np.uint8)
    bounds = np.searchsorted(np.take(bucket, by_bucket), firsts).tolist() + [n]
    del bucket
    low = (1 << shift) - 1
    order = np.empty(n, np.int32 if n < 2**31 else np.int64)  # what Edges keeps: no copy to narrow it
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        if start == stop:
            continue
        rows = by_bucket[start:stop]
        size = stop - start
        pbits = max(1, (size - 1).bit_length())
        packed = np.take(cols[0], rows).astype(np.int64)
        packed &= low
        for col in cols[1:]:
            packed <<= cbits
            packed |= np.take(col, rows)
        packed <<= pbits
        or_row_numbers(packed)
        sort_packed(packed)
        new[start] = True  # the first column's top bits differ from the bucket before
        mark_new_keys(packed, pbits, new[start:stop])
        packed &= (1 << pbits) - 1
        np.take(rows, packed, out=order[start:stop])
    return order, new


def masked(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """values[mask]. numpy's boolean indexing is fast when nearly every entry is set (1.2M with 99 %: 0.7
    against 1.6 ms by index) and several times slower when the mask is mixed (825k with 60 %: 3.7 against
    0.85 ms; 825k with 20 %: 5.2 against 1.1): the edges of a scan with many degenerate faces or copies."""
    if np.count_nonzero(mask) >= 0.9 * len(mask):
        return values[mask]
    return np.take(values, np.flatnonzero(mask))


def tails_heads(F: np.ndarray):
    tails = F.ravel()
    # The head of half-edge h is the tail of h + 1, but for the third of each face (the first's tail):
    # one shifted copy and one strided one (a column gather F[:, (1, 2, 0)] took 7.4 against 1.7 ms
    # at 1M faces; tails_heads runs for every edge sort and after every compaction).
    heads = np.empty_like(tails)
    heads[:-1] = tails[1:]
    heads[2::3] = tails[0::3]
    return tails, heads


class Edges:
    """Undirected edges of a face array, with the half-edges of each edge adjacent in `order`."""

    def __init__(self, F: np.ndarray, n_vertices: int):
        self.n_faces = len(F)
        self.n_vertices = n_vertices
        tails, heads = tails_heads(F)
        order, new = sort_by_columns([np.minimum(tails, heads), np.maximum(tails, heads)], n_vertices)
        # int32 half-edge numbers when they fit: half the memory, and every later gather is faster.
        index_type = np.int32 if len(order) < 2**31 else np.int64
        self.order = order.astype(index_type, copy=False)
        del order
        self.starts = np.flatnonzero(new).astype(index_type)
        del new
        self.counts = np.diff(np.append(self.starts, len(self.order))).astype(np.int32)
        self._tails, self._heads = tails, heads
        self._he_edge = None
        self._twins = None
        self._manifold_pairs = None  # (h1, h2) of the manifold edges, cached: measure(), twins(), orient()

    def flipped(self, F_new: np.ndarray, flipped: np.ndarray) -> Edges:
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
        out._twins = None
        out._manifold_pairs = None
        return out

    def rewind(self, F: np.ndarray, faces: np.ndarray, old_rows: np.ndarray, known: tuple | None = None):
        """In place: the faces numbered `faces` of F (whose tails these are) were given other rows of the
        same three vertices than old_rows (another winding or rotation), so their half-edges stand for
        the same undirected edges in other slots. Only those half-edges are renumbered (a new sort would
        cost the whole sort); every half-edge keeps its face, so the grouping by face stays as it was.
        Returns the positions in `order` of the faces' half-edges and their edge ids; `known`: those
        (per half-edge 3 * face + k, in the faces' order) when the caller has them, a position -1 where
        not (looked for here)."""
        new_rows = np.take(F, faces, axis=0)
        # Old slot k is the edge opposite corner k + 2; in the new row that corner sits at j, and the
        # edge opposite it is slot j + 1.
        slot_of = np.empty((len(faces), 3), np.int64)
        for k in range(3):
            opposite = old_rows[:, (k + 2) % 3]
            j = np.where(new_rows[:, 0] == opposite, 0, np.where(new_rows[:, 1] == opposite, 1, 2))
            slot_of[:, k] = (j + 1) % 3
        halfedges = (3 * np.asarray(faces, np.int64)[:, None] + np.arange(3)).ravel()
        if known is None:
            at, edge = self._positions(halfedges)
        else:
            at, edge = known
            unknown = np.flatnonzero(at < 0)
            if len(unknown):
                at = at.copy()
                at[unknown] = self._positions(np.take(halfedges, unknown))[0]
        self.order[at] = (halfedges - halfedges % 3 + slot_of.ravel()).astype(self.order.dtype)
        if self._heads is not None and len(self._heads) == 3 * len(F):
            self._heads.reshape(-1, 3)[faces] = new_rows[:, (1, 2, 0)]
        self._tails = F.ravel()
        if self._heads is None or len(self._heads) != len(self._tails):
            self._heads = tails_heads(F)[1]
        self._he_edge = self._twins = self._manifold_pairs = None
        return at, edge

    def walked_alike_at(self, at: np.ndarray, edge: np.ndarray) -> bool:
        """Whether any two-face edge among `edge`, through the positions `at` of `order`, has both faces
        walking it the same way (an inconsistent winding)."""
        pair = np.take(self.counts, edge) == 2
        at, edge = at[pair], edge[pair]
        start = np.take(self.starts, edge)
        twin = np.where(at == start, at + 1, at - 1)
        h1, h2 = np.take(self.order, at), np.take(self.order, twin)
        return bool(np.any(np.take(self._tails, h1) == np.take(self._tails, h2)))

    def _positions(self, halfedges: np.ndarray):
        """(positions, edge ids) of these half-edges in `order`: from their edges' starts when the edge
        ids are at hand and the edges are short, else from one pass over `order`."""
        edge = None
        if self._he_edge is not None and len(halfedges):
            edge = np.take(self._he_edge, halfedges)
            if int(np.take(self.counts, edge).max()) <= 8:
                at = np.take(self.starts, edge).astype(np.int64)
                # After the first look only the misses are looked at again (the others are found).
                miss = np.flatnonzero(np.take(self.order, at) != halfedges)
                for _ in range(8):
                    if len(miss) == 0:
                        return at, edge
                    at[miss] += 1
                    miss = miss[np.take(self.order, at[miss]) != halfedges[miss]]
        inverse = np.empty(len(self.order), np.int64)
        inverse[self.order] = np.arange(len(self.order))
        at = np.take(inverse, halfedges)
        if edge is None:
            edge = np.searchsorted(self.starts, at, side="right") - 1
        return at, edge

    def slim(self) -> Edges:
        """Drop what only the vertex pairs need (heads, twins, edge ids): the grouping of half-edges
        into edges (order, starts, counts) stays, e.g. for components_through() later."""
        self._heads = self._he_edge = self._twins = self._manifold_pairs = None
        return self

    @property
    def n_edges(self) -> int:
        return len(self.starts)

    @property
    def he_edge(self) -> np.ndarray:
        """Edge id of every half-edge."""
        if self._he_edge is None:
            # A running count of the edge starts, scattered to the half-edges (np.repeat of the edge
            # numbers by their counts took three times as long).
            edge_of = np.zeros(len(self.order), np.int32 if self.n_edges < 2**31 else np.int64)
            edge_of[self.starts[1:]] = 1
            np.cumsum(edge_of, out=edge_of)
            he_edge = np.empty_like(edge_of)
            he_edge[self.order] = edge_of
            self._he_edge = he_edge
        return self._he_edge

    def boundary_halfedges(self) -> np.ndarray:
        return self.order[self.starts[self.counts == 1]]

    def edge_vertices(self, which: np.ndarray) -> np.ndarray:
        """(k, 2) vertex pairs of the given edge ids."""
        h = self.order[self.starts[which]]
        return np.stack([self._tails[h], self._heads[h]], axis=1)

    def pairs(self, only_manifold: bool = False):
        """Half-edge pairs (h1, h2) that share an edge: consecutive half-edges of each edge."""
        if only_manifold:
            if self._manifold_pairs is None:
                s = masked(self.starts, self.counts == 2)
                self._manifold_pairs = self.order[s], self.order[s + 1]
            return self._manifold_pairs
        same = np.ones(len(self.order), bool)
        same[self.starts] = False  # position i is paired with i-1 when it is not an edge start
        pos = np.flatnonzero(same)
        return self.order[pos - 1], self.order[pos]

    def inconsistent_pairs(self):
        """Manifold edges whose two faces walk them in the same direction (inconsistent winding)."""
        h1, h2 = self.pairs(only_manifold=True)
        # Same tail <=> same direction (from the lower vertex or not): gathered from a bool per
        # half-edge (3 MB at 1M faces) rather than from the int32 tails (12 MB), kinder to the cache.
        up = self._tails < self._heads
        same = up[h1] == up[h2]
        return h1, h2, same

    def twins(self, copy: bool = True) -> np.ndarray:
        """The other half-edge of each manifold edge, -1 for boundary and non-manifold edges (cached;
        a copy the caller may modify unless copy=False)."""
        if self._twins is None:
            twin = np.full(len(self.order), -1, self.order.dtype)
            h1, h2 = self.pairs(only_manifold=True)
            twin[h1] = h2
            twin[h2] = h1
            self._twins = twin
        return self._twins.copy() if copy else self._twins


def face_components(n_faces: int, h1: np.ndarray, h2: np.ndarray):
    """(count, labels) of faces connected through the given half-edge pairs (scipy csgraph)."""
    return graph_components(n_faces, h1 // 3, h2 // 3)


def graph_components(n: int, a: np.ndarray, b: np.ndarray):
    """(count, labels) of the graph on nodes 0..n-1 with the links a[i]-b[i] (scipy csgraph)."""
    # Lazy: the web app imports smilepass.mesh but never gets here, and scipy would add
    # about a third to its start-up (measured: `import smilepass`, then scipy).
    import scipy.sparse as sp
    from scipy.sparse import csgraph

    if n == 0:
        return 0, np.zeros(0, np.int64)
    graph = sp.coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n)).tocsr()
    count, labels = csgraph.connected_components(graph, directed=True, connection="weak")
    return count, labels


def _jump_to_roots(parent: np.ndarray) -> np.ndarray:
    """Pointer jumping: follow parent links until every node points straight at its root. May return
    `parent`. Indexing with the int32 parents themselves: np.take converts them to intp first, a[i]
    does not (550k nodes: 0.68 against 1.36-1.42 ms a jump, with or without an out= buffer); a new
    array a jump (the cleaning takes arrays below 4 MiB from the heap, heap.py, so no fresh pages)."""
    while True:
        jumped = parent[parent]
        if np.array_equal(jumped, parent):
            return parent
        parent = jumped


def components_from_pairs(n: int, a: np.ndarray, b: np.ndarray):
    """(count, labels 0..count-1 in order of first node) of an undirected graph given as an edge list.

    Hooking and pointer jumping in numpy (Shiloach-Vishkin style): a few rounds for the graphs used
    here (boundary loops, welded vertex groups), and no scipy import in the common path."""
    label = np.arange(n, dtype=np.int64)
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    if n == 0 or len(a) == 0:
        return n, label
    for _ in range(64):
        la, lb = label[a], label[b]
        low = np.minimum(la, lb)
        new = label.copy()
        np.minimum.at(new, la, low)  # hook both roots of every edge to the smaller one
        np.minimum.at(new, lb, low)
        new = _jump_to_roots(new)
        if np.array_equal(new, label):
            break
        label = new
        if np.array_equal(label[a], label[b]):  # every edge inside one tree: the next round changes nothing
            break
    else:
        return face_components(n, 3 * a, 3 * b)
    is_root = label == np.arange(n)
    number = np.cumsum(is_root) - 1
    return int(is_root.sum()), number[label]


# An edge with more half-edges than this is left out of the ring links of manifold_components() and
# joined afterwards: a label needs about one round per face to travel round a ring.
_RING_MAX = 8


def manifold_components(edges: Edges, through_non_manifold: bool = False):
    """(count, labels) of faces connected through manifold edges (and through non-manifold ones when
    asked), numbered 0.. in order of their first face.

    Every half-edge links to the next half-edge of its edge (cyclically; a boundary half-edge links to
    itself), so each face has exactly three links. Components then come from min-label propagation
    with hooking and pointer jumping, all in numpy (two rounds on a scan in spatial order; through
    manifold edges, the trees two rounds leave are then joined by smallest_linked()), faster than
    csgraph (which converts the graph to float64 CSR and builds its transpose first). Falls back to
    csgraph on inputs that do not converge quickly. Edges shared by more than _RING_MAX faces (a heap
    of copies of one triangle) join the components found without them afterwards, as a small graph."""
    m = edges.n_faces
    if m == 0:
        return 0, np.zeros(0, np.int64)
    n = len(edges.order)
    crowded = None
    if through_non_manifold:
        # Half-edge numbers in the edges' own type (int32 below 2**31): at 4M faces two int64 arrays
        # over every half-edge were 384 MB of fresh pages.
        nxt = np.arange(1, n + 1, dtype=edges.order.dtype)
        ends = np.append(edges.starts[1:], n) - 1
        nxt[ends] = edges.starts
        crowded = np.flatnonzero(edges.counts > _RING_MAX)
        if len(crowded):
            in_crowded = np.repeat(edges.counts > _RING_MAX, edges.counts)
            nxt[in_crowded] = np.flatnonzero(in_crowded)  # out of the ring: linked to itself
        partner = np.empty(n, edges.order.dtype)
        partner[edges.order] = edges.order[nxt]
        del nxt
    else:
        partner = edges.twins()
        alone = partner < 0
        partner[alone] = np.flatnonzero(alone)
    idx_type = np.int32 if m < 2**31 else np.int64
    partner //= 3  # in place: partner is ours (a copy of the twins, or made above)
    nbr = partner.astype(idx_type, copy=False).reshape(-1, 3)
    del partner
    label = None  # each face its own label: the first round reads the neighbours' numbers directly
    for round_number in range(48):
        if label is None:
            label = np.arange(m, dtype=idx_type)
            new = np.minimum(np.minimum(label, nbr[:, 0]), np.minimum(nbr[:, 1], nbr[:, 2]))
        else:
            new = np.minimum(np.minimum(label, label[nbr[:, 0]]), np.minimum(label[nbr[:, 1]], label[nbr[:, 2]]))
            np.minimum.at(new, label, new)  # hook each root to the smallest label seen in its tree
        new = _jump_to_roots(new)
        if np.array_equal(new, label):
            break
        label = new
        if not label.any():  # every face at face 0: one piece, nothing left to join (a round saved)
            break
        if round_number == 1 and not through_non_manifold:
            # Two rounds settle a scan in spatial order. Faces that are not (copies kept where they
            # were written, a shuffled file) leave a tree per local minimum of the numbering and took
            # 8 rounds over every face; the trees left are joined instead through the manifold edges
            # between them, the links shrinking round by round (smallest_linked). The same roots
            # (each component's smallest face): 550k faces of a scan of 45 % copies 55 -> 31 ms CPU,
            # a shuffled 1M damaged arch 160 -> 90-100.
            h1, h2 = edges.pairs(only_manifold=True)
            a, b = label[h1 // 3], label[h2 // 3]
            apart = np.flatnonzero(a != b)
            root = smallest_linked(m, np.take(a, apart), np.take(b, apart))
            del a, b, apart
            if root is None:
                return face_components(m, h1, h2)
            label = np.take(root.astype(idx_type, copy=False), label)
            break
    else:
        h1, h2 = edges.pairs(only_manifold=not through_non_manifold)
        return face_components(m, h1, h2)
    is_root = label == np.arange(m, dtype=label.dtype)  # every label is now its tree's root
    number = np.cumsum(is_root, dtype=label.dtype)  # labels in the faces' index type (int32: half the memory)
    number -= 1
    count, labels = int(is_root.sum()), number[label]
    if crowded is None or len(crowded) == 0:
        return count, labels
    # Join the pieces through the crowded edges: every face on one links to the edge's first face.
    counts = edges.counts[crowded]
    first = np.repeat(edges.starts[crowded], counts)
    position = first + np.arange(len(first)) - np.repeat(np.cumsum(counts) - counts, counts)
    a = labels[edges.order[first] // 3]
    b = labels[edges.order[position] // 3]
    count, joined = components_from_pairs(count, a, b)  # numbered by first piece: by first face still
    return count, joined[labels]


def components_through(edges: Edges, node: np.ndarray, n_nodes: int) -> int:
    """Number of components of the faces of `edges` connected through any shared edge (what
    manifold_components(edges, through_non_manifold=True) counts), when the faces are already grouped
    into `n_nodes` nodes (`node` per face) known to be connected: e.g. the pieces of the same faces with
    some removed. Consecutive half-edges of an edge link their nodes, and only links between different
    nodes go into the graph."""
    if len(edges.order) == 0:
        return int(n_nodes)
    # Node of each half-edge, in edge order; a[i] with int32 i (np.take converts i to intp first: 24 MB of
    # fresh pages for 3M half-edges, 8.8 against 5.4 ms).
    at = node[edges.order // 3]
    # Only edges whose faces lie in different nodes link anything: each half-edge to the one before it
    # on its edge when their nodes differ (a chain along the edge joins what a star would; no reduceat
    # per edge, which took 4-5 ms each for the smallest and largest node at 600k half-edges).
    differ = at[1:] != at[:-1]
    differ[edges.starts[1:] - 1] = False  # the next position starts another edge
    pos = np.flatnonzero(differ)
    del differ
    first, second = at[pos], at[pos + 1]
    centre, other = np.minimum(first, second), np.maximum(first, second)
    del first, second
    # Usually one hook settles it (every removed face lies on an edge of a kept piece): each node
    # joins the smallest node it is linked to from above; when every link then joins equal labels,
    # those are the components. The labels in the nodes' own type: ufunc.at with values of another
    # type takes numpy's slow casting path (measured: 15-30x slower).
    label = np.arange(n_nodes, dtype=centre.dtype)
    np.minimum.at(label, other, centre)
    label = _jump_to_roots(label)
    roots = int(np.count_nonzero(label == np.arange(n_nodes, dtype=label.dtype)))
    # The links whose ends the hook left in different trees (a removed face linked only to a removed
    # face of a higher number: squashed faces sharing a repeated corner) join those trees: a graph on
    # their roots alone, usually small, instead of hooking rounds over every node.
    centre, other = np.take(label, centre), np.take(label, other)
    apart = np.flatnonzero(centre != other)
    if len(apart) == 0:
        return roots
    ends, joined = np.unique(np.concatenate([centre[apart], other[apart]]), return_inverse=True)
    count, _ = components_from_pairs(len(ends), joined[:len(apart)], joined[len(apart):])
    return roots - len(ends) + int(count)


def face_areas(V: np.ndarray, F: np.ndarray) -> np.ndarray:
    cx, cy, cz = face_cross(V, F)
    return 0.5 * np.sqrt(cx * cx + cy * cy + cz * cz)


def _edge_vectors(V: np.ndarray, F: np.ndarray, dtype):
    """b - a and c - a of every face (a, b, c), per coordinate. Gathers from contiguous columns:
    several times faster than V[F[:, k]] on an (n, 3) array."""
    cols = [np.ascontiguousarray(V[:, k], dtype=dtype) for k in range(3)]
    i0, i1, i2 = (np.ascontiguousarray(F[:, k]) for k in range(3))
    b, c = [], []
    for X in cols:
        a = X[i0]
        b.append(X[i1] - a)
        c.append(X[i2] - a)
    return b, c


def _cross(b, c):
    nx = b[1] * c[2]
    nx -= b[2] * c[1]
    ny = b[2] * c[0]
    ny -= b[0] * c[2]
    nz = b[0] * c[1]
    nz -= b[1] * c[0]
    return nx, ny, nz


def face_cross(V: np.ndarray, F: np.ndarray, dtype=np.float64):
    """The three components of (b - a) x (c - a) for every face (a, b, c)."""
    return _cross(*_edge_vectors(V, F, dtype))


def face_shape(V: np.ndarray, F: np.ndarray, min_height: float):
    """(areas float64, thin): thin marks triangles whose height over their longest edge is at most
    min_height (no area to speak of: needles, and slivers whose corner lies on the opposite edge).
    Computed in float32 (twice as fast; relative error ~1e-7 of an edge, far below min_height)."""
    b, c = _edge_vectors(V, F, np.float32)
    nx, ny, nz = _cross(b, c)
    nx *= nx
    ny *= ny
    nz *= nz
    nx += ny
    nx += nz
    twice_area = np.sqrt(nx)
    del nx, ny, nz
    longest = b[0] * b[0] + b[1] * b[1] + b[2] * b[2]
    np.maximum(longest, c[0] * c[0] + c[1] * c[1] + c[2] * c[2], out=longest)
    for k in range(3):
        c[k] -= b[k]
    np.maximum(longest, c[0] * c[0] + c[1] * c[1] + c[2] * c[2], out=longest)
    thin = twice_area <= np.float32(min_height) * np.sqrt(longest)
    return 0.5 * twice_area.astype(np.float64), thin


_KEY_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplying by it is a bijection of 64-bit words


def duplicate_face_mask(F: np.ndarray, n_vertices: int, with_first: bool = False):
    """True for every face whose vertex set already appeared earlier (either winding): the first of
    each set is kept. Sorts packed integer keys (one plain sort when there is no copy at all, which is
    the common case); no np.unique, no Python loop. with_first=True returns (mask, first): the face
    kept of each face's set (None when there is no copy)."""
    m = len(F)
    mask = np.zeros(m, bool)
    if m == 0:
        return (mask, None) if with_first else mask
    x, y, z = F[:, 0], F[:, 1], F[:, 2]
    bits = max(1, (n_vertices - 1).bit_length())
    if 3 * bits <= 63:
        lo = np.minimum(np.minimum(x, y), z).astype(np.int64)
        hi = np.maximum(np.maximum(x, y), z).astype(np.int64)
        keys = x.astype(np.int64)  # becomes the middle one: x + y + z - lo - hi
        keys += y
        keys += z
        keys -= lo
        keys -= hi
        keys <<= bits
        lo <<= 2 * bits
        keys |= lo
        keys |= hi
        # Faces in spatial order (vertices numbered by appearance, as weld_exact() numbers them) have
        # keys in long ascending runs, which a stable argsort merges in a few linear passes: 8 ms on a
        # clean 1M-triangle arch against 65-130 ms for the mixed sort below (measured 2026-12-06). Keys
        # in no order (a shuffled file) would take it 3x longer than that sort: few descents only.
        in_runs = np.count_nonzero(lo[1:] < lo[:-1]) <= _RUNS_MAX_DESCENTS * m
        del lo, hi
        if in_runs:
            order = np.argsort(keys, kind="stable")
            sorted_keys = np.take(keys, order)
            new = np.empty(m, bool)
            new[0] = True
            np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=new[1:])
            del sorted_keys
            if new.all():
                return (mask, None) if with_first else mask
            return _copies_from_runs(order, new, mask, with_first)
        # The key's top bits after a bijective mix, with the face number below them, in one np.sort:
        # faces of one set end up adjacent, by face number (no np.argsort, 3x slower than np.sort).
        # Two sets whose truncated mixes collide share a run: then the plain argsort below.
        pbits = max(1, (m - 1).bit_length())
        mixed = keys.view(np.uint64) * _KEY_MULT
        mixed ^= mixed >> np.uint64(29)
        mixed >>= np.uint64(pbits + 1)
        packed = mixed.view(np.int64)
        del mixed
        packed <<= pbits
        packed |= np.arange(m, dtype=np.int64)
        packed.sort()
        new = np.empty(m, bool)
        new[0] = True
        diff = packed[1:] ^ packed[:-1]
        diff >>= pbits
        np.not_equal(diff, 0, out=new[1:])
        del diff
        if new.all():
            return (mask, None) if with_first else mask
        packed &= (1 << pbits) - 1
        order = packed
        # Equal keys always share a run; a collision can only put different keys in one. So only the
        # faces taken for copies are checked against the face before them (5 % of a 1M-face scan
        # instead of a gather of every key); with the first faces wanted, against their run's first
        # face, which is found anyway (a run of equal keys is equal to its start: two gathers of the
        # copies' positions fewer, 450k copies of a 1M-face scan -7 ms).
        if with_first:
            copy_at, copies, start_at = _run_starts(order, new)
            firsts = np.take(order, start_at)
            if np.array_equal(np.take(keys, copies), np.take(keys, firsts)):
                return _copies_from_starts(copies, firsts, mask)
        else:
            repeat = np.flatnonzero(~new)
            if np.array_equal(np.take(keys, np.take(order, repeat)), np.take(keys, np.take(order, repeat - 1))):
                return _copies_from_runs(order, new, mask, with_first)
        order = np.argsort(keys)
        sorted_keys = keys[order]
        np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=new[1:])
        del keys, sorted_keys
    else:
        lo, hi = np.minimum(np.minimum(x, y), z), np.maximum(np.maximum(x, y), z)
        mid = x.astype(np.int64) + y + z - lo - hi
        order, new = sort_by_columns([lo, mid, hi], n_vertices)
        del lo, mid, hi
    # Every face of a set is marked, then the first face of each set (the lowest number) unmarked.
    group = np.cumsum(new, dtype=np.int64)
    group -= 1
    first = np.full(int(group[-1]) + 1, m, np.int64)
    np.minimum.at(first, group, order)
    repeat = ~new
    repeat[:-1] |= ~new[1:]  # the start of a set that has a second face
    mask[order[repeat]] = True
    mask[first[group[repeat]]] = False
    if not with_first:
        return mask
    first_of = np.arange(m, dtype=np.int64)
    first_of[order[repeat]] = first[group[repeat]]
    return mask, first_of


# duplicate_face_mask() sorts stably when at most this fraction of the faces has a lower smallest
# vertex than the face before (a clean arch: 0.2 %; a shuffled file: 50 %).
_RUNS_MAX_DESCENTS = 0.05


def _copies_from_runs(order: np.ndarray, new: np.ndarray, mask: np.ndarray, with_first: bool):
    """duplicate_face_mask's result from an order that puts each set's faces together in face number
    order (`new`: where a set starts): the first face of a set is where its run starts. Only the copies
    are written (a face that starts its set is its own first face): scatters over the faces in sorted
    order, at random places when the keys were in no order, cost a pass over every face each (1M faces
    of which 45 % copies 10.1 -> 9.5 ms, with 5 % copies 7.1-7.6 -> 5.9)."""
    if not with_first:
        mask[np.take(order, np.flatnonzero(~new))] = True
        return mask
    _, copies, start_at = _run_starts(order, new)
    return _copies_from_starts(copies, np.take(order, start_at), mask)


def _copies_from_starts(copies: np.ndarray, firsts: np.ndarray, mask: np.ndarray):
    """(mask, first_of) from the copies and their sets' first faces. first_of in int32 below 2**31
    faces: at 1M faces 4 MB, under numpy's huge-page size, from the heap instead of fresh pages."""
    mask[copies] = True
    first_of = np.arange(len(mask), dtype=np.int32 if len(mask) < 2**31 else np.int64)
    first_of[copies] = firsts
    return mask, first_of


def _run_starts(order: np.ndarray, new: np.ndarray):
    """(sorted positions of the copies, the copies' face numbers, the sorted position where each copy's
    run starts) for an order that puts each set's faces together (`new`: where a set starts)."""
    copy_at = np.flatnonzero(~new)
    copies = np.take(order, copy_at)
    # Where each copy's run starts: stepped back from the copy while runs are short (a copy or two
    # after its first face, the usual: 1M faces with 5 % copies 5.7 -> 1.8 ms, with 45 % 9.5 -> 6.3),
    # else a running maximum of the starts over every position (a heap of copies of one facet is one
    # run: half the copies still stepping back after a step, or too many steps). After the first step
    # only the copies that stepped back are looked at again (the others are at their start: sets of
    # copies of random faces, up to 7 a set, took 8 steps over all 450k copies of a 1M-face scan).
    start_at = copy_at - 1  # new[0] is True: never below 0
    back = pending = None  # pending: the copies (as numbers among copy_at) that stepped back last
    for _ in range(_RUN_STEPS):
        if pending is None:
            back = np.flatnonzero(~new[start_at])
        else:
            back = pending[~new[np.take(start_at, pending)]]
        if len(back) == 0 or 2 * len(back) > len(copy_at):
            break
        start_at[back] -= 1
        pending = back
    if back is not None and len(back):
        start = np.where(new, np.arange(len(order)), 0)
        np.maximum.accumulate(start, out=start)
        start_at = np.take(start, copy_at)
    return copy_at, copies, start_at


# _copies_from_runs steps back from each copy to its run's start at most this many times.
_RUN_STEPS = 16


def repeated_corner_mask(F: np.ndarray) -> np.ndarray:
    return (F[:, 0] == F[:, 1]) | (F[:, 1] == F[:, 2]) | (F[:, 0] == F[:, 2])


def boundary_loop_sizes(edges: Edges) -> list[int]:
    """Edges per boundary loop, counted as connected pieces of the boundary edges (loops that touch
    at a vertex count once; used for reports, where winding may still be inconsistent)."""
    b = np.flatnonzero(edges.counts == 1)
    if len(b) == 0:
        return []
    return edge_loop_sizes(edges.edge_vertices(b))


def edge_loop_sizes(ev: np.ndarray) -> list[int]:
    """Edges per connected piece of the (k, 2) vertex pairs `ev` (see boundary_loop_sizes)."""
    if len(ev) == 0:
        return []
    verts, inv = np.unique(ev.ravel(), return_inverse=True)
    inv = inv.reshape(-1, 2)
    _, labels = components_from_pairs(len(verts), inv[:, 0], inv[:, 1])
    return np.bincount(labels[inv[:, 0]]).tolist()


# Up to this many boundary edges, boundary_vertex_components() counts in numpy (edge_loop_sizes):
# importing scipy.sparse for csgraph costs 0.15-0.3 s of a command-line repair, far more than csgraph
# saves on a clean scan's boundary (a margin of a few thousand edges: a few ms either way).
_NUMPY_LOOPS_MAX_EDGES = 50_000


def boundary_vertex_components(edges: Edges, boundary: np.ndarray | None = None) -> int:
    """Number of boundary loops (see boundary_loop_sizes); `boundary`: the boundary edges' ids when
    they are not those of count 1 (the input's, when its copies were set aside: see measure()). Beyond
    _NUMPY_LOOPS_MAX_EDGES boundary edges, vertex numbers serve as the graph's nodes as they are (no
    np.unique), joined by smallest_linked() (boundary paths chained through many vertices, needle
    triangles along edges, take components_from_pairs 7 rounds over every vertex and link; csgraph
    builds a matrix over every vertex: 40-75 ms against 22 ms at 390k boundary edges, 1M faces)."""
    b = np.flatnonzero(edges.counts == 1) if boundary is None else boundary
    if len(b) == 0:
        return 0
    if len(b) <= _NUMPY_LOOPS_MAX_EDGES:
        return len(edge_loop_sizes(edges.edge_vertices(b)))
    # The ends as two arrays of their own (edge_vertices' (k, 2) stack and its strided columns cost
    # 390k boundary edges of a 1M-face scan 3 ms more).
    h = np.take(edges.order, np.take(edges.starts, b))
    tails, heads = np.take(edges._tails, h), np.take(edges._heads, h)
    del h
    # A self-loop (the edge of a face with a repeated corner from that corner to itself) joins
    # nothing: it only marks its vertex, which `touched` counts anyway.
    link = np.flatnonzero(tails != heads)
    a, c = np.take(tails, link), np.take(heads, link)
    del link
    touched = np.zeros(edges.n_vertices, bool)
    touched[tails] = True
    touched[heads] = True
    merges = linked_merges(edges.n_vertices, a, c)
    if merges is not None:
        return int(np.count_nonzero(touched)) - merges
    count, labels = graph_components(edges.n_vertices, a, c)
    seen = np.zeros(count, bool)
    seen[np.take(labels, tails)] = True
    return int(np.count_nonzero(seen))


def linked_merges(n: int, a: np.ndarray, b: np.ndarray, rounds: int = 64) -> int | None:
    """How many nodes of 0..n-1 stop being the smallest of their component when the links a[i]-b[i]
    join them (a != b): the nodes the links touch, less this, are their components. The rounds of
    smallest_linked(), counting the roots each round hooks (every link's ends are roots; the larger is
    hooked below itself, so each distinct one is one merge) instead of pointing every node at its root at
    the end: the boundary loops of 1M faces with 45 % zero-area (300k links) -5 ms. None when `rounds`
    rounds do not settle it."""
    label = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
    a, b = a.astype(label.dtype, copy=False), b.astype(label.dtype, copy=False)
    hooked_now = np.zeros(n, bool)
    merges = 0
    for _ in range(rounds):
        if len(a) == 0:
            return merges
        hooked = np.maximum(a, b)
        np.minimum.at(label, hooked, np.minimum(a, b))
        # Distinct hooked nodes (a node hooked by several links merges once): a bool per node, counted
        # whole (fast even over every node) and cleared where it was set.
        hooked_now[hooked] = True
        merges += int(np.count_nonzero(hooked_now))
        hooked_now[hooked] = False
        label = _jump_to_roots(label) if 2 * len(hooked) >= n else jump_nodes_to_roots(label, hooked)
        del hooked
        a, b = np.take(label, a), np.take(label, b)
        apart = np.flatnonzero(a != b)
        a, b = np.take(a, apart), np.take(b, apart)
    return merges if len(a) == 0 else None


def smallest_linked(n: int, a: np.ndarray, b: np.ndarray, rounds: int = 64) -> np.ndarray | None:
    """Per node 0..n-1, the smallest node of its component in the graph of the links a[i]-b[i]; None
    when `rounds` rounds do not settle it. Each round every link hooks the root of its larger end to
    the root of its smaller one (always to a smaller number: no cycles), pointers jump to the roots,
    and only the links still between two trees go on: the rounds shrink with the links left
    (components_from_pairs goes over every link and both ends each round). In a round with fewer links
    than half the nodes only the roots just hooked jump (the links' ends are roots, so only theirs
    must be current; every node follows its chain once at the end): the trees two rounds of piece
    labels leave in 550k kept faces of a scan of 45 % copies 10 -> 5 ms, the boundary loops of 1M faces
    with 45 % zero-area 20 -> 14 ms."""
    label = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
    a, b = a.astype(label.dtype, copy=False), b.astype(label.dtype, copy=False)
    for _ in range(rounds):
        if len(a) == 0:
            return _jump_to_roots(label)
        hooked = np.maximum(a, b)
        np.minimum.at(label, hooked, np.minimum(a, b))
        label = _jump_to_roots(label) if 2 * len(hooked) >= n else jump_nodes_to_roots(label, hooked)
        del hooked
        a, b = np.take(label, a), np.take(label, b)
        apart = np.flatnonzero(a != b)
        a, b = np.take(a, apart), np.take(b, apart)
    return _jump_to_roots(label) if len(a) == 0 else None


def jump_nodes_to_roots(parent: np.ndarray, nodes: np.ndarray, steps: int = 8) -> np.ndarray:
    """parent with the given nodes pointing straight at their roots (in place; the other nodes' parents
    as they were). Up to `steps` steps the nodes' ancestors are followed one at a time (short chains,
    the usual: one gather a step); beyond, the nodes' parents are shortened as they go (each step their
    grandparents, a gather more and a scatter), so a long chain through them takes log2 of its length
    in steps: the boundary loops of 1M faces with 45 % zero-area 17-19.5 -> 13.3-13.6 ms."""
    up = parent[nodes]
    for _ in range(steps):
        higher = parent[up]
        if np.array_equal(higher, up):
            parent[nodes] = up
            return parent
        up = higher
    parent[nodes] = up
    while True:
        up = parent[nodes]
        higher = parent[up]
        if np.array_equal(higher, up):
            return parent
        parent[nodes] = higher


@dataclass
class SetAside:
    """The faces measure() left out of the edge sort: the copies (set_aside_copies=True), every face
    whose vertex set an earlier face has (either winding), and the faces that add nothing to the
    surface (surface_only=True, see _left_out_of_surface). A copy has its first face's three edges and
    nothing else, so the input's edge counts are the others' plus the copies on each edge; a face left
    out of the surface counts on none."""

    kept: np.ndarray  # input numbers of the faces the edges describe (increasing): all but those left out
    faces: np.ndarray  # those faces (F[kept]; the edges' tails are a view of it)
    copies: np.ndarray  # input numbers of the copies
    first_slot: np.ndarray  # per copy: its set's first face, as a number among `kept`
    same_winding: np.ndarray  # per copy: walks its vertices the way the first face does
    boundary: np.ndarray  # the input's boundary edges (one face, copies counted), as edge ids
    # Whether the faces without their copies meet at most two on every edge, and the pairs of them
    # walking an edge the same way (faces as numbers among `kept`): when every such pair loses a face
    # or has one turned, and no turned face walks an edge the way its neighbour does, the cleaned mesh
    # is consistently wound (orient() need not check it again).
    two_by_two: bool = False
    inconsistent: tuple | None = None
    # Input numbers of the faces left out of the surface (measure(surface_only=True), see
    # _left_out_of_surface), copies of them included: not in `kept`, not in `copies`; None when none is.
    left_out: np.ndarray | None = None


def _odd_or_repeated(F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per face: whether its corners are an odd permutation of their sorted order (an odd number of
    pairs out of order), and whether a corner repeats. Two faces of the same three distinct vertices
    are wound alike (one a rotation of the other, an even permutation) exactly when they agree on the
    first; every order of a face with a repeated corner is a rotation of every other. Three compares
    per face instead of packed int64 rotation keys (a 1M-face scan of 45 % copies: 6.2 -> 4.4 ms)."""
    x, y, z = F[:, 0], F[:, 1], F[:, 2]
    odd = x > y
    odd ^= y > z
    odd ^= x > z
    repeated = x == y
    repeated |= y == z
    repeated |= x == z
    return odd, repeated


# Copies are set aside from the edge sort when they are at least this share of the faces: below it the
# edge ids their counts need (a pass over every half-edge) cost more than the sort saves.
SET_ASIDE_MIN_SHARE = 0.1


def same_winding(F: np.ndarray, first: np.ndarray, copies: np.ndarray) -> np.ndarray:
    """Per copy: wound as its first face (one a rotation of the other; see _odd_or_repeated). Only the
    rows compared when the copies are few (50k copies of a 1M-face scan)."""
    if 4 * len(copies) < len(F):
        odd, repeated = _odd_or_repeated(np.take(F, first, axis=0))
        return (odd == _odd_or_repeated(np.take(F, copies, axis=0))[0]) | repeated
    odd, repeated = _odd_or_repeated(F)
    return (np.take(odd, first) == np.take(odd, copies)) | np.take(repeated, first)


def _input_edge_counts(edges: Edges, aside: SetAside) -> tuple[np.ndarray, np.ndarray]:
    """(copies per edge, the edge of each copy's half-edges (k, 3)) of the copy-free edges."""
    # The first faces' rows of edge ids at once (a take into a column of an (n, 3) array is buffered:
    # 450k copies 3.6 -> 1.0 ms).
    copy_edges = np.take(edges.he_edge.reshape(-1, 3), aside.first_slot, axis=0)
    extra = np.bincount(copy_edges.ravel(), minlength=edges.n_edges)
    return extra, copy_edges


@dataclass
class Measured:
    stats: dict  # the numbers the report shows
    edges: Edges  # of F, or of F without its copies (set_aside below)
    labels: np.ndarray | None  # face components, when computed here on an edge-manifold mesh
    duplicates: np.ndarray  # duplicate-face mask
    duplicate_of: np.ndarray | None  # the face kept of each face's vertex set (None: no copies)
    areas: np.ndarray
    thin: np.ndarray
    set_aside: SetAside | None = None  # the copies left out of `edges` (measure(set_aside_copies=True))
    repeated: np.ndarray | None = None  # per face: a corner repeats (counted for the report anyway)


def in_background(fn, *args):
    """Run fn(*args) in a thread; returns a function that waits for the result (or re-raises). numpy
    releases the GIL in sorts, ufuncs and gathers on large arrays, so on 2+ cores this overlaps."""
    box = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def result():
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    return result


def measure(V: np.ndarray, F: np.ndarray, min_height: float, edges: Edges | None = None,
            areas: np.ndarray | None = None, thin: np.ndarray | None = None,
            components: int | None = None, count_components: bool = True,
            set_aside_copies: bool = False, surface_only: bool = False) -> Measured:
    """Count what the report shows for a mesh. The per-face half (shape, duplicates, bounding box)
    runs in a second thread while this one looks for copies (set_aside_copies) and, without
    surface_only, sorts the edges and finds the components.
    count_components=False leaves stats["components"] None (the caller counts them later, see
    components_through()): a repair that removes faces finds the pieces of what is left anyway.

    surface_only=True (the report's column of the upload): the pieces, loops and open, non-manifold
    and inconsistent edges are those of the surface, without the faces that add none to it (a corner
    repeated, three corners at one point, a needle pointing to a corner of its own; every copy of such
    a face; see _left_out_of_surface). They have their own row, "degenerate triangles", and a scan whose
    export squashed 30,000 faces along its surface is one piece with one margin, not 8,000 pieces with
    10,000 open loops. Those faces stay out of the edge sort (where they cut the runs of keys every few
    faces: issue 12, a scan of 45 % such faces took 1.4-2.4x the clean scan's cleaning). The edges are
    then those of the faces kept (`set_aside.kept`), and `labels` None.

    set_aside_copies=True (the repair, which removes copies anyway): the duplicates are found first and,
    when there are any, the edges are sorted without them (a scan that is half copies sorts half the
    half-edges) and the report's edge numbers are made up from the copies' first faces' edges; the
    result's set_aside says which faces the edges describe."""
    m = len(F)

    def per_face(with_duplicates: bool, repeated: np.ndarray | None):
        a, t = (areas, thin) if areas is not None and thin is not None else face_shape(V, F, min_height)
        used = np.zeros(len(V), bool)
        used[F.ravel()] = True
        n_used = int(used.sum())
        if n_used:
            pts = V if n_used == len(V) else V[used]
            box = [float(x) for x in pts.max(axis=0).astype(np.float64) - pts.min(axis=0).astype(np.float64)]
        else:
            box = [0.0, 0.0, 0.0]
        if repeated is None:
            repeated = repeated_corner_mask(F)
        return a, t, n_used, box, duplicate_face_mask(F, len(V), with_first=True) if with_duplicates else None, \
            int(np.count_nonzero(repeated | t)), repeated

    looks_for_copies = set_aside_copies and edges is None
    surface = surface_only and edges is None
    # A face with a repeated corner is always left out of the surface: three compares a face tell at once.
    # A scan with one waits for the faces' shapes and sorts its surface's edges once; any other sorts all its
    # edges while the shapes are measured (a clean 1M scan's cleaning: ~100 ms of wall time) and sorts again
    # only when some needle points to a corner of its own (below).
    repeated = repeated_corner_mask(F) if surface else None
    face_half = in_background(per_face, not looks_for_copies, repeated)
    copies = None
    if looks_for_copies:
        try:
            copies = duplicate_face_mask(F, len(V), with_first=True)
        except BaseException:
            face_half()
            raise
    left_out, waited = None, False
    if surface and (repeated.any() or (areas is not None and thin is not None)):
        areas, thin, n_used, bbox, found, degenerate, repeated = face_half()
        waited = True
        copies = found if found is not None else copies
        left_out = _left_out_of_surface(F, len(V), thin, repeated, copies)
    try:
        numbers = _edge_numbers(V, F, edges, left_out, copies if looks_for_copies or left_out is not None else None,
                                looks_for_copies, components, count_components)
    finally:
        if not waited:
            areas, thin, n_used, bbox, found, degenerate, repeated = face_half()
    if found is not None:
        copies = found
    if surface and not waited:
        left_out = _left_out_of_surface(F, len(V), thin, repeated, copies)
        if left_out is not None:  # needles to corners of their own, known only now: the surface sorted again
            numbers = _edge_numbers(V, F, None, left_out, copies, looks_for_copies, components, count_components)
    duplicates, first_of = copies
    stats = {
        "vertices": n_used,
        "triangles": int(m),
        "boundary_loops": numbers.loops,
        "boundary_edges": numbers.boundary_edges,
        "non_manifold_edges": numbers.non_manifold,
        "components": None if numbers.components is None else int(numbers.components),
        "duplicate_triangles": int(duplicates.sum()),
        "degenerate_triangles": degenerate,
        "inconsistent_edges": numbers.inconsistent,
        "bbox_mm": bbox,
        "surface_area_mm2": float(areas.sum()),
        "closed": bool(m > 0 and numbers.boundary_edges == 0 and numbers.non_manifold == 0),
    }
    return Measured(stats, numbers.edges, numbers.labels, duplicates, first_of, areas, thin, numbers.aside, repeated)


class _EdgeNumbers(NamedTuple):
    edges: Edges
    aside: SetAside | None
    labels: np.ndarray | None
    boundary_edges: int
    non_manifold: int
    components: int | None
    inconsistent: int
    loops: int


def _edge_numbers(V: np.ndarray, F: np.ndarray, edges: Edges | None, left_out: np.ndarray | None, copies,
                  looks_for_copies: bool, components: int | None, count_components: bool) -> _EdgeNumbers:
    """measure()'s numbers of the edges: of the faces not `left_out`, with the copies set aside when
    looks_for_copies and there are any left out or enough copies (SET_ASIDE_MIN_SHARE); `edges` given:
    those, as they are."""
    duplicates, first_of = copies if copies is not None else (None, None)
    surface_copies = 0
    if looks_for_copies and first_of is not None:
        surface_copies = int(np.count_nonzero(duplicates)) if left_out is None \
            else int(np.count_nonzero(duplicates & ~left_out))
    labels = None
    if left_out is not None or (looks_for_copies and surface_copies
                                and surface_copies >= SET_ASIDE_MIN_SHARE * len(F)):
        aside = _set_aside(F, left_out, duplicates if looks_for_copies else None, first_of)
        edges = Edges(aside.faces, len(V))
        if len(aside.copies):
            extra, copy_edges = _input_edge_counts(edges, aside)
        else:  # no copy to count back: no edge ids needed (a pass over every half-edge)
            extra, copy_edges = np.zeros(edges.n_edges, np.int64), None
        boundary = (edges.counts == 1) & (extra == 0)
        aside.boundary = np.flatnonzero(boundary)
        boundary_edges = len(aside.boundary)
        nm = int(np.count_nonzero(edges.counts + extra > 2))
        # Inconsistent: pairs of the copy-free edges no copy joins, and a face's edge shared with
        # one copy alone walking it the same way (a copy in the same winding on the boundary).
        manifold = np.flatnonzero(edges.counts == 2)
        h1, h2, same = edges.inconsistent_pairs()
        inconsistent = int(np.count_nonzero(same & (np.take(extra, manifold) == 0)))
        aside.two_by_two = int(edges.counts.max(initial=0)) <= 2
        if aside.two_by_two:
            aside.inconsistent = (masked(h1, same) // 3, masked(h2, same) // 3)
        del h1, h2
        if copy_edges is not None:
            # Marked per edge, then read at the same-winding copies' edges: one bool gather instead
            # of two int32 gathers at every copy's edges (the copies' edges lie anywhere in the edge
            # list). The same-winding copies' rows taken by index (a boolean mask on an (n, 3) array
            # takes numpy's slow path: 225k of 450k copies 4.5 -> 1.4 ms).
            lone = (edges.counts == 1) & (extra == 1)
            inconsistent += int(np.count_nonzero(
                lone[np.take(copy_edges, np.flatnonzero(aside.same_winding), axis=0)]))
            del lone
        del extra, copy_edges, boundary
        if components is None and count_components:
            components, _ = manifold_components(edges, through_non_manifold=True)
        loops = boundary_vertex_components(edges, aside.boundary)
    else:
        aside = None
        if edges is None:
            edges = Edges(F, len(V))
        boundary_edges = int((edges.counts == 1).sum())
        nm = int((edges.counts > 2).sum())
        if components is None and count_components:
            if nm == 0:
                components, labels = manifold_components(edges)
            else:
                components, _ = manifold_components(edges, through_non_manifold=True)
        _, _, same = edges.inconsistent_pairs()
        inconsistent = int(same.sum())
        loops = boundary_vertex_components(edges)
    return _EdgeNumbers(edges, aside, labels, boundary_edges, nm, components, inconsistent, loops)


def _left_out_of_surface(F: np.ndarray, n_vertices: int, thin: np.ndarray, repeated: np.ndarray,
                         copies) -> np.ndarray | None:
    """Per face: left out of the surface's edges. A face with a repeated corner; and a thin face with a
    corner of its own, used by no face with an area (a needle pointing off the surface, three corners
    at one new point): its edges to that corner open nothing and close nothing. A thin face whose
    corners are all the surface's stays: a sliver whose corner lies on its opposite edge is what joins
    the faces on either side of that edge (a T-junction), and without it the upload would count a slit
    that is not there. A copy: as its set's first face (a set goes or stays whole, whatever rounding
    its rotation gives). None when no face is left out."""
    no_area = thin | repeated
    if not no_area.any():  # no face without an area, so no copy of one (a pass over the copies less)
        return None
    duplicates, first_of = copies if copies is not None else (None, None)
    if first_of is not None:
        copy_faces = np.flatnonzero(duplicates)
        no_area[copy_faces] = np.take(no_area, np.take(first_of, copy_faces))  # a first face is no copy
        if not no_area.any():
            return None
    # A set's faces share their corners, so from here on a set is left out or kept whole.
    with_area = np.zeros(n_vertices, bool)
    with_area[np.take(F, np.flatnonzero(~no_area), axis=0).ravel()] = True
    needle = np.flatnonzero(no_area & ~repeated)
    rows = np.take(F, needle, axis=0)
    own = ~(with_area[rows[:, 0]] & with_area[rows[:, 1]] & with_area[rows[:, 2]])
    gone = repeated.copy()
    gone[needle[own]] = True
    return gone if gone.any() else None


def _set_aside(F: np.ndarray, left_out: np.ndarray | None, duplicates: np.ndarray | None,
               first_of: np.ndarray | None) -> SetAside:
    """The faces the edges describe (the surface's: not `left_out`, and without their copies when
    `duplicates` are given), and the copies to count back on their first faces' edges."""
    out = np.zeros(len(F), bool) if left_out is None else left_out.copy()
    copy_faces = np.zeros(0, np.int64)
    if duplicates is not None and first_of is not None:
        copy_faces = np.flatnonzero(duplicates if left_out is None else duplicates & ~left_out)
        out |= duplicates
    kept = np.flatnonzero(~out)
    slot = np.cumsum(~out, dtype=np.int64)
    slot -= 1
    first = np.take(first_of, copy_faces) if len(copy_faces) else np.zeros(0, np.int64)
    aside = SetAside(kept, np.take(F, kept, axis=0), copy_faces, np.take(slot, first), None, None)
    aside.same_winding = same_winding(F, first, copy_faces) if len(copy_faces) else np.zeros(0, bool)
    aside.left_out = None if left_out is None else np.flatnonzero(left_out)
    return aside

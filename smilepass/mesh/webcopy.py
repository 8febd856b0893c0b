"""The web copy of a scan: a small binary glTF (.glb) the browser's 3D viewer loads.

The mesh is reduced to at most MAX_TRIANGLES. A large one (more than twice that) by vertex clustering in
numpy, one vertex per grid cell: 0.1 CPU s for a 1,000,000-triangle arch, where quadric decimation took
5 s (pyfqmr) or 50 s (Open3D) and clustering to 200,000 faces before pyfqmr still cost 0.8 s per copy.
A smaller one by fast quadric decimation (pyfqmr) with its borders kept, so the gum margin and the rims
of holes stay where they are. It is stored
quantised (KHR_mesh_quantization): positions as 16-bit integers that the node's scale and translation
turn back into scan coordinates (about a micrometre on a 70 mm arch), colours as 8-bit RGBA. Without
normals (the viewer computes them) a 150,000-triangle copy is about 2.7 MB.

Marks are per vertex: repaired areas (hole filling) orange, rims of holes left open red. A clustered
copy's vertex takes the strongest mark of its cell; after decimation each vertex of the copy takes the
strongest mark of the input vertices nearest to it. Either way a small filled hole still shows even
where its triangles were merged away.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import numpy as np

from .topology import duplicate_face_mask

MAX_TRIANGLES = 150_000
NO_MARK, REPAIRED, OPEN_RIM = 0, 1, 2
# RGBA per mark: the scan's own grey, repaired orange, open rims red.
COLOURS = np.array([[214, 208, 196, 255], [245, 140, 20, 255], [220, 30, 30, 255]], np.uint8)

_GLB_MAGIC, _JSON_CHUNK, _BIN_CHUNK = 0x46546C67, 0x4E4F534A, 0x004E4942
_SHORT, _UNSIGNED_BYTE, _UNSIGNED_SHORT, _UNSIGNED_INT = 5122, 5121, 5123, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_QUANT = 32767


# Quadric decimation (pyfqmr) costs about 5 CPU seconds on a 1,000,000-triangle arch, and holds the GIL.
# A mesh of more than CLUSTER_ABOVE x max_triangles faces is instead clustered in numpy straight to about
# max_triangles faces (one grid cell, one vertex: 0.1 CPU s at 1M); pyfqmr only finishes the job if
# that left too many. Its marks then come from the cells, without a nearest-neighbour search.
CLUSTER_ABOVE = 2
_CLUSTER_SPACING = 0.82  # cell edge per (mean edge length x sqrt(faces / target)): a first guess


def decimate(V: np.ndarray, F: np.ndarray, max_triangles: int = MAX_TRIANGLES,
             marks: np.ndarray | None = None, clustered: Clustered | None = None,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(V, F, marks) of at most max_triangles faces of the same shape (V float, F int; marks per vertex of
    the result, None when none were given). `clustered`: cluster(V, F, max_triangles) when the caller has
    it already (the previews draw from it too). Faces with a repeated corner go first: they have no
    surface, and quadric decimation expects none."""
    if clustered is None and len(F) > CLUSTER_ABOVE * max_triangles:
        clustered = cluster(V, F, max_triangles)
    if clustered is not None:
        V, F, marks = clustered.V, clustered.F, None if marks is None else clustered.marks(marks)
        if len(F) <= max_triangles:
            return V, F, marks
    F = F[(F[:, 0] != F[:, 1]) & (F[:, 1] != F[:, 2]) & (F[:, 0] != F[:, 2])]
    if len(F) <= max_triangles:
        return _compact(V, F, marks)
    # Copies of a face draw nothing new, and their non-manifold edges slow the decimation down a lot
    # (50 duplicated triangles in a 1M-triangle upload: 8 s instead of 3).
    F = F[~duplicate_face_mask(F, len(V))]
    if len(F) <= max_triangles:
        return _compact(V, F, marks)
    # Lazy: only a scan between max_triangles and CLUSTER_ABOVE times that many faces (and not
    # clustered) is decimated; importing pyfqmr and scipy.spatial took 0.55 s of every command-line
    # repair with previews, the 1M-triangle scans (clustered) included (measured 2026-12-06).
    import pyfqmr

    target = max_triangles
    for preserve_border in (True, False):
        simplifier = pyfqmr.Simplify()
        simplifier.setMesh(np.ascontiguousarray(V, np.float64), np.ascontiguousarray(F, np.int32))
        simplifier.simplify_mesh(target_count=target, aggressiveness=7, preserve_border=preserve_border, verbose=False)
        v, f, _ = simplifier.getMesh()
        if len(f) <= max_triangles:
            v, f = np.asarray(v), np.asarray(f, np.int64)
            if marks is not None:
                marks = transfer_marks(np.asarray(V, np.float64), marks, v)
            return v, f, marks
        # A scan of many tiny pieces has more border than a copy may have: then the borders go as well.
    raise ValueError(f"cannot reduce the mesh to {max_triangles} triangles")


@dataclass
class Clustered:
    """A clustered copy of a mesh (V, F): its vertices and faces, the row of the input's F each face comes
    from, and each input vertex's vertex in the copy (-1 for one it does not use)."""

    V: np.ndarray
    F: np.ndarray  # int64
    source: np.ndarray
    vertex_of: np.ndarray

    def marks(self, marks: np.ndarray) -> np.ndarray:
        """Per vertex of the copy, the strongest mark of the input vertices it stands for."""
        out = np.zeros(len(self.V), np.uint8)
        marked = np.flatnonzero(marks)
        marked = marked[self.vertex_of[marked] >= 0]
        np.maximum.at(out, self.vertex_of[marked], marks[marked].astype(np.uint8))
        return out


def cluster(V: np.ndarray, F: np.ndarray, target_faces: int) -> Clustered:
    """Vertex clustering: the used vertices fall into cubic cells sized for about `target_faces` faces; each
    cell becomes one vertex, the member nearest to the members' mean (on the scan's surface: the mean
    itself cut across the creases between teeth by up to 0.05 mm); the vertices at the mesh's extremes in
    each axis keep their place, so the copy spans the same box. Faces are renumbered, those that
    collapsed or became copies dropped, and those that turned over turned back.

    Works on the coordinates one column at a time and on 32-bit cell numbers (an (n, 3) float64 copy of
    the vertices and 64-bit renumbering of a million faces were half of its 0.25 s at 1M)."""
    index_type = np.int32 if len(V) < 2**31 - 1 else np.int64
    F = np.asarray(F)
    used = np.zeros(len(V), bool)
    used[F.ravel()] = True
    idx = None if used.all() else np.flatnonzero(used)  # a scan's vertices are all used: no gather then
    # float32 columns for the faces' orientation (as topology.face_cross computes it), float64 for the cells
    # (from the float32 ones only when those are the scan's own coordinates).
    V32 = [np.ascontiguousarray(V[:, k], np.float32) for k in range(3)]
    columns = V32 if V.dtype == np.float32 else [V[:, k] for k in range(3)]
    P = [(x if idx is None else x[idx]).astype(np.float64) for x in columns]
    n_points = len(P[0])
    sample = F[:: max(1, len(F) // 20_000)]
    corners = np.asarray(V[sample], np.float64)
    edge = float(np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=2).mean()) if len(F) else 0.0
    h = max(edge * np.sqrt(len(F) / target_faces) * _CLUSTER_SPACING, 1e-12)
    # The copy has about as many faces per vertex as the mesh (two, on a scan's surface): the cell size is
    # corrected (cells go as 1 / h²) until the cells would make 0.8-0.95 x the target's faces; the first
    # guess, from the mean edge, is off by up to a third where the reduction is small or the triangles
    # long and thin.
    faces_per_vertex = len(F) / max(n_points, 1)
    lo = [float(x.min()) if n_points else 0.0 for x in P]
    for _ in range(4):
        n_cells, inv = _cells(P, lo, h)
        ratio = n_cells * faces_per_vertex / (0.9 * target_faces)
        if 0.9 <= ratio <= 1.05:
            break
        h *= np.sqrt(ratio)
    count = np.bincount(inv, minlength=n_cells).astype(np.float64)
    off = np.zeros(n_points)
    for x in P:
        d = x - (np.bincount(inv, x, minlength=n_cells) / count)[inv]
        d *= d
        off += d
    nearest = np.full(n_cells, np.inf)
    np.minimum.at(nearest, inv, off)
    chosen = np.flatnonzero(off == nearest[inv])
    extremes = np.concatenate([[int(x.argmin()) for x in P], [int(x.argmax()) for x in P]])
    W = np.empty((n_cells, 3))
    for k, x in enumerate(P):
        W[inv[chosen], k] = x[chosen]
        W[inv[extremes], k] = x[extremes]
    if idx is None:
        cell_of = inv
    else:
        cell_of = np.full(len(V), -1, index_type)
        cell_of[idx] = inv
    # Cells of each corner, one contiguous row per corner (comparing strided columns of an (n, 3) array
    # is several times slower).
    G = np.take(cell_of, F.T)
    source = np.flatnonzero((G[0] != G[1]) & (G[1] != G[2]) & (G[0] != G[2]))
    G = np.ascontiguousarray(G[:, source].T)
    # A face that turned over (its cells' vertices fold it back) would show as a speck of the back side;
    # dropped, it would leave a hole: it is turned back instead.
    before = _cross_of(V32, np.take(F, source, axis=0))
    after = _cross_of([W[:, k].astype(np.float32) for k in range(3)], G)
    turned = sum(a * b for a, b in zip(before, after, strict=True)) < 0
    G[turned] = G[turned][:, ::-1]
    first = ~duplicate_face_mask(G, len(W))
    G, source = G[first], source[first]
    in_copy = np.zeros(len(W), bool)
    in_copy[G.ravel()] = True
    index = np.cumsum(in_copy, dtype=index_type) - 1
    vertex_of = np.where(cell_of >= 0, np.where(in_copy[cell_of], index[cell_of], -1), -1)
    return Clustered(W[in_copy], index[G].astype(np.int64), source, vertex_of)


def _cross_of(columns: list[np.ndarray], F: np.ndarray) -> tuple[np.ndarray, ...]:
    """(b - a) x (c - a) per face (a, b, c) of F from the coordinates as three float32 columns (what
    topology.face_cross(V, F, np.float32) computes, without converting every vertex for a few faces)."""
    i0, i1, i2 = (np.ascontiguousarray(F[:, k]) for k in range(3))
    b, c = [], []
    for x in columns:
        a = x[i0]
        b.append(x[i1] - a)
        c.append(x[i2] - a)
    return (b[1] * c[2] - b[2] * c[1], b[2] * c[0] - b[0] * c[2], b[0] * c[1] - b[1] * c[0])


def _cells(P: list[np.ndarray], lo: list[float], h: float) -> tuple[int, np.ndarray]:
    """(number of cells, cell of each point): the cubic cells of edge h that hold the points (three columns
    P, smallest coordinates lo), numbered in the order of their grid keys.

    Each axis's empty slabs are squeezed out first (numbered through a table, which keeps their order):
    a speck of debris far from the arch otherwise spreads the grid over a box too large for a table of
    its keys, and sorting 500,000 keys cost 35 ms where the tables cost a few."""
    q = []
    for x, m in zip(P, lo, strict=True):
        c = np.floor((x - m) / h)
        top = int(c.max()) + 1 if len(c) else 1
        c = c.astype(np.int64 if top > 2**31 - 1 else np.int32)
        if 8 * len(c) >= top > 1:
            present = np.zeros(top, bool)
            present[c] = True
            number = np.cumsum(present, dtype=np.int32)
            if number[-1] < top:
                c = np.take(number, c)
                c -= 1
                top = int(number[-1])
        q.append((c, top))
    (k0, d0), (k1, d1), (k2, d2) = q
    n_keys = d0 * d1 * d2
    key = k0.astype(np.int64 if n_keys > 2**31 - 1 else np.int32)
    key *= d1
    key += k1
    key *= d2
    key += k2
    if n_keys > 8 * len(key):  # a sparse grid: sorting the keys takes less memory than a table of them
        cells, inverse = np.unique(key, return_inverse=True)
        return len(cells), inverse.astype(np.int32 if len(cells) < 2**31 - 1 else np.int64)
    # A table over the grid instead of sorting (numpy's unique sorted 0.5M keys in 70 ms; this: 15 ms).
    present = np.zeros(n_keys, bool)
    present[key] = True
    number = np.cumsum(present, dtype=np.int32)
    cell = np.take(number, key)
    cell -= 1
    return int(number[-1]), cell


def _compact(V: np.ndarray, F: np.ndarray, marks: np.ndarray | None = None):
    used = np.zeros(len(V), bool)
    used[F.ravel()] = True
    index = np.cumsum(used) - 1
    return np.asarray(V)[used], index[F], (None if marks is None else marks[used])


def transfer_marks(V_in: np.ndarray, marks: np.ndarray, V_out: np.ndarray) -> np.ndarray:
    """Marks for the copy's vertices: each input vertex hands its mark to the copy's vertex nearest to it,
    and a copy vertex keeps the strongest it got (red over orange over none)."""
    out = np.zeros(len(V_out), np.uint8)
    marked = np.flatnonzero(marks)
    if len(marked) == 0 or len(V_out) == 0:
        return out
    from scipy.spatial import cKDTree  # lazy: see the decimation above

    tree = cKDTree(V_out)
    # Each marked input vertex marks its nearest copy vertex (nothing small is lost) ...
    _, nearest = tree.query(V_in[marked], workers=2)
    np.maximum.at(out, nearest, marks[marked])
    # ... and each copy vertex takes the mark of the input vertex nearest to it (the areas keep their shape).
    _, back = cKDTree(V_in).query(V_out, workers=2)
    return np.maximum(out, marks[back].astype(np.uint8))


def web_copy(
    V: np.ndarray,
    F: np.ndarray,
    marks: np.ndarray | None = None,
    *,
    extras: dict | None = None,
    max_triangles: int = MAX_TRIANGLES,
    clustered: Clustered | None = None,
) -> bytes:
    """The .glb of the mesh (V, F) with per-vertex marks (NO_MARK, REPAIRED or OPEN_RIM per vertex of V);
    `clustered` as decimate() takes it."""
    v, f, marks = decimate(V, F, max_triangles, marks, clustered)
    if marks is None:
        marks = np.zeros(len(v), np.uint8)
    return write_glb(v, f, COLOURS[marks], extras=extras)


def write_glb(V: np.ndarray, F: np.ndarray, colours: np.ndarray, *, extras: dict | None = None) -> bytes:
    """A binary glTF 2.0 with one mesh: quantised positions, RGBA colours, indices; no normals."""
    V = np.asarray(V, np.float64)
    if len(V):
        lo, hi = V.min(axis=0), V.max(axis=0)
    else:
        lo = hi = np.zeros(3)
    centre = (lo + hi) / 2
    scale = float(max((hi - lo).max() / 2, 1e-9)) / _QUANT
    q = np.zeros((len(V), 4), np.int16)  # the fourth short pads each vertex to 8 bytes (glTF alignment)
    q[:, :3] = np.clip(np.rint((V - centre) / scale), -_QUANT, _QUANT)
    colours = np.ascontiguousarray(colours, np.uint8)
    wide = len(V) > 65535
    indices = np.ascontiguousarray(F, np.uint32 if wide else np.uint16).ravel()

    views, blob = [], bytearray()

    def add(data: bytes, target: int, stride: int | None = None) -> int:
        while len(blob) % 4:
            blob.append(0)
        view = {"buffer": 0, "byteOffset": len(blob), "byteLength": len(data), "target": target}
        if stride:
            view["byteStride"] = stride
        views.append(view)
        blob.extend(data)
        return len(views) - 1

    position_view = add(q.tobytes(), _ARRAY_BUFFER, 8)
    colour_view = add(colours.tobytes(), _ARRAY_BUFFER, 4)
    index_view = add(indices.tobytes(), _ELEMENT_ARRAY_BUFFER)
    while len(blob) % 4:
        blob.append(0)
    qmin = q[:, :3].min(axis=0).tolist() if len(V) else [0, 0, 0]
    qmax = q[:, :3].max(axis=0).tolist() if len(V) else [0, 0, 0]
    doc = {
        "asset": {"version": "2.0", "generator": "SmilePass", "extras": extras or {}},
        "extensionsUsed": ["KHR_mesh_quantization"],
        "extensionsRequired": ["KHR_mesh_quantization"],
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": "scan", "translation": centre.tolist(), "scale": [scale] * 3}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0, "COLOR_0": 1}, "indices": 2, "material": 0}]}],
        "materials": [
            {
                "pbrMetallicRoughness": {
                    "baseColorFactor": [1, 1, 1, 1],
                    "metallicFactor": 0.0,
                    "roughnessFactor": 0.7,
                },
                "doubleSided": True,
            }
        ],
        "accessors": [
            {
                "bufferView": position_view,
                "componentType": _SHORT,
                "count": len(V),
                "type": "VEC3",
                "min": qmin,
                "max": qmax,
            },
            {
                "bufferView": colour_view,
                "componentType": _UNSIGNED_BYTE,
                "normalized": True,
                "count": len(V),
                "type": "VEC4",
            },
            {
                "bufferView": index_view,
                "componentType": _UNSIGNED_INT if wide else _UNSIGNED_SHORT,
                "count": int(indices.size),
                "type": "SCALAR",
            },
        ],
        "bufferViews": views,
        "buffers": [{"byteLength": len(blob)}],
    }
    text = json.dumps(doc, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    total = 12 + 8 + len(text) + 8 + len(blob)
    return b"".join(
        [
            struct.pack("<III", _GLB_MAGIC, 2, total),
            struct.pack("<II", len(text), _JSON_CHUNK),
            text,
            struct.pack("<II", len(blob), _BIN_CHUNK),
            bytes(blob),
        ]
    )


def vertex_marks(n_vertices: int, F: np.ndarray, n_kept: int, open_rim_vertices: np.ndarray | None) -> np.ndarray:
    """Per-vertex marks of a repaired mesh: the corners of the faces hole filling added (F[n_kept:]) are
    repaired; the vertices on rims of holes left open are open rims (over repaired)."""
    marks = np.zeros(n_vertices, np.uint8)
    marks[F[n_kept:].ravel()] = REPAIRED
    if open_rim_vertices is not None and len(open_rim_vertices):
        marks[open_rim_vertices] = OPEN_RIM
    return marks


def clustered_copy(V: np.ndarray, F: np.ndarray) -> Clustered | None:
    """The repaired mesh's clustered copy when its web copy will be one (None for a smaller mesh): the
    pipeline makes it once for the previews and the web copy."""
    return cluster(V, F, MAX_TRIANGLES) if len(F) > CLUSTER_ABOVE * MAX_TRIANGLES else None


def save_web_copies(outputs, mesh, n_kept: int, before_path, after_path, progress=None,
                    clustered: Clustered | None = None) -> None:
    """Write the upload's web copy ("As uploaded": mesh.V0, mesh.F0, unmarked) and the repaired one
    (mesh.V, mesh.F with marks; `clustered`: clustered_copy(mesh.V, mesh.F) when made already) through
    `outputs` (an AtomicOutputs). `mesh` is the pipeline's work mesh; its counts go into the repaired
    copy's asset extras (removed debris is not drawn, only counted)."""
    with outputs.open(before_path) as f:
        f.write(web_copy(mesh.V0, mesh.F0))
    if progress is not None:
        progress(0.5)
    counts = mesh.counts
    extras = {
        "holes_filled": counts.get("holes_filled", 0),
        "holes_left_open": int(mesh.open_holes),
        "fragments_removed": counts.get("fragments_removed", 0),
    }
    marks = vertex_marks(len(mesh.V), mesh.F, n_kept, mesh.open_rims)
    with outputs.open(after_path) as f:
        f.write(web_copy(mesh.V, mesh.F, marks, extras=extras, clustered=clustered))


def read_bounds(stream) -> tuple[list[float], list[float]]:
    """The bounding box (lo, hi) in scan coordinates of a web copy, from its JSON chunk alone (the first
    few hundred bytes of the file: the positions accessor's min and max, through the node's transform)."""
    magic, version, _ = struct.unpack("<III", stream.read(12))
    length, kind = struct.unpack("<II", stream.read(8))
    if magic != _GLB_MAGIC or version != 2 or kind != _JSON_CHUNK or length > 1_000_000:
        raise ValueError("not a SmilePass web copy")
    doc = json.loads(stream.read(length))
    node, accessor = doc["nodes"][0], doc["accessors"][0]
    scale, offset = node.get("scale", [1, 1, 1]), node.get("translation", [0, 0, 0])
    lo = [accessor["min"][i] * scale[i] + offset[i] for i in range(3)]
    hi = [accessor["max"][i] * scale[i] + offset[i] for i in range(3)]
    return lo, hi

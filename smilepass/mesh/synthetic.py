"""Synthetic arch scans for tests, benchmarks and demos (no patient data anywhere).

`arch()` makes an open, U-shaped surface the size of a dental arch (about 50 x 45 mm) with a bump per
tooth and cusps on top. It is a height field over a (t, s) parameter rectangle, so it never
intersects itself, and its one boundary loop (the rectangle's edge) plays the gum margin. The defect
functions add what real uploads have: holes, debris, duplicated and back-to-back triangles, flipped
patches, non-manifold fins and float-noise cracks. All are deterministic for a given seed.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from .topology import Edges
from .writers import write_stl


def arch(n_triangles: int = 200_000, *, teeth: int = 14, seed: int = 0, jitter: float = 0.005):
    """(V float32 (n, 3) in mm, F int32 (m, 3)); m is close to n_triangles, wound with normals up/out."""
    ns = max(4, int(round(np.sqrt(n_triangles / 20.0))))
    nt = max(8, int(round(n_triangles / (2.0 * (ns - 1)))) + 1)
    t = np.linspace(0.0, 1.0, nt)
    s = np.linspace(-1.0, 1.0, ns)
    theta = (t - 0.5) * np.radians(200.0)
    centre = np.stack([24.0 * np.sin(theta), 28.0 * np.cos(theta), np.zeros_like(t)], axis=1)
    tangent = np.stack([24.0 * np.cos(theta), -28.0 * np.sin(theta), np.zeros_like(t)], axis=1)
    tangent /= np.linalg.norm(tangent, axis=1)[:, None]
    outward = np.stack([tangent[:, 1], -tangent[:, 0], np.zeros_like(t)], axis=1)

    T, S = np.meshgrid(t, s, indexing="ij")
    phase = T * teeth
    tooth = 0.5 - 0.5 * np.cos(2 * np.pi * phase)  # 0 between teeth, 1 at a tooth's centre
    width = 4.0 + 2.5 * (np.abs(T - 0.5) * 2) ** 2  # molars are wider than incisors
    profile = np.sqrt(np.clip(1.0 - S**2, 0.0, 1.0))
    cusps = 0.6 * np.cos(2 * np.pi * 2 * phase) ** 2 * np.cos(np.pi * S * 1.5) ** 2 * tooth
    height = (6.0 + 3.0 * tooth**0.6) * profile + cusps * profile - 2.5 * S**4
    offset = S * width * (0.85 + 0.15 * tooth)
    P = centre[:, None, :] + offset[..., None] * outward[:, None, :]
    P[..., 2] += height
    if jitter:
        rng = np.random.default_rng(seed)
        P += rng.normal(0.0, jitter, P.shape)
    V = P.reshape(-1, 3).astype(np.float32)

    i, j = np.meshgrid(np.arange(nt - 1), np.arange(ns - 1), indexing="ij")
    a = (i * ns + j).ravel()
    b = a + ns
    c = b + 1
    d = a + 1
    F = np.empty((2 * len(a), 3), np.int32)
    F[0::2] = np.stack([a, b, c], axis=1)
    F[1::2] = np.stack([a, c, d], axis=1)
    # Normals must point away from the arch's inside (up/out): fix the winding if they do not.
    n = np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]])
    if n[:, 2].sum() < 0:
        F = F[:, (0, 2, 1)]
    return V, F


def margin_edges(V: np.ndarray, F: np.ndarray) -> int:
    """Edges of the generated surface's margin (for checks): 2 (nt - 1) + 2 (ns - 1)."""
    return int((Edges(F, len(V)).counts == 1).sum())


def interior_vertex(V: np.ndarray, F: np.ndarray, rng: np.random.Generator, away: float = 3.0) -> int:
    """A random vertex at least `away` mm from the boundary."""
    e = Edges(F, len(V))
    bv = np.unique(e.edge_vertices(np.flatnonzero(e.counts == 1)).ravel())
    tree = cKDTree(V[bv])
    for _ in range(1000):
        p = int(rng.integers(0, len(V)))
        if tree.query(V[p])[0] > away:
            return p
    raise RuntimeError("no interior vertex found")


def punch_hole(V: np.ndarray, F: np.ndarray, centre: int, radius: float) -> np.ndarray:
    """F without the faces that have a corner within `radius` of vertex `centre`."""
    near = np.linalg.norm(V - V[centre], axis=1) < radius
    return F[~near[F].any(axis=1)]


def add_debris(V: np.ndarray, F: np.ndarray, rng: np.random.Generator, count: int = 3, size: float = 0.4,
               lift: float = 4.0):
    """Small closed blobs (octahedra) floating above the surface, like the fragments a scanner picks up."""
    octa_v = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
    octa_f = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])
    Vs, Fs = [V], [F]
    base = len(V)
    top = V[:, 2].max()
    for _ in range(count):
        anchor = V[int(rng.integers(0, len(V)))].astype(float)
        centre = np.array([anchor[0], anchor[1], top + lift + rng.uniform(0, 2)])
        Vs.append((centre + size * octa_v).astype(V.dtype))
        Fs.append((octa_f + base).astype(F.dtype))
        base += len(octa_v)
    return np.concatenate(Vs), np.concatenate(Fs)


def add_duplicates(F: np.ndarray, rng: np.random.Generator, count: int, back_to_back: bool = False) -> np.ndarray:
    """F with `count` faces repeated (reversed winding when back_to_back), at random positions."""
    pick = rng.choice(len(F), count, replace=False)
    extra = F[pick][:, (0, 2, 1)] if back_to_back else F[pick]
    out = np.concatenate([F, extra])
    return out[rng.permutation(len(out))]


def flip_patch(V: np.ndarray, F: np.ndarray, centre: int, radius: float) -> tuple[np.ndarray, int]:
    """Reverse the winding of the faces near vertex `centre`; returns (F, number flipped)."""
    near = np.linalg.norm(V - V[centre], axis=1) < radius
    sel = near[F].all(axis=1)
    F = F.copy()
    F[sel] = F[sel][:, (0, 2, 1)]
    return F, int(sel.sum())


def add_fins(V: np.ndarray, F: np.ndarray, rng: np.random.Generator, count: int, height: float = 0.5):
    """Non-manifold fins: an extra triangle standing on `count` interior edges (3 faces per edge)."""
    pick = rng.choice(len(F), count, replace=False)
    a, b = F[pick, 0], F[pick, 1]
    apex = (V[a] + V[b]) / 2 + np.array([0, 0, height], V.dtype)
    idx = np.arange(len(V), len(V) + count)
    return np.concatenate([V, apex.astype(V.dtype)]), np.concatenate([F, np.stack([a, b, idx], 1).astype(F.dtype)])


def corners_with_cracks(V: np.ndarray, F: np.ndarray, rng: np.random.Generator, faces: int) -> np.ndarray:
    """STL-style corners (3 per face) where `faces` faces got one corner moved by one float32 ulp: the
    exact weld leaves cracks there, the tolerance weld must close them."""
    corners = V[F].reshape(-1, 3).astype(np.float32)
    pick = rng.choice(len(F), faces, replace=False) * 3
    corners[pick] = np.nextafter(corners[pick], np.float32(np.inf))
    return corners


DEGENERATE_KINDS = ("identical", "duplicate", "zero-area")


def add_degenerate(V: np.ndarray, F: np.ndarray, rng: np.random.Generator, count: int, kind: str):
    """(V, F) with `count` faces without a surface of their own added at random positions in F:
    "identical" copies of one face (an export bug repeating a facet), "duplicate" copies of random
    faces (either winding), or "zero-area" faces: a third each with a repeated corner, with all three
    corners at one new point, and needles along existing edges (a third corner on the edge: three
    distinct corners, no area). "duplicate-later" (not one of DEGENERATE_KINDS): the copies "duplicate"
    makes, each written somewhere after the face it copies, as an exporter writing facets a second time
    further on would; spread anywhere, half of them come ahead of their original (bench/mesh_degenerate.py
    shows what that order costs)."""
    Vs, extra = [V], []
    if kind == "identical":
        extra = [np.repeat(F[int(rng.integers(0, len(F)))][None, :], count, axis=0)]
    elif kind in ("duplicate", "duplicate-later"):
        source = rng.integers(0, len(F), count)
        pick = F[source]
        reverse = rng.random(count) < 0.5
        pick[reverse] = pick[reverse][:, (0, 2, 1)]
        if kind == "duplicate-later":
            # Before face source + 1 at the earliest: after the face it copies.
            at = source + 1 + (rng.random(count) * (len(F) - source)).astype(source.dtype)
            order = np.argsort(at, kind="stable")
            return V, np.insert(F, np.take(at, order), np.take(pick, order, axis=0).astype(F.dtype), axis=0)
        extra = [pick]
    elif kind == "zero-area":
        third = count // 3
        faces = F[rng.integers(0, len(F), count)]
        collapsed = faces[:third].copy()
        collapsed[:, 1] = collapsed[:, 0]  # a repeated corner
        points = len(V) + np.arange(third)
        Vs.append((V[faces[third:2 * third, 0]] + np.float32(0.01)).astype(V.dtype))
        at_a_point = np.repeat(points[:, None], 3, axis=1)  # three corners at one new point
        rest = faces[2 * third:]
        a, b = rest[:, 0], rest[:, 1]
        on_edge = len(V) + third + np.arange(len(rest))
        t = rng.uniform(0.2, 0.8, len(rest))[:, None]
        Vs.append((V[a] * (1 - t) + V[b] * t).astype(V.dtype))
        needles = np.stack([a, b, on_edge], axis=1)
        extra = [collapsed, at_a_point, needles]
    else:
        raise ValueError(f"unknown kind {kind!r}; one of {DEGENERATE_KINDS}")
    # Spread over the file, the scan's own faces keeping their order (an exporter that repeats or
    # squashes facets does not shuffle the rest; a shuffled file would be slower to repair whatever
    # it contains, and bench/mesh_degenerate.py compares like with like).
    extra = np.concatenate([e.astype(F.dtype) for e in extra])
    extra = extra[rng.permutation(len(extra))]
    at = np.sort(rng.integers(0, len(F) + 1, len(extra)))
    return np.concatenate(Vs), np.insert(F, at, extra, axis=0)


def degenerate_scan(n_triangles: int, fraction: float, kind: str, seed: int = 1):
    """An arch scan of n_triangles in all, `fraction` of them degenerate faces of `kind` (add_degenerate)."""
    rng = np.random.default_rng(seed)
    bad = int(round(n_triangles * fraction))
    V, F = arch(n_triangles - bad, seed=seed)
    return add_degenerate(V, F, rng, n_triangles - len(F), kind)


def bench_scan(n_triangles: int = 1_000_000, seed: int = 1):
    """An arch scan with the defects a typical upload has: a few holes, floating debris, some
    duplicated triangles. Used by bench/mesh.py."""
    rng = np.random.default_rng(seed)
    V, F = arch(n_triangles, seed=seed)
    for _ in range(6):
        F = punch_hole(V, F, interior_vertex(V, F, rng), rng.uniform(0.3, 0.8))
    V, F = add_debris(V, F, rng, count=4)
    F = add_duplicates(F, rng, 50)
    return V, F


def write_binary_stl(path, V: np.ndarray, F: np.ndarray) -> None:
    with open(path, "wb") as f:
        write_stl(f, V, F)

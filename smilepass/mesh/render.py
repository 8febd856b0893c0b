"""Preview images drawn on the CPU with numpy: a z-buffer, no display, no GPU, no 3D library.

An orthographic camera looks along the scan's thinnest principal axis (the occlusal view of an arch
scan), from the side most of the surface faces. Front faces are ivory, back faces (the inside of the
surface, or flipped patches) blue-grey, highlighted faces (filled holes, removed pieces) in a colour
of their own; background white. Each pixel shows what a ray through its centre hits first (the same
picture Open3D's ray caster drew, tests/test_mesh_render.py compares them), at a fixed resolution, so
the time is about the triangles' count plus the pixels they cover: 0.1 s for 200,000 triangles, where
importing Open3D alone took 0.6-1 s.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

WIDTH, HEIGHT = 640, 480
FRONT = np.array([0.93, 0.90, 0.83])
BACK = np.array([0.55, 0.62, 0.74])
FILLED = np.array([1.00, 0.40, 0.00])  # orange: triangles added by hole filling
REMOVED = np.array([0.86, 0.12, 0.12])  # red: triangles the repair removed
# A repaired area is often a few pixels across (a 0.3 mm hole in a 70 mm arch), so besides its own colour
# each one gets a ring around it in that colour, MARK_RADIUS pixels out and MARK_WIDTH wide, and is lit
# no darker than HIGHLIGHT_MIN_SHADE (a filling facing away from the light must not turn brown).
MARK_RADIUS = 12
MARK_WIDTH = 3
HIGHLIGHT_MIN_SHADE = 0.75
# Covered pixels handled at once (about 40 bytes each): bounds the memory of a scan drawn many layers deep.
_CHUNK = 1 << 21


@dataclass
class Camera:
    centre: np.ndarray
    right: np.ndarray
    up: np.ndarray
    towards_viewer: np.ndarray
    pixel: float
    distance: float


def camera_for(V: np.ndarray, F: np.ndarray, extra_points: np.ndarray | None = None) -> Camera:
    """Orthographic camera on the thinnest principal axis of the mesh, on the side its surface faces
    (an open arch scan: the occlusal view), framing the mesh and `extra_points` with a small margin."""
    used = np.zeros(len(V), bool)
    used[F.ravel()] = True
    pts = V if used.all() else V[used]
    if len(pts) > 200_000:
        pts = pts[:: len(pts) // 200_000 + 1]
    pts = pts.astype(np.float64)  # after the sampling: converting all of a 1M scan's vertices cost 10 ms
    centre = pts.mean(axis=0)
    q = pts - centre
    _, vectors = np.linalg.eigh(q.T @ q)
    right, view = vectors[:, 2], vectors[:, 0]
    # Which side the surface faces: its vector area, from a sample of at most 200,000 faces (enough for a
    # sign; all of a 1M-face scan cost 0.6 s), its corners gathered before converting (not all of V).
    corners = np.asarray(V[F[:: len(F) // 200_000 + 1]], np.float64)
    vector_area = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]).sum(axis=0) \
        if len(F) else np.zeros(3)
    del corners
    side = vector_area @ view
    if abs(side) <= 1e-9 * max(np.abs(vector_area).sum(), 1e-30):  # closed: look from +z's side
        side = view[2] if view[2] != 0 else 1.0
    if side < 0:
        view = -view
    up = np.cross(view, right)
    allpts = pts if extra_points is None or len(extra_points) == 0 else np.vstack([pts, extra_points])
    qa = allpts - centre
    x, y, z = qa @ right, qa @ up, qa @ view
    cx, cy = (x.max() + x.min()) / 2, (y.max() + y.min()) / 2
    centre = centre + cx * right + cy * up
    pixel = max((x.max() - x.min()) / (WIDTH * 0.92), (y.max() - y.min()) / (HEIGHT * 0.92), 1e-12)
    distance = float(z.max() - z.min()) + 10 * pixel + float(abs(z).max())
    return Camera(centre, right, up, view, pixel, distance)


def _ragged(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, offset) of sum(counts) entries: entry e is the offset[e]-th of item owner[e]."""
    owner = np.repeat(np.arange(len(counts)), counts)
    return owner, np.arange(len(owner)) - (np.cumsum(counts) - counts)[owner]


def _rasterize(camera: Camera, V: np.ndarray, F: np.ndarray):
    """What a ray through each pixel's centre hits first: (t_hit, face, normal) per pixel, t_hit inf where
    nothing is hit (the ray starts camera.distance in front of the centre, as a ray caster's would).

    A z-buffer in numpy: each triangle is projected, its rows of pixel centres found from its bounding
    box, each row's span from where the row crosses its edges, and every covered pixel centre gets the
    triangle's depth there; np.minimum.at keeps the nearest per pixel. The work is the rows and pixels
    the triangles cover (a needle across the picture costs its rows, not its bounding box), done in
    chunks of at most _CHUNK pixels so a pile of overlapping layers cannot take much memory."""
    shape = (HEIGHT, WIDTH)
    t_hit = np.full(shape, np.inf, np.float32)
    faces = np.zeros(shape, np.uint32)
    normals = np.zeros(shape + (3,), np.float32)
    if len(F) == 0:
        return t_hit, faces, normals
    # Pixel (j, i) has its centre at column x = i + 0.5 and row r = j + 0.5; depth d grows towards the viewer.
    # Few faces of many vertices (the removed or added ones, drawn with the whole mesh's V): their corners
    # are projected, not every vertex.
    corners = len(F) * 3 < len(V)
    P = (np.asarray(V[F] if corners else V, np.float64) - camera.centre).reshape(-1, 3)
    x = P @ (camera.right / camera.pixel) + WIDTH / 2
    r = HEIGHT / 2 - P @ (camera.up / camera.pixel)
    d = P @ camera.towards_viewer
    del P
    # Each corner's coordinates as a contiguous column (min/max over the short axis of an (n, 3) array, and
    # its strided columns, were a third of the time).
    if corners:
        X, R, D = ([c[k::3] for k in range(3)] for c in (x, r, d))
    else:
        i = [np.ascontiguousarray(F[:, k]) for k in range(3)]
        X, R, D = ([c[i[k]] for k in range(3)] for c in (x, r, d))
    del x, r, d
    X0, R0, D0 = X[0], R[0], D[0]
    first_row = np.maximum(np.ceil(_least(R) - 0.5), 0).astype(np.int64)
    rows = np.maximum(np.minimum(np.floor(_most(R) - 0.5), HEIGHT - 1).astype(np.int64) - first_row + 1, 0)
    rows[(_most(X) < 0.5) | (_least(X) > WIDTH - 0.5)] = 0
    # Depth over the picture plane, d = D0 + a (x - X0) + b (r - R0); edge-on triangles (no area on the
    # picture) are not drawn, as a ray would not hit them either.
    ex1, ex2, er1, er2 = X[1] - X0, X[2] - X0, R[1] - R0, R[2] - R0
    ed1, ed2 = D[1] - D0, D[2] - D0
    area2 = ex1 * er2 - er1 * ex2
    rows[np.abs(area2) < 1e-12] = 0
    with np.errstate(divide="ignore", invalid="ignore"):
        a = (ed1 * er2 - er1 * ed2) / area2
        b = (ex1 * ed2 - ed1 * ex2) / area2
    del ex1, ex2, er1, er2, ed1, ed2, area2
    d_lo, d_hi = _least(D), _most(D)  # clipped to: the plane's slopes are steep on near-edge-on faces

    owner, offset = _ragged(rows)
    yc = (first_row[owner] + offset) + 0.5
    Xo, Ro = [c[owner] for c in X], [c[owner] for c in R]
    left = np.full(len(owner), np.inf)
    right = np.full(len(owner), -np.inf)
    for i, k in ((0, 1), (1, 2), (2, 0)):
        ri, rk, xi, xk = Ro[i], Ro[k], Xo[i], Xo[k]
        crosses = (np.minimum(ri, rk) <= yc) & (yc <= np.maximum(ri, rk)) & (ri != rk)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = xi + (yc - ri) * (xk - xi) / (rk - ri)
        left = np.where(crosses, np.minimum(left, at), left)
        right = np.where(crosses, np.maximum(right, at), right)
    del Xo, Ro
    first_col = np.maximum(np.ceil(left - 0.5), 0).astype(np.int64)
    cols = np.maximum(np.minimum(np.floor(right - 0.5), WIDTH - 1).astype(np.int64) - first_col + 1, 0)

    # Nearest first: the key is the quantised distance from the nearest vertex, then the face number.
    face_bits = int(len(F) - 1).bit_length() or 1
    d_top = float(d_hi.max())
    scale = ((1 << (63 - face_bits)) - 1) / max(d_top - float(d_lo.min()), 1e-300)
    empty = np.iinfo(np.uint64).max
    zbuffer = np.full(HEIGHT * WIDTH, empty, np.uint64)
    ends = np.cumsum(cols)
    start = 0
    while start < len(cols):
        stop = max(int(np.searchsorted(ends, ends[start] - cols[start] + _CHUNK, side="right")), start + 1)
        span, col = _ragged(cols[start:stop])
        span += start
        face = owner[span]
        xc = first_col[span] + col + 0.5
        depth = np.clip(D0[face] + a[face] * (xc - X0[face]) + b[face] * (yc[span] - R0[face]),
                        d_lo[face], d_hi[face])
        key = ((d_top - depth) * scale).astype(np.uint64) << np.uint64(face_bits) | face.astype(np.uint64)
        np.minimum.at(zbuffer, (yc[span] - 0.5).astype(np.int64) * WIDTH + (xc - 0.5).astype(np.int64), key)
        start = stop

    pixel = np.flatnonzero(zbuffer != empty)
    face = (zbuffer[pixel] & np.uint64((1 << face_bits) - 1)).astype(np.int64)
    xc, yc = pixel % WIDTH + 0.5, pixel // WIDTH + 0.5
    depth = np.clip(D0[face] + a[face] * (xc - X0[face]) + b[face] * (yc - R0[face]), d_lo[face], d_hi[face])
    t_hit.ravel()[pixel] = camera.distance - depth
    faces.ravel()[pixel] = face
    # The hit face's unit normal, per pixel (the corners gathered first: converting all of a large V to
    # float64 for a few removed faces cost more than drawing them).
    c0, c1, c2 = (np.asarray(V[F[face, k]], np.float64) for k in range(3))
    e1, e2 = [c1[:, j] - c0[:, j] for j in range(3)], [c2[:, j] - c0[:, j] for j in range(3)]
    n = (e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2], e1[0] * e2[1] - e1[1] * e2[0])
    length = np.maximum(np.sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]), 1e-300)
    flat = normals.reshape(-1, 3)
    for j in range(3):
        flat[pixel, j] = n[j] / length
    return t_hit, faces, normals


def _least(columns: list[np.ndarray]) -> np.ndarray:
    return np.minimum(np.minimum(columns[0], columns[1]), columns[2])


def _most(columns: list[np.ndarray]) -> np.ndarray:
    return np.maximum(np.maximum(columns[0], columns[1]), columns[2])


def _shade(camera: Camera, t, normals, painted: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """An (HEIGHT, WIDTH, 3) uint8 image: front/back colour by facing, `colour` where `painted`, ringed.
    Only the pixels hit are lit (a whole-picture float image cost as much again)."""
    image = np.full((HEIGHT, WIDTH, 3), 255, np.uint8)
    hit = np.isfinite(t)
    if hit.any():
        n = normals[hit].astype(np.float64)
        facing = n @ camera.towards_viewer
        light = camera.towards_viewer + 0.35 * camera.up + 0.2 * camera.right
        light /= np.linalg.norm(light)
        shade = 0.22 + 0.78 * np.abs(n @ light)
        base = np.where(facing[:, None] >= 0, FRONT, BACK)
        own = painted[hit]
        base[own] = colour
        shade[own] = np.maximum(shade[own], HIGHLIGHT_MIN_SHADE)
        image[hit] = _bytes(base * shade[:, None])
        if own.any():
            # Pixels within MARK_RADIUS of a painted one but not within MARK_RADIUS - MARK_WIDTH.
            outer, inner = _within_each(painted, (MARK_RADIUS, MARK_RADIUS - MARK_WIDTH))
            ring = outer & ~inner
            image[ring] = _bytes(colour)
    return image


def _bytes(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def _within(mask: np.ndarray, radius: int) -> np.ndarray:
    """The pixels at most `radius` (Euclidean) from a True one of `mask` (see _within_each)."""
    return _within_each(mask, (radius,))[0]


def _within_each(mask: np.ndarray, radii: tuple[int, ...]) -> list[np.ndarray]:
    """For each radius, the pixels at most that far (Euclidean) from a True one of `mask`: the disc, row
    by row, is a horizontal run of half-width isqrt(radius² - dy²) at each vertical offset dy, and a
    run's reach along a row is a difference of running counts (two shifted slices of one padded table;
    the radii share the runs of equal half-width). Within the marks' box only (scipy.ndimage's distance
    transform did the same, but importing it cost every repair 0.17 s)."""
    outs = [np.zeros_like(mask) for _ in radii]
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return outs
    most = max(radii)
    top, bottom = max(rows[0] - most, 0), min(rows[-1] + most + 1, mask.shape[0])
    left, right = max(cols[0] - most, 0), min(cols[-1] + most + 1, mask.shape[1])
    box = mask[top:bottom, left:right]
    height, width = box.shape
    # running[:, most + j] = painted pixels left of column j of the row, for j from -most to width + most
    # (the counts before column 0 are 0, those past the end the row's total).
    running = np.zeros((height, width + 1 + 2 * most), np.int32)
    np.cumsum(box, axis=1, out=running[:, most + 1: most + 1 + width])
    running[:, most + 1 + width:] = running[:, most + width: most + 1 + width]
    reach = {}
    for radius, out in zip(radii, outs, strict=True):
        near = out[top:bottom, left:right]
        for dy in range(-radius, radius + 1):
            half = math.isqrt(radius * radius - dy * dy)
            if half not in reach:
                # Painted pixels in columns x - half .. x + half of the row, for every x.
                reach[half] = (running[:, most + half + 1: most + half + 1 + width]
                               - running[:, most - half: most - half + width]) > 0
            if dy >= 0:
                near[dy:] |= reach[half][: height - dy]
            else:
                near[:dy] |= reach[half][-dy:]
    return outs


def render_before_after(camera: Camera, kept: tuple, removed: tuple, added: tuple,
                        kept_flipped: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Before and after images of a repair, as (HEIGHT, WIDTH, 3) uint8 arrays.

    `kept`, `removed`, `added` are (V, F) triangle sets: the triangles both meshes share, those only the
    input had (shown red in the before image) and those the repair added (orange, after image).
    `kept_flipped` marks kept triangles whose winding the repair reversed (drawn as they were). The
    large shared set is drawn once; the small sets are drawn on their own and the nearest wins, instead
    of drawing two full-size meshes."""
    t0, ids0, n0 = _rasterize(camera, *kept)
    if kept_flipped is not None and kept_flipped.any() and np.isfinite(t0).any():
        was_flipped = np.zeros(t0.shape, bool)
        hit = np.isfinite(t0)
        was_flipped[hit] = kept_flipped[ids0[hit]]
        n_before = np.where(was_flipped[..., None], -n0, n0)
    else:
        n_before = n0
    images = []
    for (V, F), normals_kept, colour in ((removed, n_before, REMOVED), (added, n0, FILLED)):
        t, normals = t0.copy(), normals_kept.copy()
        t1, _, n1 = _rasterize(camera, V, F)
        nearer = t1 < t
        t[nearer], normals[nearer] = t1[nearer], n1[nearer]
        images.append(_shade(camera, t, normals, nearer, colour))
    return images[0], images[1]


def save_png(f, pixels: np.ndarray) -> None:
    # Level 3: faster than 6 and, on these pictures (large flat areas), no larger (142 kB against 152 kB).
    Image.fromarray(pixels, "RGB").save(f, "PNG", compress_level=3)

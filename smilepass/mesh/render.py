"""Preview images rendered on the CPU: Open3D's RaycastingScene (Embree), no display, no GPU.

An orthographic camera looks along the scan's thinnest principal axis (the occlusal view of an arch
scan), from the side most of the surface faces. Front faces are ivory, back faces (the inside of the
surface, or flipped patches) blue-grey, highlighted faces (filled holes, removed pieces) in a colour
of their own; background white. One ray per pixel at a fixed resolution, so the time is bounded:
about the Embree build (O(n log n)) plus 0.3M rays.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy.ndimage import distance_transform_edt

from .topology import face_cross

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


def _open3d():
    """Import Open3D (about 1 s). pybind11 turns an exception raised while its extension initialises
    (e.g. the RQ job timeout's SIGALRM arriving during the import) into ImportError("initialization
    failed"); re-raise the real exception so a timeout stays a timeout and is not retried as an error."""
    try:
        import open3d as o3d  # heavy and only for previews: imported when the first preview is drawn
    except ImportError as exc:
        cause = exc.__cause__ or exc.__context__
        if cause is not None and not isinstance(cause, ImportError):
            raise cause from None
        raise
    return o3d


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
    pts = (V if used.all() else V[used]).astype(np.float64)
    if len(pts) > 200_000:
        pts = pts[:: len(pts) // 200_000 + 1]
    centre = pts.mean(axis=0)
    q = pts - centre
    _, vectors = np.linalg.eigh(q.T @ q)
    right, view = vectors[:, 2], vectors[:, 0]
    # Which side the surface faces: its vector area, from a sample of at most 200,000 faces (enough for a
    # sign; all of a 1M-face scan cost 0.6 s).
    sampled = F[:: len(F) // 200_000 + 1]
    vector_area = np.array([c.sum() for c in face_cross(V, sampled)]) if len(F) else np.zeros(3)
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


def _rays(camera: Camera) -> np.ndarray:
    xs = (np.arange(WIDTH) + 0.5 - WIDTH / 2) * camera.pixel
    ys = (HEIGHT / 2 - np.arange(HEIGHT) - 0.5) * camera.pixel
    origins = (camera.centre + camera.distance * camera.towards_viewer)[None, None, :] \
        + xs[None, :, None] * camera.right[None, None, :] + ys[:, None, None] * camera.up[None, None, :]
    rays = np.empty((HEIGHT, WIDTH, 6), np.float32)
    rays[..., :3] = origins
    rays[..., 3:] = -camera.towards_viewer
    return rays


def _cast(V: np.ndarray, F: np.ndarray, rays):
    """(t_hit, primitive_ids, normals) for one triangle set; the BVH is built on this first cast."""
    o3d = _open3d()

    if len(F) == 0:
        shape = (HEIGHT, WIDTH)
        return np.full(shape, np.inf, np.float32), np.zeros(shape, np.uint32), np.zeros(shape + (3,), np.float32)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(np.ascontiguousarray(V, dtype=np.float32)),
                        o3d.core.Tensor(np.ascontiguousarray(F, dtype=np.uint32)))
    hits = scene.cast_rays(rays)
    return hits["t_hit"].numpy(), hits["primitive_ids"].numpy(), hits["primitive_normals"].numpy()


def _shade(camera: Camera, t, normals, colour) -> np.ndarray:
    """An (HEIGHT, WIDTH, 3) uint8 image; `colour` is None (front/back by facing) or an RGB per pixel."""
    image = np.ones((HEIGHT, WIDTH, 3))
    hit = np.isfinite(t)
    if hit.any():
        n = normals[hit].astype(np.float64)
        facing = n @ camera.towards_viewer
        light = camera.towards_viewer + 0.35 * camera.up + 0.2 * camera.right
        light /= np.linalg.norm(light)
        shade = 0.22 + 0.78 * np.abs(n @ light)
        base = np.where(facing[:, None] >= 0, FRONT, BACK)
        own = ~np.isnan(colour[hit][:, 0])
        base[own] = colour[hit][own]
        shade[own] = np.maximum(shade[own], HIGHLIGHT_MIN_SHADE)
        image[hit] = base * shade[:, None]
        painted = np.zeros(t.shape, bool)
        painted[hit] = own
        if painted.any():
            # Pixels within MARK_RADIUS of a painted one but not within MARK_RADIUS - MARK_WIDTH: one
            # Euclidean distance transform (the same disc as dilating by each radius, 0.02 s not 0.15 s).
            distance = distance_transform_edt(~painted)
            ring = (distance <= MARK_RADIUS) & (distance > MARK_RADIUS - MARK_WIDTH)
            image[ring] = colour[painted][0]
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def render_before_after(camera: Camera, kept: tuple, removed: tuple, added: tuple,
                        kept_flipped: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Before and after images of a repair, as (HEIGHT, WIDTH, 3) uint8 arrays.

    `kept`, `removed`, `added` are (V, F) triangle sets: the triangles both meshes share, those only the
    input had (shown red in the before image) and those the repair added (orange, after image).
    `kept_flipped` marks kept triangles whose winding the repair reversed (drawn as they were). The
    large shared set is built into a BVH once and cast against once; the small sets get scenes of
    their own and the nearest hit wins, instead of building two full-size scenes."""
    o3d = _open3d()

    rays = o3d.core.Tensor(_rays(camera))
    t0, ids0, n0 = _cast(*kept, rays)
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
        paint = np.full(t.shape + (3,), np.nan)
        t1, _, n1 = _cast(V, F, rays)
        nearer = t1 < t
        t[nearer], normals[nearer], paint[nearer] = t1[nearer], n1[nearer], colour
        images.append(_shade(camera, t, normals, paint))
    return images[0], images[1]


def save_png(f, pixels: np.ndarray) -> None:
    Image.fromarray(pixels, "RGB").save(f, "PNG", compress_level=6)

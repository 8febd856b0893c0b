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

WIDTH, HEIGHT = 640, 480
FRONT = np.array([0.93, 0.90, 0.83])
BACK = np.array([0.55, 0.62, 0.74])
FILLED = np.array([1.00, 0.50, 0.05])  # orange: triangles added by hole filling
REMOVED = np.array([0.86, 0.12, 0.12])  # red: triangles the repair removed


@dataclass
class Camera:
    centre: np.ndarray
    right: np.ndarray
    up: np.ndarray
    towards_viewer: np.ndarray
    pixel: float
    distance: float


def camera_for(V: np.ndarray, F: np.ndarray, extra_points: np.ndarray | None = None) -> Camera:
    used = np.unique(F.ravel()) if len(F) else np.arange(len(V))
    pts = V[used].astype(np.float64)
    if len(pts) > 200_000:
        pts = pts[:: len(pts) // 200_000 + 1]
    centre = pts.mean(axis=0)
    q = pts - centre
    _, vectors = np.linalg.eigh(q.T @ q)
    right, view = vectors[:, 2], vectors[:, 0]
    a = V[F[:, 0]].astype(np.float64)
    vector_area = np.cross(V[F[:, 1]] - a, V[F[:, 2]] - a).sum(axis=0) if len(F) else np.zeros(3)
    side = vector_area @ view
    if abs(side) < 1e-9 * max(np.abs(vector_area).sum(), 1e-30) or side == 0:
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


def render(V: np.ndarray, F: np.ndarray, camera: Camera, highlight: np.ndarray | None = None,
           highlight_color: np.ndarray = FILLED) -> np.ndarray:
    """An (HEIGHT, WIDTH, 3) uint8 image."""
    import open3d as o3d

    image = np.ones((HEIGHT, WIDTH, 3))
    if len(F) == 0:
        return (image * 255).astype(np.uint8)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(np.ascontiguousarray(V, dtype=np.float32)),
                        o3d.core.Tensor(np.ascontiguousarray(F, dtype=np.uint32)))
    xs = (np.arange(WIDTH) + 0.5 - WIDTH / 2) * camera.pixel
    ys = (HEIGHT / 2 - np.arange(HEIGHT) - 0.5) * camera.pixel
    origins = (camera.centre + camera.distance * camera.towards_viewer)[None, None, :] \
        + xs[None, :, None] * camera.right[None, None, :] + ys[:, None, None] * camera.up[None, None, :]
    rays = np.empty((HEIGHT, WIDTH, 6), np.float32)
    rays[..., :3] = origins
    rays[..., 3:] = -camera.towards_viewer
    hits = scene.cast_rays(o3d.core.Tensor(rays))
    t = hits["t_hit"].numpy()
    ids = hits["primitive_ids"].numpy()
    normals = hits["primitive_normals"].numpy().astype(np.float64)
    del scene, hits
    hit = np.isfinite(t)
    if not hit.any():
        return (image * 255).astype(np.uint8)
    n = normals[hit]
    facing = n @ camera.towards_viewer
    light = camera.towards_viewer + 0.35 * camera.up + 0.2 * camera.right
    light /= np.linalg.norm(light)
    diffuse = np.abs(n @ light)
    shade = 0.22 + 0.78 * diffuse
    base = np.where(facing[:, None] >= 0, FRONT, BACK)
    if highlight is not None and highlight.any():
        marked = highlight[ids[hit]]
        base[marked] = highlight_color
    image[hit] = base * shade[:, None]
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def save_png(f, pixels: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(pixels, "RGB").save(f, "PNG", compress_level=6)

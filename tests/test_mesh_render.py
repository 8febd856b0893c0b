"""The previews' numpy z-buffer draws what Open3D's ray caster drew (the renderer before it): the same
face under every pixel centre, at the same distance, with the same normal; and the repair no longer
imports Open3D at all."""
import subprocess
import sys

import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt

from smilepass.mesh import previews, render
from smilepass.mesh import synthetic as syn


def ray_cast(camera, V, F):
    """The reference: one ray per pixel centre, cast by Open3D's RaycastingScene (Embree), as
    render._rasterize's result (t_hit, face, normal per pixel)."""
    import open3d as o3d  # only here: the app never imports it

    shape = (render.HEIGHT, render.WIDTH)
    if len(F) == 0:
        return np.full(shape, np.inf, np.float32), np.zeros(shape, np.uint32), np.zeros(shape + (3,), np.float32)
    xs = (np.arange(render.WIDTH) + 0.5 - render.WIDTH / 2) * camera.pixel
    ys = (render.HEIGHT / 2 - np.arange(render.HEIGHT) - 0.5) * camera.pixel
    rays = np.empty(shape + (6,), np.float32)
    rays[..., :3] = (camera.centre + camera.distance * camera.towards_viewer) \
        + xs[None, :, None] * camera.right + ys[:, None, None] * camera.up
    rays[..., 3:] = -camera.towards_viewer
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(np.ascontiguousarray(V, np.float32)),
                        o3d.core.Tensor(np.ascontiguousarray(F, np.uint32)))
    hits = scene.cast_rays(o3d.core.Tensor(rays))
    return hits["t_hit"].numpy(), hits["primitive_ids"].numpy(), hits["primitive_normals"].numpy()


def assert_same_hits(ours, reference, faces_agree=0.999):
    (t, face, normal), (t_ref, face_ref, normal_ref) = ours, reference
    hit, hit_ref = np.isfinite(t), np.isfinite(t_ref)
    assert hit_ref.sum() > 1000
    # A pixel centre exactly on the outline can go either way: a handful at most.
    assert (hit != hit_ref).sum() <= 0.0005 * hit_ref.sum()
    both = hit & hit_ref
    assert (face[both] == face_ref[both]).mean() >= faces_agree
    same = both & (face == face_ref)
    assert np.abs(t[same] - t_ref[same]).max() < 1e-3 * float(np.nanmax(np.where(hit_ref, t_ref, np.nan)))
    assert np.abs(normal[same] - normal_ref[same]).max() < 1e-3


def test_an_arch_is_drawn_as_the_ray_caster_drew_it():
    V, F = syn.arch(60_000, seed=4)
    F, flipped = syn.flip_patch(V, F, syn.interior_vertex(V, F, np.random.default_rng(1)), 2.0)
    assert flipped > 100
    camera = render.camera_for(V, F)
    assert_same_hits(render._rasterize(camera, V, F), ray_cast(camera, V, F))


def test_overlapping_triangles_of_every_size_are_drawn_as_the_ray_caster_drew_them():
    """Needles, triangles larger than the picture, ones partly outside it, edge-on ones, several layers
    deep: the nearest one wins in every pixel."""
    rng = np.random.default_rng(7)
    box = np.array([[0, 0, 0], [60, 45, 20]], np.float64)
    V0, F0 = syn.arch(2_000, seed=1)
    corners = [rng.uniform(box[0], box[1], (900, 3))]  # 300 triangles of any size and shape
    centre = rng.uniform(box[0], box[1], (300, 1, 3))
    corners.append((centre + rng.normal(0, 0.3, (300, 3, 3))).reshape(-1, 3))  # 300 small ones
    needle = rng.uniform(box[0], box[1], (100, 1, 3)) + np.array([[0, 0, 0], [40, 30, 5], [40.05, 30, 5]])
    corners.append(needle.reshape(-1, 3))  # 100 needles across the picture
    corners.append(np.array([[-500, -500, 1], [500, -500, 1], [0, 500, 1]], np.float64))  # beyond the frame
    V = np.concatenate([V0.astype(np.float64) + [30, 22, 5]] + corners)
    F = np.concatenate([F0, np.arange(len(V0), len(V)).reshape(-1, 3)])
    camera = render.camera_for(V0.astype(np.float64) + [30, 22, 5], F0, extra_points=np.concatenate(corners[:3]))
    assert_same_hits(render._rasterize(camera, V, F), ray_cast(camera, V, F))
    # Nothing to draw: an empty picture.
    t, _, _ = render._rasterize(camera, V, F[:0])
    assert np.isinf(t).all()


def test_the_before_and_after_pictures_match_the_ray_casters(monkeypatch):
    """The whole pictures (shading, flipped faces drawn as they were, removed and added triangles and
    their rings), once drawn with the z-buffer and once with the ray caster in its place."""
    V, F = syn.arch(40_000, seed=6)
    rng = np.random.default_rng(3)
    F, _ = syn.flip_patch(V, F, syn.interior_vertex(V, F, rng), 2.5)
    flipped = np.zeros(len(F), bool)
    flipped[: len(F) // 50] = True
    debris_V, debris_F = syn.arch(500, seed=9)
    V0 = np.concatenate([V, debris_V * 0.05 + V[syn.interior_vertex(V, F, rng)] + [0, 0, 1.5]])
    F0 = np.concatenate([F, debris_F + len(V)])
    removed = np.zeros(len(F0), bool)
    removed[len(F):] = True
    hole = np.linalg.norm(V[F].mean(axis=1) - V[syn.interior_vertex(V, F, rng)], axis=1) < 0.8
    F1 = np.concatenate([F[~hole], F[hole]])  # the "filled" faces last, as hole filling adds them
    mesh = previews.RepairedMesh(V0, F0, removed, V, F1, int((~hole).sum()), flipped[~hole], 1e-7)
    ours = previews.render_previews(mesh)
    monkeypatch.setattr(render, "_rasterize", ray_cast)
    reference = previews.render_previews(mesh)
    for image, expected in zip(ours, reference, strict=True):
        differs = (np.abs(image.astype(int) - expected.astype(int)) > 2).any(axis=2)
        assert differs.sum() <= 0.001 * image.shape[0] * image.shape[1]
    red = (ours[0] == (render.REMOVED * 255 + 0.5).astype(np.uint8)).all(axis=2)
    orange = (ours[1] == (render.FILLED * 255 + 0.5).astype(np.uint8)).all(axis=2)
    assert red.sum() > 100 and orange.sum() > 100


@pytest.mark.parametrize("radius", [0, 1, 9, 12])
def test_the_mark_ring_is_the_distance_transforms_disc(radius):
    rng = np.random.default_rng(radius)
    for _ in range(20):
        mask = np.zeros((60, 80), bool)
        count = int(rng.integers(1, 6))
        mask[rng.integers(0, 60, count), rng.integers(0, 80, count)] = True
        distance = distance_transform_edt(~mask)
        assert np.array_equal(render._within(mask, radius), distance <= radius)
        # Both discs of a ring at once (they share the runs of equal half-width).
        outer, inner = render._within_each(mask, (radius, radius // 2))
        assert np.array_equal(outer, distance <= radius) and np.array_equal(inner, distance <= radius // 2)
    assert not render._within(np.zeros((5, 5), bool), 3).any()


def test_a_repair_with_previews_never_imports_open3d(tmp_path):
    """Importing Open3D cost 0.6-1 s of every repair's previews; nothing in smilepass.mesh needs it now."""
    from .meshgen import write_binary_stl

    V, F = syn.arch(20_000, seed=2)
    F = syn.punch_hole(V, F, syn.interior_vertex(V, F, np.random.default_rng(0)), 0.5)
    src = write_binary_stl(tmp_path / "a.stl", V, F)
    code = ("import sys\nfrom smilepass.mesh import repair\n"
            f"r = repair({str(src)!r}, {str(tmp_path / 'out')!r}, 'a')\n"
            "assert r.preview_after.exists() and r.report['holes_filled'] == 1\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('open3d', 'scipy.ndimage')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"

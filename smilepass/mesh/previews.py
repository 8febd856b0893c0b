"""The before and after pictures of a repair: which triangles each picture shows, and in what colour.

The before picture shows what the file had, with the triangles the repair removed in red; the after
picture the result, with the triangles hole filling added in orange. Both share one camera, framed on
the result and the removed triangles. render.py does the ray casting.

Removed triangles without a surface of their own (no area, or the same corners as a triangle already
drawn) are left out: they cannot be seen, and a ray tracer's BVH cannot split a heap of identical or
coincident triangles, so every ray hitting one would test them all (100,000 copies of one facet took
minutes). The result itself has none: the repair removed them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import render
from .topology import duplicate_face_mask, face_shape
from .webcopy import MAX_TRIANGLES, Clustered, cluster

# Above twice this many kept faces, the kept surface is drawn from a copy clustered to about this many
# (webcopy.cluster, the repaired web copy's own when the pipeline passes it, so it is made once): a
# 640 x 480 picture of an arch has about 0.1 mm pixels, a 150,000-face copy 0.3 mm
# faces, and building the ray tracer's BVH over 1,000,000 faces cost more than the rest of the pictures.
# Removed and added faces are drawn as they are (few, and they must all show).
PREVIEW_FACES = MAX_TRIANGLES


@dataclass
class RepairedMesh:
    """What the pictures are made of: the input (after the exact weld), which of its faces the repair
    removed, and the result, whose first `n_kept` faces come from the input (`flipped`: turned by the
    repair) and the rest were added by hole filling."""

    V0: np.ndarray
    F0: np.ndarray
    removed: np.ndarray  # bool per face of F0
    V: np.ndarray
    F: np.ndarray
    n_kept: int
    flipped: np.ndarray  # bool per kept face
    min_height: float  # a triangle no higher than this over its longest edge has no area to speak of


def render_previews(mesh: RepairedMesh, progress=None, clustered: Clustered | None = None,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(before, after) as (HEIGHT, WIDTH, 3) uint8 arrays. `progress(fraction)` is called on the way.
    `clustered`: a clustered copy of (mesh.V, mesh.F), when one was made for the web copy."""
    removed_faces = visible_removed(mesh)
    camera = render.camera_for(mesh.V, mesh.F, extra_points=np.take(mesh.V0, removed_faces.ravel(), axis=0))
    if progress is not None:
        progress(0.1)
    n_kept = mesh.n_kept
    added = mesh.F[n_kept:]
    added = added[~face_shape(mesh.V, added, mesh.min_height)[1]]
    kept_V, kept_F, kept_flipped = mesh.V, mesh.F[:n_kept], mesh.flipped[:n_kept]
    if n_kept > 2 * PREVIEW_FACES:
        if clustered is None:
            clustered = cluster(kept_V, kept_F, PREVIEW_FACES)
        kept = clustered.source < n_kept  # its faces from hole filling are drawn as they are, below
        kept_V, kept_F, kept_flipped = clustered.V, clustered.F[kept], kept_flipped[clustered.source[kept]]
    return render.render_before_after(
        camera, kept=(kept_V, kept_F), removed=(mesh.V0, removed_faces), added=(mesh.V, added),
        kept_flipped=kept_flipped)


def visible_removed(mesh: RepairedMesh) -> np.ndarray:
    """The removed faces (rows of F0) worth drawing: with an area, and each place drawn once (a removed
    copy of a kept face, or of another removed face, is left out). Costs O(removed), plus one pass over
    the kept faces' corners."""
    faces = mesh.F0[mesh.removed]
    if len(faces) == 0:
        return faces
    faces = faces[~face_shape(mesh.V0, faces, mesh.min_height)[1]]  # thin includes repeated corners
    if len(faces) == 0:
        return faces
    # Only a kept face whose three corners all belong to removed faces can be one of their copies.
    corner_of_removed = np.zeros(len(mesh.V0), bool)
    corner_of_removed[faces.ravel()] = True
    # Tested corner by corner, so that only the few faces whose first corner qualifies are gathered (all of
    # F0's kept rows, gathered and tested at once, cost 40 ms at 1M).
    kept = np.flatnonzero(corner_of_removed[mesh.F0[:, 0]])
    kept = kept[~mesh.removed[kept]]
    for k in (1, 2):
        kept = kept[corner_of_removed[mesh.F0[kept, k]]]
    kept = mesh.F0[kept]
    copies = duplicate_face_mask(np.concatenate([kept, faces]), len(mesh.V0))[len(kept):]
    return faces[~copies]


def save_previews(outputs, images: tuple[np.ndarray, np.ndarray], before_path, after_path) -> None:
    """Write both pictures as PNG through `outputs` (an AtomicOutputs)."""
    for path, pixels in ((before_path, images[0]), (after_path, images[1])):
        with outputs.open(path) as f:
            render.save_png(f, pixels)

"""Helpers for the scan-pipeline tests: files in every supported format (good and bad), and a topology
check of a written result. The arch surfaces themselves come from smilepass.mesh.synthetic."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from smilepass.mesh.readers import STL_RECORD, load_file
from smilepass.mesh.topology import Edges, boundary_loop_sizes, duplicate_face_mask, face_shape
from smilepass.mesh.weld import weld_exact

# Beside the clone by default; SMILEPASS_TEST_MESHES points elsewhere (e.g. from a git worktree).
SHARED_MESHES = Path(os.environ.get("SMILEPASS_TEST_MESHES")
                     or Path(__file__).resolve().parents[2] / "shared" / "testdata" / "meshes")


def binary_stl_bytes(corners: np.ndarray, header: bytes = b"test mesh") -> bytes:
    """Binary STL of (3n, 3) corners."""
    n = len(corners) // 3
    records = np.zeros(n, STL_RECORD)
    records["v"] = corners.reshape(n, 3, 3)
    return header.ljust(80, b" ")[:80] + np.array([n], "<u4").tobytes() + records.tobytes()


def write_binary_stl(path: Path, V: np.ndarray, F: np.ndarray, header: bytes = b"test mesh") -> Path:
    path.write_bytes(binary_stl_bytes(V[F].reshape(-1, 3).astype(np.float32), header))
    return path


def write_ascii_stl(path: Path, V: np.ndarray, F: np.ndarray) -> Path:
    lines = ["solid test"]
    for tri in F:
        lines.append("  facet normal 0 0 0\n    outer loop")
        lines += [f"      vertex {V[i, 0]:.7e} {V[i, 1]:.7e} {V[i, 2]:.7e}" for i in tri]
        lines.append("    endloop\n  endfacet")
    lines.append("endsolid test\n")
    path.write_text("\n".join(lines))
    return path


def ply_header(fmt: str, n_vertices: int, n_faces: int, coord: str = "float", extra: str = "") -> str:
    return (f"ply\nformat {fmt} 1.0\ncomment test\nelement vertex {n_vertices}\n"
            f"property {coord} x\nproperty {coord} y\nproperty {coord} z\n{extra}"
            f"element face {n_faces}\nproperty list uchar int vertex_indices\nend_header\n")


def write_binary_ply(path: Path, V: np.ndarray, F: np.ndarray, coord: str = "float") -> Path:
    vt = "<f8" if coord == "double" else "<f4"
    faces = np.zeros(len(F), np.dtype([("n", "u1"), ("v", "<i4", (3,))]))
    faces["n"] = 3
    faces["v"] = F
    with open(path, "wb") as f:
        f.write(ply_header("binary_little_endian", len(V), len(F), coord).encode())
        f.write(np.ascontiguousarray(V, dtype=vt).tobytes())
        f.write(faces.tobytes())
    return path


def write_ascii_ply(path: Path, V: np.ndarray, F: np.ndarray) -> Path:
    body = [f"{x:.7g} {y:.7g} {z:.7g}" for x, y, z in V] + [f"3 {a} {b} {c}" for a, b, c in F]
    path.write_text(ply_header("ascii", len(V), len(F)) + "\n".join(body) + "\n")
    return path


def topology(path: Path) -> dict:
    """What a written mesh looks like, counted independently of the pipeline's own report."""
    raw = load_file(path)
    V, inverse, _ = weld_exact(raw.vertices)
    F = inverse.reshape(-1, 3) if raw.faces is None else inverse[raw.faces]
    e = Edges(F, len(V))
    h1, h2 = e.pairs(only_manifold=True)
    tails = F.ravel()
    from smilepass.mesh.topology import manifold_components

    n_components, _ = manifold_components(e)
    repeated = (F[:, 0] == F[:, 1]) | (F[:, 1] == F[:, 2]) | (F[:, 0] == F[:, 2])
    bnd = np.flatnonzero(e.counts == 1)
    return {
        "V": V,
        "F": F,
        "triangles": len(F),
        "non_manifold_edges": int((e.counts > 2).sum()),
        "boundary_edges": len(bnd),
        "duplicates": int(duplicate_face_mask(F, len(V)).sum()),
        "degenerate": int((repeated | _thin(V, F)).sum()),
        "same_direction_edges": int((tails[h1] == tails[h2]).sum()),  # inconsistent winding
        "components": int(n_components),
        "loop_edges": sorted(boundary_loop_sizes(e), reverse=True),
    }




def _thin(V: np.ndarray, F: np.ndarray) -> np.ndarray:
    """Triangles thinner than 1e-6 of the bounding-box diagonal (no area to speak of)."""
    if len(F) == 0:
        return np.zeros(0, bool)
    diag = float(np.linalg.norm(V.max(axis=0).astype(np.float64) - V.min(axis=0)))
    return face_shape(V, F, 1e-6 * diag)[1]

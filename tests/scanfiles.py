"""Small synthetic scans for the web and worker tests: an arch-like open surface (a U-shaped,
bumpy strip whose outer edge is the gum margin) written as binary STL, with optional holes."""
import struct

import numpy as np


def arch_surface(rows: int = 60, cols: int = 200, holes=((20, 50), (35, 140))):
    """Vertices and triangles of a U-shaped open surface; each hole removes a 2x2 patch of quads."""
    t = np.linspace(-np.pi * 0.45, np.pi * 0.45, cols)
    height = np.linspace(0.0, 10.0, rows)
    radius = 25.0 + 1.5 * np.sin(t * 14) ** 2  # tooth-like bumps along the arch
    x = (radius[None, :] - height[:, None] * 0.3) * np.sin(t)[None, :]
    y = (radius[None, :] - height[:, None] * 0.3) * np.cos(t)[None, :]
    z = np.broadcast_to(height[:, None], (rows, cols)) + 0.8 * np.cos(t * 14)[None, :] ** 2
    vertices = np.stack([x, y, z], axis=-1).reshape(-1, 3)
    removed = {(r + dr, c + dc) for r, c in holes for dr in (0, 1) for dc in (0, 1)}
    faces = []
    for r in range(rows - 1):
        for c in range(cols - 1):
            if (r, c) in removed:
                continue
            a, b, d, e = r * cols + c, r * cols + c + 1, (r + 1) * cols + c, (r + 1) * cols + c + 1
            faces.append((a, b, e))
            faces.append((a, e, d))
    return vertices, np.array(faces, dtype=np.int64)


def binary_stl(vertices, faces, header=b"SmilePass test arch") -> bytes:
    tri = vertices[faces].astype("<f4")
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]).astype("<f4")
    records = np.zeros(len(faces), dtype=[("n", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])
    records["n"], records["v"] = normals, tri
    return header.ljust(80, b" ")[:80] + struct.pack("<I", len(faces)) + records.tobytes()


def arch_stl(rows=60, cols=200, **kwargs) -> bytes:
    return binary_stl(*arch_surface(rows, cols, **kwargs))

"""numpy writers: binary STL and binary little-endian PLY, written in chunks to an open file."""
from __future__ import annotations

import numpy as np

from .readers import STL_RECORD
from .topology import face_cross, in_background

_CHUNK = 1 << 18
_BIG_CHUNK = 1 << 18  # 13 MB of STL records per write
STL_HEADER = b"SmilePass repaired scan (binary STL)"


def face_normals(V: np.ndarray, F: np.ndarray) -> np.ndarray:
    """Unit normals, float32 (what STL stores)."""
    cx, cy, cz = face_cross(V, F, np.float32)
    length = np.sqrt(cx * cx + cy * cy + cz * cz)
    length[length == 0] = 1.0
    out = np.empty((len(F), 3), np.float32)
    np.divide(cx, length, out=out[:, 0])
    np.divide(cy, length, out=out[:, 1])
    np.divide(cz, length, out=out[:, 2])
    return out


def vertex_normals(V: np.ndarray, F: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (the unnormalised face normal is the area weight)."""
    n = face_cross(V, F)
    out = np.zeros((len(V), 3))
    for k in range(3):
        corner = F[:, k]
        for c in range(3):
            out[:, c] += np.bincount(corner, weights=n[c], minlength=len(V))
    length = np.linalg.norm(out, axis=1)
    length[length == 0] = 1.0
    return (out / length[:, None]).astype(np.float32)


def write_stl(f, V: np.ndarray, F: np.ndarray) -> None:
    """Binary STL. The header never starts with 'solid' (some readers then take it for ASCII)."""
    f.write(STL_HEADER.ljust(80, b" "))
    f.write(np.array([len(F)], "<u4").tobytes())
    for start in range(0, len(F), _BIG_CHUNK):
        part = F[start:start + _BIG_CHUNK]
        normals = in_background(face_normals, V, part)  # overlaps with the gather below
        records = np.zeros(len(part), STL_RECORD)
        records["v"] = np.take(V, part, axis=0)
        records["normal"] = normals()
        records.tofile(f)


def write_ply(f, V: np.ndarray, F: np.ndarray, colors: np.ndarray | None = None, normals: bool = True) -> None:
    """Binary little-endian PLY; coordinates as float, or double when V is float64."""
    coord = "double" if V.dtype == np.float64 else "float"
    fields = [("x", "<f8" if coord == "double" else "<f4"), ("y", "<f8" if coord == "double" else "<f4"),
              ("z", "<f8" if coord == "double" else "<f4")]
    header = ["ply", "format binary_little_endian 1.0", "comment SmilePass repaired scan", f"element vertex {len(V)}"]
    header += [f"property {coord} {c}" for c in "xyz"]
    if normals:
        header += [f"property float {c}" for c in ("nx", "ny", "nz")]
        fields += [("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
    channels = ("red", "green", "blue", "alpha")[: colors.shape[1]] if colors is not None else ()
    header += [f"property uchar {c}" for c in channels]
    fields += [(c, "u1") for c in channels]
    header += [f"element face {len(F)}", "property list uchar int vertex_indices", "end_header"]
    f.write(("\n".join(header) + "\n").encode("ascii"))

    vdtype = np.dtype(fields)
    vn = vertex_normals(V, F) if normals else None
    for start in range(0, len(V), _CHUNK):
        stop = min(start + _CHUNK, len(V))
        rec = np.empty(stop - start, vdtype)
        for k, c in enumerate("xyz"):
            rec[c] = V[start:stop, k]
        if normals:
            for k, c in enumerate(("nx", "ny", "nz")):
                rec[c] = vn[start:stop, k]
        for k, c in enumerate(channels):
            rec[c] = colors[start:stop, k]
        rec.tofile(f)
    fdtype = np.dtype([("n", "u1"), ("v", "<i4", (3,))])
    for start in range(0, len(F), _CHUNK):
        part = F[start:start + _CHUNK]
        rec = np.empty(len(part), fdtype)
        rec["n"] = 3
        rec["v"] = part
        rec.tofile(f)

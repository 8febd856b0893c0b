"""inspect_file(): every refusal says one specific sentence; sound files of every format pass."""
import struct
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from smilepass.mesh import FileInfo, MeshRejected, inspect_file
from smilepass.mesh.synthetic import arch

from .meshgen import binary_stl_bytes, ply_header, write_ascii_ply, write_ascii_stl, write_binary_ply, write_binary_stl


@pytest.fixture(scope="module")
def small():
    return arch(2_000)


def refused(path) -> str:
    with pytest.raises(MeshRejected) as info:
        inspect_file(path)
    message = str(info.value)
    assert "\n" not in message and message.endswith(".") and 10 < len(message) < 300, message
    return message


# --- accepted -------------------------------------------------------------------------------------


def test_every_format_is_recognised_from_its_bytes(tmp_path, small):
    V, F = small
    cases = {
        "a.stl": (write_binary_stl, "stl-binary", ".stl"),
        "b.stl": (write_ascii_stl, "stl-ascii", ".stl"),
        "c.ply": (write_binary_ply, "ply-binary", ".ply"),
        "d.ply": (write_ascii_ply, "ply-ascii", ".ply"),
    }
    for name, (writer, fmt, ext) in cases.items():
        info = inspect_file(writer(tmp_path / name, V, F))
        assert info == FileInfo(fmt, len(F), None if fmt.startswith("stl") else len(V), ext)
    # The extension does not decide: a PLY named .stl is still a PLY (and is repaired as one).
    write_binary_ply(tmp_path / "ply-named.stl", V, F)
    assert inspect_file(tmp_path / "ply-named.stl").format == "ply-binary"


def test_binary_stl_whose_header_starts_with_solid_is_accepted(tmp_path, small):
    V, F = small
    path = write_binary_stl(tmp_path / "solidworks.stl", V, F, header=b"solid part exported by SolidWorks")
    assert inspect_file(path).format == "stl-binary"
    assert inspect_file(path).triangles == len(F)


def test_ply_variants_are_read(tmp_path, small):
    V, F = small
    # Big-endian, with an unknown element before the vertices and extra face properties.
    camera = "element camera 1\nproperty float view_px\nproperty list uchar float params\n"
    header = ("ply\nformat binary_big_endian 1.0\n" + camera + f"element vertex {len(V)}\n"
              "property float x\nproperty float y\nproperty float z\nproperty uchar red\nproperty uchar green\n"
              f"property uchar blue\nelement face {len(F)}\nproperty list uchar int vertex_indices\n"
              "property int flags\nend_header\n")
    vert = np.zeros(len(V), np.dtype([("p", ">f4", (3,)), ("rgb", "u1", (3,))]))
    vert["p"] = V
    faces = np.zeros(len(F), np.dtype([("n", "u1"), ("v", ">i4", (3,)), ("flags", ">i4")]))
    faces["n"] = 3
    faces["v"] = F
    cam = np.array([1.5], ">f4").tobytes() + bytes([2]) + np.array([1, 2], ">f4").tobytes()
    path = tmp_path / "be.ply"
    path.write_bytes(header.encode() + cam + vert.tobytes() + faces.tobytes())
    assert inspect_file(path) == FileInfo("ply-binary", len(F), len(V), ".ply")


# --- STL refusals ---------------------------------------------------------------------------------


def test_truncated_binary_stl(tmp_path, small):
    V, F = small
    data = binary_stl_bytes(V[F].reshape(-1, 3).astype(np.float32))
    (tmp_path / "t.stl").write_bytes(data[: len(data) // 3])
    message = refused(tmp_path / "t.stl")
    assert message.startswith(f"Binary STL is truncated: the header announces {len(F):,} triangles")
    assert f"({84 + 50 * len(F):,} bytes) but the file has {len(data) // 3:,} bytes" in message


def test_binary_stl_header_claiming_2_to_the_32_triangles(tmp_path):
    data = b"x" * 80 + struct.pack("<I", 2**32 - 1) + bytes(50 * 100)
    (tmp_path / "liar.stl").write_bytes(data)
    message = refused(tmp_path / "liar.stl")
    assert "4,294,967,295 triangles (214,748,364,834 bytes)" in message


def test_binary_stl_with_bytes_beyond_its_triangles(tmp_path, small):
    V, F = small
    (tmp_path / "long.stl").write_bytes(binary_stl_bytes(V[F].reshape(-1, 3).astype(np.float32)) + b"\0" * 7)
    assert "does not match its header" in refused(tmp_path / "long.stl")


def test_solid_headed_binary_stl_that_is_truncated_is_called_binary(tmp_path, small):
    V, F = small
    data = binary_stl_bytes(V[F].reshape(-1, 3).astype(np.float32), header=b"solid CAD export")
    (tmp_path / "s.stl").write_bytes(data[:-10])
    assert refused(tmp_path / "s.stl").startswith("Binary STL is truncated")


def test_zero_triangle_binary_stl(tmp_path):
    (tmp_path / "zero.stl").write_bytes(b"empty".ljust(80) + struct.pack("<I", 0))
    assert "no triangles" in refused(tmp_path / "zero.stl")


def test_ascii_stl_without_facets(tmp_path):
    (tmp_path / "a.stl").write_text("solid nothing\nendsolid nothing\n")
    assert "no facets" in refused(tmp_path / "a.stl")


def test_ascii_stl_malformed(tmp_path):
    good = "facet normal 0 0 1\n outer loop\n vertex 0 0 0\n vertex 1 0 0\n vertex 0 1 0\n endloop\nendfacet\n"
    (tmp_path / "cut.stl").write_text("solid x\n" + good + "facet normal 0 0 1\n outer loop\n vertex 0 0 0\n")
    assert "truncated or malformed" in refused(tmp_path / "cut.stl")
    (tmp_path / "two.stl").write_text("solid x\n" + good.replace("vertex 1 0 0", "vertex 1 0") + "endsolid\n")
    assert "three coordinates" in refused(tmp_path / "two.stl")
    (tmp_path / "word.stl").write_text("solid x\n" + good.replace("vertex 1 0 0", "vertex 1 0 zero") + "endsolid\n")
    assert "not numbers" in refused(tmp_path / "word.stl")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_coordinates(tmp_path, small, bad):
    V, F = small
    V = V.copy()
    V[5] = [0, bad, 0]
    assert "NaN or infinity" in refused(write_binary_stl(tmp_path / "n.stl", V, F))
    assert "NaN or infinity" in refused(write_binary_ply(tmp_path / "n.ply", V, F))
    assert "NaN or infinity" in refused(write_ascii_stl(tmp_path / "na.stl", V, F))
    assert "NaN or infinity" in refused(write_ascii_ply(tmp_path / "na.ply", V, F))


# --- other files disguised as scans ----------------------------------------------------------------


@pytest.mark.parametrize("content, what", [
    (b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head></html>\n" * 3, "an HTML page"),
    (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(200), "a ZIP archive"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200), "a PNG image"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(200), "a JPEG image"),
    (b"GIF89a" + bytes(200), "a GIF image"),
    (b"%PDF-1.7\n" + bytes(200), "a PDF document"),
])
def test_other_file_types_say_what_they_are(tmp_path, content, what):
    (tmp_path / "scan.stl").write_bytes(content)
    assert refused(tmp_path / "scan.stl").startswith(f"This file is {what}")


def test_zip_message_is_exact(tmp_path):
    (tmp_path / "x.stl").write_bytes(b"PK\x03\x04" + bytes(500))
    assert refused(tmp_path / "x.stl") == "This file is a ZIP archive, not an STL or PLY scan."


def test_empty_and_tiny_and_text_files(tmp_path):
    (tmp_path / "empty.stl").write_bytes(b"")
    assert refused(tmp_path / "empty.stl") == "The file is empty."
    (tmp_path / "tiny.stl").write_bytes(b"\x01\x02\x03")
    assert "too short" in refused(tmp_path / "tiny.stl")
    (tmp_path / "notes.stl").write_text("These are not the droids you are looking for.\n" * 5)
    assert "text but neither" in refused(tmp_path / "notes.stl")
    (tmp_path / "model.stl").write_text("# OBJ\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    assert "OBJ" in refused(tmp_path / "model.stl")
    assert "could not be found" in refused(tmp_path / "missing.stl")


# --- PLY refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("header, expect", [
    ("plx\nformat ascii 1.0\nend_header\n", "neither an ASCII STL"),
    ("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\n", "no 'end_header'"),
    ("ply\nformat binary_middle_endian 1.0\nend_header\n", "format 'binary_middle_endian' is unknown"),
    ("ply\nformat ascii 1.0\nelement vertex 3\nproperty flaot x\nend_header\n", "line 4 ('property flaot x')"),
    ("ply\nformat ascii 1.0\nproperty float x\nend_header\n", "is not valid"),
    ("ply\nformat ascii 1.0\nelement vertex three\nend_header\n", "is not valid"),
    ("ply\nelement vertex 3\nproperty float x\nend_header\n", "no 'format' line"),
    ("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nend_header\n0 0\n",
     "x, y and z"),
    ("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty float z\n"
     "end_header\n0 0 0\n", "point cloud"),
    ("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty float z\n"
     "element tristrips 1\nproperty list int int vertex_indices\nend_header\n0 0 0\n3 0 0 0\n", "triangle strips"),
    ("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty float z\n"
     "element face 0\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n", "no triangles"),
])
def test_ply_bad_headers(tmp_path, header, expect):
    (tmp_path / "bad.ply").write_text(header)
    assert expect in refused(tmp_path / "bad.ply")


def test_ply_quads_binary_and_ascii(tmp_path, small):
    V, F = small
    quads = np.concatenate([F[:, :3], F[:, :1]], axis=1)[:10]
    faces = np.zeros(10, np.dtype([("n", "u1"), ("v", "<i4", (4,))]))
    faces["n"] = 4
    faces["v"] = quads
    path = tmp_path / "quads.ply"
    path.write_bytes(ply_header("binary_little_endian", len(V), 10).encode()
                     + V.astype("<f4").tobytes() + faces.tobytes())
    assert refused(path).startswith("The PLY file has faces that are not triangles (face 0 has 4 corners)")

    # One quad in the middle of triangles: the face records stop lining up after it.
    tri = np.zeros(len(F), np.dtype([("n", "u1"), ("v", "<i4", (3,))]))
    tri["n"] = 3
    tri["v"] = F
    quad = np.zeros(1, faces.dtype)
    quad["n"] = 4
    quad["v"] = [0, 1, 2, 3]
    path.write_bytes(ply_header("binary_little_endian", len(V), len(F) + 1).encode() + V.astype("<f4").tobytes()
                     + tri[:100].tobytes() + quad.tobytes() + tri[100:].tobytes())
    assert "face 100 has 4 corners" in refused(path)

    lines = [f"{x} {y} {z}" for x, y, z in V] + [f"3 {a} {b} {c}" for a, b, c in F]
    lines.insert(len(V) + 7, "4 0 1 2 3")
    (tmp_path / "q.ply").write_text(ply_header("ascii", len(V), len(F) + 1) + "\n".join(lines) + "\n")
    assert "face 7 has 4 corners" in refused(tmp_path / "q.ply")


def test_ply_declaring_a_billion_vertices_is_refused_at_once(tmp_path):
    path = tmp_path / "huge.ply"
    header = ("ply\nformat binary_little_endian 1.0\nelement vertex 1000000000\nproperty float x\n"
              "property float y\nproperty float z\nelement face 1\nproperty list uchar int vertex_indices\n"
              "end_header\n")
    path.write_bytes(header.encode() + bytes(181 - len(header)))
    assert path.stat().st_size == 181
    # "At once" measured as work, not time: the header's promise is checked against the file size
    # before anything is allocated for a billion vertices (12 GB), so the peak stays tiny.
    tracemalloc.start()
    message = refused(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert "declares 1,000,000,000 vertices and 1 face" in message
    assert "at least 12,000,000,013 bytes" in message and "has only" in message
    assert peak < 2_000_000


def test_ply_counts_beyond_the_file(tmp_path, small):
    V, F = small
    path = write_binary_ply(tmp_path / "b.ply", V, F)
    data = path.read_bytes()
    path.write_bytes(data[:-1000])
    assert "truncated" in refused(path)
    write_ascii_ply(tmp_path / "a.ply", V, F)
    text = (tmp_path / "a.ply").read_text().splitlines()
    (tmp_path / "a.ply").write_text("\n".join(text[:-50]) + "\n")
    assert f"but it has only {len(V) + len(F) - 50:,} lines of data" in refused(tmp_path / "a.ply")


def test_ply_face_index_out_of_range(tmp_path, small):
    """Open3D 0.20 loads such a file without complaint and then crashes (SIGSEGV) in
    compute_vertex_normals; it must never get that far."""
    V, F = small
    for bad in (len(V), -1, 10**6):
        G = F.copy()
        G[17, 1] = bad
        message = refused(write_binary_ply(tmp_path / "r.ply", V, G))
        assert f"face 17 refers to vertex {bad:,}" in message and f"only {len(V):,} vertices" in message
        assert "face 17" in refused(write_ascii_ply(tmp_path / "r2.ply", V, G))


def test_inspect_reads_binary_stl_in_bounded_memory(tmp_path):
    V, F = arch(400_000)
    path = write_binary_stl(tmp_path / "big.stl", V, F)
    tracemalloc.start()
    info = inspect_file(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert info.triangles == len(F)
    assert peak < 0.5 * path.stat().st_size  # read in chunks: about 10 MB whatever the file size


def test_package_import_and_inspection_do_not_load_open3d(tmp_path, small):
    """A forked RQ work horse that inherited an initialised OpenMP runtime can hang: Open3D is never
    imported (the previews are drawn with numpy; tests/test_mesh_render.py checks a repair with them)."""
    V, F = small
    path = write_binary_stl(tmp_path / "a.stl", V, F)
    code = ("import sys, smilepass.mesh as m; m.inspect_file(sys.argv[1]); "
            "m.repair(sys.argv[1], sys.argv[2], 'x', preview=False); print('open3d' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path)], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"

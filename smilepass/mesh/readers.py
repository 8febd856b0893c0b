"""Structural checks and numpy readers for STL (binary/ASCII) and PLY (binary/ASCII).

`inspect_file()` decides what a file is from its bytes (never from its name), checks that its structure
is sound and refuses it with one specific sentence (`MeshRejected`) otherwise. `load_file()` runs the
very same checks in the same pass and returns the arrays. No mesh library ever sees an unchecked file.
One check is inspect_file()'s alone: a file whose triangles are mostly without a surface (no area, or
the same corners as another triangle) is refused at once. repair() counts those on the welded mesh
anyway (with the same definitions), so load_file() leaves that count to it.

Binary formats are read in fixed-size chunks with numpy (never record by record in Python), so a
100 MB upload costs about the size of its vertex array in memory; sizes announced in headers are
compared with the file size before anything is allocated.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import MeshRejected, Phrase

# A full-arch intraoral scan is 100k-1M triangles; 5M leaves room for lab scanners while keeping the
# pipeline's memory (about 250 bytes per triangle) bounded.
MAX_TRIANGLES = 5_000_000
MAX_VERTICES = 3 * MAX_TRIANGLES

STL_RECORD = np.dtype([("normal", "<f4", (3,)), ("v", "<f4", (3, 3)), ("attr", "<u2")])
assert STL_RECORD.itemsize == 50

_CHUNK_TRIANGLES = 1 << 16  # 3.3 MB of binary STL per read
_HEAD_BYTES = 4096
_PLY_HEADER_MAX = 1 << 16


@dataclass
class FileInfo:
    format: str  # "stl-binary" | "stl-ascii" | "ply-binary" | "ply-ascii"
    triangles: int
    vertices: int | None  # None for STL: it stores three corners per triangle, no shared vertices
    extension: str  # ".stl" | ".ply": the format the repaired file is written in


@dataclass
class RawMesh:
    """What a file holds. For STL `faces` is None and `vertices` holds 3 corners per triangle."""

    info: FileInfo
    vertices: np.ndarray  # (n, 3) float32, or float64 for PLY files that store doubles
    faces: np.ndarray | None  # (m, 3) int32/int64 for PLY
    colors: np.ndarray | None = None  # (n, 3|4) uint8 PLY vertex colours, kept through the repair


# More than this share of triangles without a surface of their own (no area, or a copy of another
# triangle) and the file is refused: it is an export gone wrong, not a scan, and would only cost time.
DEGENERATE_MAX_SHARE = 0.5


def mostly_degenerate(bad: int, triangles: int) -> MeshRejected:
    return MeshRejected(
        "The scan is mostly degenerate: %(bad)s of its %(triangles)s triangles have no area or are copies of "
        "other triangles; export it again from the scanner software.", bad=bad, triangles=triangles)


# A triangle no higher over its longest edge than this fraction of the bounding-box diagonal has no
# area to speak of (repair()'s definition with its default weld tolerance: RepairOptions.min_height).
THIN_FRACTION = 1e-6


class _SurfaceCount:
    """Counts, while a file is read, the triangles without a surface of their own: thin ones (see
    THIN_FRACTION: repeated corners, needles, corners on a line) and copies of another triangle's three
    corners in either order. Keeps a 64-bit key per triangle with an area; when the bounding box is not
    known beforehand (text files: read once), a float32 height per triangle as well."""

    _SLICE = 1 << 14  # triangles per step: a few MB of temporaries

    def __init__(self, diagonal: float | None = None):
        self.diagonal = diagonal
        self.triangles = 0
        self.keys: list[np.ndarray] = []
        self.heights: list[np.ndarray] = []
        self.low = np.full(3, np.inf)
        self.high = np.full(3, -np.inf)
        self._rest = np.empty((0, 3), np.float32)  # corners of a facet a text block cut in two

    def add(self, corners: np.ndarray) -> None:
        """corners: (3k, 3) or (k, 3, 3), the corners of k triangles (text readers may pass any number of
        corners: the ones of an unfinished triangle wait for the next call)."""
        corners = corners.reshape(-1, 3)
        if len(self._rest):
            corners = np.concatenate([self._rest, corners])
        whole = len(corners) - len(corners) % 3
        self._rest = corners[whole:].copy()
        corners = corners[:whole].reshape(-1, 3, 3)
        for start in range(0, len(corners), self._SLICE):
            self._add(np.ascontiguousarray(corners[start:start + self._SLICE]))

    def _add(self, corners: np.ndarray) -> None:
        self.triangles += len(corners)
        # Column by column: numpy reduces a length-3 inner axis slowly.
        a, b, c = ([np.ascontiguousarray(corners[:, k, j], dtype=np.float64) for j in range(3)] for k in range(3))
        if self.diagonal is None:
            self.low = np.minimum(self.low, [min(a[j].min(), b[j].min(), c[j].min()) for j in range(3)])
            self.high = np.maximum(self.high, [max(a[j].max(), b[j].max(), c[j].max()) for j in range(3)])
        with np.errstate(invalid="ignore", divide="ignore"):  # a text file's NaN is refused after reading
            ab = [b[j] - a[j] for j in range(3)]
            ac = [c[j] - a[j] for j in range(3)]
            bc = [c[j] - b[j] for j in range(3)]
            cross = [ab[1] * ac[2] - ab[2] * ac[1], ab[2] * ac[0] - ab[0] * ac[2], ab[0] * ac[1] - ab[1] * ac[0]]
            twice_area = np.sqrt(cross[0] ** 2 + cross[1] ** 2 + cross[2] ** 2)
            longest = np.maximum(np.maximum(ab[0] ** 2 + ab[1] ** 2 + ab[2] ** 2, ac[0] ** 2 + ac[1] ** 2 + ac[2] ** 2),
                                 bc[0] ** 2 + bc[1] ** 2 + bc[2] ** 2)
            np.sqrt(longest, out=longest)
            del a, b, c, ab, ac, bc, cross
            height = np.where(longest > 0, twice_area / longest, 0.0)
        if self.diagonal is None:
            self.heights.append(height.astype(np.float32))
        else:
            corners = corners[height > THIN_FRACTION * self.diagonal]
        word = np.uint32 if corners.dtype.itemsize == 4 else np.uint64
        bits = corners.view(word).astype(np.uint64)  # (k, 3, 3) coordinate bit patterns
        corner_hash = bits[:, :, 0] * _MIX[0]
        corner_hash ^= bits[:, :, 1]
        corner_hash *= _MIX[1]
        corner_hash ^= bits[:, :, 2]
        corner_hash *= _MIX[2]
        corner_hash ^= corner_hash >> np.uint64(29)
        corner_hash.sort(axis=1)  # the same key whatever the corner order or winding
        key = corner_hash[:, 0] * _MIX[0]
        key ^= corner_hash[:, 1]
        key *= _MIX[1]
        key ^= corner_hash[:, 2]
        key *= _MIX[2]
        key ^= key >> np.uint64(31)
        self.keys.append(key)

    def check(self) -> None:
        if not self.keys:
            return
        keys = np.concatenate(self.keys)
        self.keys = []
        if self.diagonal is None:
            heights = np.concatenate(self.heights)
            self.heights = []
            keys = keys[heights > np.float32(THIN_FRACTION * float(np.linalg.norm(self.high - self.low)))]
            del heights
        keys.sort()
        bad = self.triangles - len(keys) + int(np.count_nonzero(keys[1:] == keys[:-1]))
        if bad > DEGENERATE_MAX_SHARE * self.triangles:
            raise mostly_degenerate(bad, self.triangles)


_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0xFF51AFD7ED558CCD))


def inspect_file(path) -> FileInfo:
    """Check the file's structure without building a mesh; raise MeshRejected with one sentence."""
    return _read(Path(path), load=False).info


def load_file(path, progress=None) -> RawMesh:
    """The same checks as inspect_file(), and the arrays (one pass over the file).
    `progress(fraction)` is called while large STL files are read."""
    return _read(Path(path), load=True, progress=progress)


# ---------------------------------------------------------------------------------------------------
# Sniffing

_OTHER_FORMATS = [
    (b"PK\x03\x04", Phrase("a ZIP archive")),
    (b"PK\x05\x06", Phrase("an empty ZIP archive")),
    (b"\x89PNG\r\n\x1a\n", Phrase("a PNG image")),
    (b"\xff\xd8\xff", Phrase("a JPEG image")),
    (b"GIF87a", Phrase("a GIF image")),
    (b"GIF89a", Phrase("a GIF image")),
    (b"%PDF", Phrase("a PDF document")),
    (b"\x1f\x8b", Phrase("a gzip-compressed file")),
    (b"Rar!\x1a\x07", Phrase("a RAR archive")),
    (b"7z\xbc\xaf\x27\x1c", Phrase("a 7-Zip archive")),
    (b"RIFF", Phrase("a RIFF media file (e.g. WebP or WAV)")),
    (b"II*\x00", Phrase("a TIFF image")),
    (b"MM\x00*", Phrase("a TIFF image")),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", Phrase("an old Microsoft Office document")),
    (b"glTF", Phrase("a glTF (GLB) model")),
]


def _describe_other(head: bytes) -> str | None:
    """What a non-mesh file looks like, as a noun phrase, or None when it is not recognisable."""
    for magic, what in _OTHER_FORMATS:
        if head.startswith(magic):
            return what
    if len(head) >= 132 and head[128:132] == b"DICM":
        return Phrase("a DICOM image")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in text[:1024]:
        return Phrase("an HTML page (perhaps an error page saved instead of the download)")
    if text.startswith(b"<?xml") or text.startswith(b"<"):
        return Phrase("an XML/HTML document")
    if text.startswith((b"{", b"[")) and _looks_textual(head):
        return Phrase("a JSON document")
    if _looks_textual(head) and re.search(rb"(?m)^\s*v\s+[-+.\d]", head) and re.search(rb"(?m)^\s*(f|vn|vt)\s", head):
        return Phrase("an OBJ model (export the scan as STL or PLY instead)")
    if text.startswith(b"off") and _looks_textual(head):
        return Phrase("an OFF model (export the scan as STL or PLY instead)")
    return None


def _looks_textual(sample: bytes) -> bool:
    if not sample:
        return False
    if b"\x00" in sample:
        return False
    printable = sum(sample.count(bytes([c])) for c in (9, 10, 13))
    printable += sum(1 for c in sample if 32 <= c < 127)
    return printable >= 0.97 * len(sample)


def _read(path: Path, load: bool, progress=None) -> RawMesh:
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(_HEAD_BYTES)
    except FileNotFoundError:
        raise MeshRejected("The uploaded file could not be found on the server.") from None
    except IsADirectoryError:
        raise MeshRejected("The upload is a folder, not an STL or PLY file.") from None
    if size == 0:
        raise MeshRejected("The file is empty.")

    if head.startswith(b"ply") and head[3:4] in (b"\n", b"\r"):
        return _read_ply(path, size, head, load)

    if size >= 84:
        announced = int(np.frombuffer(head[80:84], "<u4")[0]) if len(head) >= 84 else -1
        if size == 84 + 50 * announced:
            return _read_binary_stl(path, announced, load, progress)
    else:
        announced = None

    stripped = head.lstrip(b" \t\r\n")
    if stripped[:5].lower() == b"solid" and _looks_textual(head[:1024]):
        return _read_ascii_stl(path, size, load, progress)

    other = _describe_other(head)
    if other:
        raise MeshRejected("This file is %(kind)s, not an STL or PLY scan.", kind=other)
    if head.startswith(b"ply"):
        raise MeshRejected("The PLY header is malformed: the first line must be exactly 'ply'.")
    if _looks_textual(head[:1024]):
        raise MeshRejected(
            "This file is text but neither an ASCII STL (starting with 'solid') nor a PLY file (starting with 'ply')."
        )
    if announced is None:
        raise MeshRejected("This file is too short (%(size)s bytes) to be an STL or PLY scan.", size=size)
    expected = 84 + 50 * announced
    if size < expected:
        raise MeshRejected(
            "Binary STL is truncated: the header announces %(announced)s triangles (%(expected)s bytes) "
            "but the file has %(size)s bytes.", announced=announced, expected=expected, size=size
        )
    raise MeshRejected(
        "Binary STL does not match its header: the header announces %(announced)s triangles "
        "(%(expected)s bytes) but the file has %(size)s bytes.", announced=announced, expected=expected, size=size
    )


# ---------------------------------------------------------------------------------------------------
# STL


def _check_triangle_count(n: int, file_format: str) -> None:
    """`file_format`: "STL" or "PLY" (names, the same in every language)."""
    if n == 0:
        raise MeshRejected("The %(format)s file contains no triangles.", format=file_format)
    if n > MAX_TRIANGLES:
        raise MeshRejected(
            "The %(format)s file has %(triangles)s triangles; SmilePass accepts at most %(limit)s "
            "(export it with less detail or decimate it in the scanner software).", format=file_format,
            triangles=n, limit=MAX_TRIANGLES
        )


def _nonfinite(count: int) -> MeshRejected:
    if count == 1:
        return MeshRejected("The scan contains invalid coordinates (NaN or infinity) in 1 vertex; export it again "
                            "from the scanner software.")
    return MeshRejected("The scan contains invalid coordinates (NaN or infinity) in %(count)s vertices; export it "
                        "again from the scanner software.", count=count)


def _read_binary_stl(path: Path, n: int, load: bool, progress=None) -> RawMesh:
    _check_triangle_count(n, "STL")
    info = FileInfo("stl-binary", n, None, ".stl")
    corners = np.empty((3 * n, 3), np.float32) if load else None
    low, high = np.full(3, np.inf, np.float32), np.full(3, -np.inf, np.float32)
    bad = 0
    with open(path, "rb") as f:
        f.seek(84)
        done = 0
        while done < n:
            count = min(_CHUNK_TRIANGLES, n - done)
            records = np.fromfile(f, STL_RECORD, count)
            if len(records) != count:  # the file shrank while we read it
                raise MeshRejected("The STL file is truncated.")
            v = records["v"].reshape(-1, 3)
            if load:  # copied first, then checked contiguous (all(axis=1) on a strided view: 50 ms at 1M)
                v = corners[3 * done:3 * (done + count)]
                v[...] = records["v"].reshape(-1, 3)
            finite = np.isfinite(v)
            all_finite = bool(finite.all())
            if not all_finite:
                bad += int(np.count_nonzero(~finite.all(axis=1)))
            if not load and all_finite:
                for k in range(3):  # column by column: numpy reduces a strided (n, 3) view slowly
                    column = v[:, k]
                    low[k], high[k] = min(low[k], column.min()), max(high[k], column.max())
            done += count
            if progress is not None:
                progress(done / n)
    if bad:
        raise _nonfinite(bad)
    if not load:
        # A second pass (the file is in the page cache by now) that knows the bounding box keeps one
        # key per triangle with an area and nothing else.
        surface = _SurfaceCount(float(np.linalg.norm(high.astype(np.float64) - low)))
        with open(path, "rb") as f:
            f.seek(84)
            for start in range(0, n, _CHUNK_TRIANGLES):
                surface.add(np.fromfile(f, STL_RECORD, min(_CHUNK_TRIANGLES, n - start))["v"])
        surface.check()
    return RawMesh(info, corners if load else np.empty((0, 3), np.float32), None)


_STL_VERTEX = re.compile(rb"vertex[ \t]+(\S+)[ \t]+(\S+)[ \t]+(\S+)", re.IGNORECASE)
_STL_ENDFACET = re.compile(rb"endfacet", re.IGNORECASE)
_STL_VERTEX_WORD = re.compile(rb"\bvertex\b", re.IGNORECASE)


def _read_ascii_stl(path: Path, size: int, load: bool, progress=None) -> RawMesh:
    chunks = []
    surface = None if load else _SurfaceCount()
    n_vertices = 0
    n_facets = 0
    n_vertex_words = 0
    bad = 0
    with open(path, "rb") as f:
        rest = b""
        while True:
            block = f.read(1 << 23)
            data = rest + block
            if block:
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    rest = data
                    if len(rest) > 1 << 24:
                        raise MeshRejected("The ASCII STL file has a line longer than 16 MB.")
                    continue
                data, rest = data[:cut], data[cut:]
            matches = _STL_VERTEX.findall(data)
            n_vertex_words += len(_STL_VERTEX_WORD.findall(data))
            n_facets += len(_STL_ENDFACET.findall(data))
            if matches:
                try:
                    xyz = np.array(matches).astype(np.float64)
                except ValueError:
                    raise MeshRejected("The ASCII STL has a vertex line whose coordinates are not numbers.") from None
                finite = np.isfinite(xyz).all(axis=1)
                bad += int((~finite).sum())
                n_vertices += len(xyz)
                if load:
                    chunks.append(xyz.astype(np.float32))
                else:
                    surface.add(xyz.astype(np.float32))
            if not block:
                break
            if progress is not None:
                progress(min(f.tell() / size, 1.0))
    if n_facets == 0 and n_vertices == 0:
        raise MeshRejected("The ASCII STL file contains no facets (no triangles).")
    if n_vertex_words != n_vertices:
        raise MeshRejected("The ASCII STL has a vertex line that does not hold three coordinates.")
    if n_vertices != 3 * n_facets:
        raise MeshRejected(
            "The ASCII STL is truncated or malformed: it has %(vertices)s vertex lines for "
            "%(facets)s facets (every facet needs exactly 3).", vertices=n_vertices, facets=n_facets
        )
    _check_triangle_count(n_facets, "STL")
    if bad:
        raise _nonfinite(bad)
    if surface is not None:
        surface.check()
    info = FileInfo("stl-ascii", n_facets, None, ".stl")
    corners = np.concatenate(chunks) if load else np.empty((0, 3), np.float32)
    return RawMesh(info, corners, None)


# ---------------------------------------------------------------------------------------------------
# PLY

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
_INDEX_NAMES = ("vertex_indices", "vertex_index")


@dataclass
class _Prop:
    name: str
    type: str  # numpy code without byte order
    count_type: str | None = None  # set for list properties

    @property
    def is_list(self) -> bool:
        return self.count_type is not None


@dataclass
class _Element:
    name: str
    count: int
    props: list

    def prop(self, name):
        return next((p for p in self.props if p.name == name), None)


def _parse_ply_header(path: Path, head: bytes):
    with open(path, "rb") as f:
        raw = f.read(_PLY_HEADER_MAX)
    m = re.search(rb"(?m)^end_header[ \t]*\r?\n", raw)
    if m is None:
        if re.search(rb"(?m)^end_header[ \t]*\r?$", raw):  # header ends exactly at end of file
            header_len = len(raw)
            end = raw.rfind(b"end_header")
        else:
            raise MeshRejected("The PLY header is malformed: it has no 'end_header' line.")
    else:
        header_len = m.end()
        end = m.start()
    try:
        text = raw[:end].decode("ascii")
    except UnicodeDecodeError:
        raise MeshRejected("The PLY header is malformed: it contains non-ASCII bytes.") from None

    lines = text.replace("\r", "").split("\n")
    if lines[0].strip() != "ply":
        raise MeshRejected("The PLY header is malformed: the first line must be exactly 'ply'.")
    fmt = None
    elements: list[_Element] = []
    for number, line in enumerate(lines[1:], start=2):
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        bad = MeshRejected("The PLY header is malformed: line %(number)s ('%(line)s') is not valid.", number=number,
                           line=line.strip()[:60])
        if words[0] == "format":
            if len(words) != 3 or fmt is not None:
                raise bad
            if words[1] not in ("ascii", "binary_little_endian", "binary_big_endian"):
                raise MeshRejected("The PLY format '%(format)s' is unknown (expected ascii or binary).",
                                   format=words[1][:40])
            fmt = words[1]
        elif words[0] == "element":
            if len(words) != 3 or not words[2].isdigit():
                raise bad
            elements.append(_Element(words[1], int(words[2]), []))
        elif words[0] == "property":
            if not elements:
                raise bad
            if len(words) == 3 and words[1] in _PLY_TYPES:
                elements[-1].props.append(_Prop(words[2], _PLY_TYPES[words[1]]))
            elif (len(words) == 5 and words[1] == "list" and words[2] in _PLY_TYPES and words[3] in _PLY_TYPES
                  and _PLY_TYPES[words[2]][0] in "iu"
                  and (words[4] not in _INDEX_NAMES or _PLY_TYPES[words[3]][0] in "iu")):
                elements[-1].props.append(_Prop(words[4], _PLY_TYPES[words[3]], _PLY_TYPES[words[2]]))
            else:
                raise bad
        else:
            raise bad
    if fmt is None:
        raise MeshRejected("The PLY header is malformed: it has no 'format' line.")
    return fmt, elements, header_len


def _ply_geometry_elements(elements):
    vertex = next((e for e in elements if e.name == "vertex"), None)
    face = next((e for e in elements if e.name == "face"), None)
    if vertex is None or any(vertex.prop(c) is None or vertex.prop(c).is_list for c in "xyz"):
        raise MeshRejected("The PLY file has no vertex element with x, y and z coordinates.")
    if face is None:
        if any(e.name in ("tristrips", "tristrip") for e in elements):
            raise MeshRejected(
                "The PLY file stores triangle strips, which SmilePass does not read; export it with faces (triangles)."
            )
        raise MeshRejected("The PLY file has no faces: it is a point cloud, not a scanned surface.")
    index = next((p for p in face.props if p.name in _INDEX_NAMES and p.is_list), None)
    if index is None:
        raise MeshRejected("The PLY face element has no 'vertex_indices' list.")
    if face.count == 0:
        raise MeshRejected("The PLY file contains no triangles.")
    if vertex.count == 0:
        raise MeshRejected("The PLY file declares no vertices.")
    return vertex, face, index


def _check_limits(vertex, face) -> None:
    if face.count > MAX_TRIANGLES:
        _check_triangle_count(face.count, "PLY")
    if vertex.count > MAX_VERTICES:
        raise MeshRejected(
            "The PLY file declares %(vertices)s vertices; SmilePass accepts at most %(limit)s.",
            vertices=vertex.count, limit=MAX_VERTICES
        )


def _read_ply(path: Path, size: int, head: bytes, load: bool) -> RawMesh:
    fmt, elements, header_len = _parse_ply_header(path, head)
    vertex, face, index = _ply_geometry_elements(elements)
    if fmt == "ascii":
        return _read_ply_ascii(path, size, header_len, elements, vertex, face, index, load)
    return _read_ply_binary(path, size, header_len, fmt, elements, vertex, face, index, load)


def _declared(elements) -> str:
    """'85,849 vertices and 166,259 faces'"""
    def phrase(e):
        if e.count == 1:
            return f"1 {e.name}"
        return f"{e.count:,} " + {"vertex": "vertices", "face": "faces"}.get(e.name, f"'{e.name}' records")
    parts = [phrase(e) for e in elements]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _min_record_bytes(element: _Element) -> int:
    total = 0
    for p in element.props:
        if p.is_list:
            total += np.dtype(p.count_type).itemsize
            if element.name == "face" and p.name in _INDEX_NAMES:
                total += 3 * np.dtype(p.type).itemsize  # a triangle has 3 indices
        else:
            total += np.dtype(p.type).itemsize
    return total


def _vertex_xyz(records) -> np.ndarray:
    cols = [records[c] for c in "xyz"]
    dtype = np.float32 if all(c.dtype.kind == "f" and c.dtype.itemsize == 4 for c in cols) else np.float64
    xyz = np.empty((len(records), 3), dtype)
    for k, c in enumerate(cols):
        xyz[:, k] = c
    return xyz


def _vertex_colors(records, names) -> np.ndarray | None:
    for channels in (("red", "green", "blue", "alpha"), ("red", "green", "blue"),
                     ("diffuse_red", "diffuse_green", "diffuse_blue")):
        if all(c in names for c in channels):
            cols = [np.asarray(records[c]) for c in channels]
            if all(c.dtype == np.uint8 for c in cols):
                return np.stack(cols, axis=1)
            if all(c.dtype.kind == "f" for c in cols):
                return np.clip(np.rint(np.stack(cols, axis=1) * 255), 0, 255).astype(np.uint8)
            return None
    return None


def _check_vertices(xyz: np.ndarray) -> None:
    finite = np.isfinite(xyz).all(axis=1)
    if not finite.all():
        raise _nonfinite(int((~finite).sum()))


def _check_indices(idx: np.ndarray, n_vertices: int) -> None:
    bad = (idx < 0) | (idx >= n_vertices)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        first = int(rows[0])
        value = int(idx[first][bad[first]][0])
        raise MeshRejected(
            "The PLY file is corrupt: face %(face)s refers to vertex %(vertex)s, but the file has "
            "only %(vertices)s vertices (%(affected)s faces are affected).", face=first, vertex=value,
            vertices=n_vertices, affected=len(rows)
        )


def _check_surface(xyz: np.ndarray, idx: np.ndarray) -> None:
    """The share of triangles without a surface (see _SurfaceCount), counted by coordinates: two
    vertices at the same place are the same corner, as after repair()'s exact weld."""
    used = np.zeros(len(xyz), bool)
    used[idx.ravel()] = True
    points = xyz[used].astype(np.float64)
    surface = _SurfaceCount(float(np.linalg.norm(points.max(axis=0) - points.min(axis=0))) if len(points) else 0.0)
    del used, points
    for start in range(0, len(idx), _CHUNK_TRIANGLES):
        surface.add(np.take(xyz, idx[start:start + _CHUNK_TRIANGLES].ravel(), axis=0))
    surface.check()


def _not_triangle(face_number: int, corners: int) -> MeshRejected:
    return MeshRejected(
        "The PLY file has faces that are not triangles (face %(face)s has %(corners)s corners); "
        "export the scan as a triangle mesh.", face=face_number, corners=corners
    )


def _read_ply_binary(path, size, header_len, fmt, elements, vertex, face, index, load) -> RawMesh:
    order = "<" if fmt == "binary_little_endian" else ">"
    # Refuse declared counts the file cannot possibly hold before reading or allocating anything.
    needed = sum(e.count * _min_record_bytes(e) for e in elements)
    available = size - header_len
    if needed > available:
        counts = _declared(e for e in elements if e.name in ("vertex", "face"))
        raise MeshRejected(
            "The PLY file is truncated or its header is wrong: it declares %(counts)s, which need at least "
            "%(needed)s bytes, but the file has only %(available)s bytes of data.", counts=counts, needed=needed,
            available=available
        )

    _check_limits(vertex, face)
    offset = header_len
    xyz = colors = idx = None
    with open(path, "rb") as f:
        for element in elements:
            if xyz is not None and idx is not None:
                break  # later elements (cameras, materials ...) are not needed
            dtype = _fixed_record_dtype(f, offset, element, order, size)
            if dtype is None:  # variable-length lists in an element we have to step over
                offset = _skip_variable_element(f, offset, element, order, size)
                continue
            end = offset + element.count * dtype.itemsize
            if end > size and element is face:
                # Faces with fewer than 3 corners make the element shorter than triangles would.
                fit = (size - offset) // dtype.itemsize
                records = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(fit,)) \
                    if fit > 0 else np.empty(0, dtype)
                counts = records["__n_" + index.name]
                wrong = np.flatnonzero(counts != 3)
                if len(wrong):
                    raise _not_triangle(int(wrong[0]), int(counts[wrong[0]]))
                del records, counts
            if end > size:
                raise MeshRejected(
                    "The PLY file is truncated: its %(element)s element needs %(needed)s bytes but only "
                    "%(remaining)s remain.", element=element.name, needed=element.count * dtype.itemsize,
                    remaining=max(size - offset, 0)
                )
            if element is vertex or element is face:
                records = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(element.count,)) \
                    if element.count else np.empty(0, dtype)
                if element is vertex:
                    xyz = _vertex_xyz(records)
                    colors = _vertex_colors(records, dtype.names) if load else None
                else:
                    counts = records["__n_" + index.name]
                    wrong = np.flatnonzero(counts != 3)
                    if len(wrong):
                        raise _not_triangle(int(wrong[0]), int(counts[wrong[0]]))
                    idx = np.array(records[index.name], dtype=np.int64).reshape(-1, 3)
                    del counts
                del records
            offset = end
    _check_vertices(xyz)
    _check_indices(idx, vertex.count)
    info = FileInfo("ply-binary", face.count, vertex.count, ".ply")
    if not load:
        _check_surface(xyz, idx)
        return RawMesh(info, np.empty((0, 3), np.float32), None)
    faces = idx.astype(np.int32) if vertex.count < 2**31 - 1 else idx
    return RawMesh(info, xyz, faces, colors)


def _fixed_record_dtype(f, offset, element, order, size):
    """A numpy record dtype for the element, reading list lengths from its first record; None when the
    element has lists whose lengths vary (checked for the face element by the caller)."""
    fields = []
    pos = offset
    for p in element.props:
        if p.is_list:
            ct = np.dtype(order + p.count_type)
            if element.count == 0:
                n = 3
            else:
                f.seek(pos)
                raw = f.read(ct.itemsize)
                if len(raw) < ct.itemsize:
                    raise MeshRejected("The PLY file is truncated inside its %(element)s element.",
                                       element=element.name)
                n = int(np.frombuffer(raw, ct)[0])
            if element.name == "face" and p.name in _INDEX_NAMES and n != 3:
                raise _not_triangle(0, n)
            fields.append(("__n_" + p.name, ct))
            fields.append((p.name, np.dtype(order + p.type), (n,)))
            pos += ct.itemsize + n * np.dtype(p.type).itemsize
        else:
            fields.append((p.name, np.dtype(order + p.type)))
            pos += np.dtype(p.type).itemsize
    try:
        dtype = np.dtype(fields)
    except (ValueError, TypeError):
        raise MeshRejected("The PLY header is malformed: the %(element)s element has repeated property names.",
                           element=element.name) from None
    has_lists = any(p.is_list for p in element.props)
    if not has_lists or element.count == 0:
        return dtype
    if element.name == "face":
        return dtype  # the caller checks every face's count
    # Another element with lists (stepped over): only fixed if every record has the same counts.
    end = offset + element.count * dtype.itemsize
    if end > size:
        return None
    records = np.memmap(f.name, dtype=dtype, mode="r", offset=offset, shape=(element.count,))
    for p in element.props:
        if p.is_list and not (records["__n_" + p.name] == records["__n_" + p.name][0]).all():
            return None
    return dtype


def _skip_variable_element(f, offset, element, order, size) -> int:
    if element.count > 100_000:
        raise MeshRejected(
            "The PLY file has a large '%(element)s' element with lists of varying length, "
            "which SmilePass does not read.", element=element.name
        )
    pos = offset
    for _ in range(element.count):
        for p in element.props:
            if p.is_list:
                ct = np.dtype(order + p.count_type)
                f.seek(pos)
                raw = f.read(ct.itemsize)
                if len(raw) < ct.itemsize:
                    raise MeshRejected("The PLY file is truncated inside its %(element)s element.",
                                       element=element.name)
                pos += ct.itemsize + int(np.frombuffer(raw, ct)[0]) * np.dtype(p.type).itemsize
            else:
                pos += np.dtype(p.type).itemsize
        if pos > size:
            raise MeshRejected("The PLY file is truncated inside its %(element)s element.",
                                       element=element.name)
    return pos


def _count_lines(path: Path, start: int) -> int:
    lines = 0
    last = b"\n"
    with open(path, "rb") as f:
        f.seek(start)
        while True:
            block = f.read(1 << 22)
            if not block:
                break
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def _read_ply_ascii(path, size, header_len, elements, vertex, face, index, load) -> RawMesh:
    needed = sum(e.count for e in elements)
    available = _count_lines(path, header_len)
    if needed > available:
        counts = _declared(elements)
        raise MeshRejected(
            "The PLY file is truncated or its header is wrong: it declares %(counts)s (one line each), "
            "but it has only %(available)s lines of data.", counts=counts, available=available
        )
    _check_limits(vertex, face)
    xyz = colors = idx = None
    with open(path, "rb") as f:
        f.seek(header_len)
        for element in elements:
            if xyz is not None and idx is not None:
                break
            lines = itertools.islice(f, element.count)
            if element is vertex:
                if any(p.is_list for p in element.props):
                    raise MeshRejected("The PLY vertex element has list properties, which SmilePass does not read.")
                table = _loadtxt(lines, element, len(element.props))
                names = [p.name for p in element.props]
                xyz = np.stack([table[:, names.index(c)] for c in "xyz"], axis=1)
                if all(element.prop(c).type == "f4" for c in "xyz"):
                    xyz = xyz.astype(np.float32)
                if load:
                    columns = {n: table[:, i].astype(np.dtype(element.prop(n).type))
                               for i, n in enumerate(names)
                               if "red" in n or "green" in n or "blue" in n or n == "alpha"}
                    colors = _vertex_colors(columns, names)
            elif element is face:
                if any(p.is_list for p in element.props if p is not index):
                    raise MeshRejected("The PLY face element has extra list properties, which SmilePass does not read.")
                width = len(element.props) + 3  # the count, three indices, the scalar properties
                col = [p.name for p in element.props].index(index.name)
                table = _loadtxt(lines, element, width, count_column=col)
                counts = table[:, col]
                wrong = np.flatnonzero(counts != 3)
                if len(wrong):
                    raise _not_triangle(int(wrong[0]), int(counts[wrong[0]]))
                raw_idx = table[:, col + 1:col + 4]
                if (raw_idx != np.round(raw_idx)).any():
                    raise MeshRejected("The PLY file is corrupt: a face has a vertex index that is not a whole number.")
                idx = raw_idx.astype(np.int64)
            else:
                for _ in lines:
                    pass
    _check_vertices(xyz)
    _check_indices(idx, vertex.count)
    info = FileInfo("ply-ascii", face.count, vertex.count, ".ply")
    if not load:
        _check_surface(xyz, idx)
        return RawMesh(info, np.empty((0, 3), np.float32), None)
    faces = idx.astype(np.int32) if vertex.count < 2**31 - 1 else idx
    return RawMesh(info, xyz, faces, colors)


def _loadtxt(lines, element, width, count_column=None) -> np.ndarray:
    buffered = list(lines)
    try:
        table = np.loadtxt(buffered, dtype=np.float64, comments=None, ndmin=2)
    except ValueError:
        table = None
    if table is not None and table.shape == (element.count, width):
        return table
    # Find the first offending line to say what is wrong with it.
    for number, line in enumerate(buffered):
        words = line.split()
        if count_column is not None and len(words) > count_column and words[count_column].isdigit() \
                and int(words[count_column]) != 3:
            raise _not_triangle(number, int(words[count_column]))
        if len(words) != width:
            raise MeshRejected(
                "The PLY file is malformed: %(element)s line %(line)s has %(values)s values "
                "where the header describes %(width)s.", element=element.name, line=number + 1, values=len(words),
                width=width
            )
        try:
            [float(w) for w in words]
        except ValueError:
            raise MeshRejected(
                "The PLY file is malformed: %(element)s line %(line)s contains something "
                "that is not a number.", element=element.name, line=number + 1
            ) from None
    raise MeshRejected("The PLY file is malformed: its %(element)s data does not match the header.",
                       element=element.name)

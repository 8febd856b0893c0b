"""The viewer's web copy (.glb): parsed with a glTF reader (pygltflib), small, same shape, and its colours
mark what the repair did."""

import numpy as np
import pyfqmr
import pygltflib
import pytest
from scipy.spatial import cKDTree

from smilepass.mesh import repair, webcopy
from smilepass.mesh import synthetic as syn

from .meshgen import write_binary_stl

GREY, ORANGE, RED = (tuple(c) for c in webcopy.COLOURS.tolist())
_DTYPES = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_WIDTH = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}


def read_glb(data: bytes) -> dict:
    """Positions (in scan coordinates, through the node's scale and translation), RGBA colours and faces."""
    gltf = pygltflib.GLTF2.load_from_bytes(data)
    blob = gltf.binary_blob()

    def accessor(i):
        a = gltf.accessors[i]
        view = gltf.bufferViews[a.bufferView]
        dtype = np.dtype(_DTYPES[a.componentType])
        width = _WIDTH[a.type]
        stride = view.byteStride or dtype.itemsize * width
        raw = np.frombuffer(blob, np.uint8, count=view.byteLength, offset=view.byteOffset + (a.byteOffset or 0))
        rows = np.lib.stride_tricks.as_strided(raw, (a.count, dtype.itemsize * width), (stride, 1))
        return np.ascontiguousarray(rows).view(dtype).reshape(a.count, width)

    primitive = gltf.meshes[0].primitives[0]
    node = gltf.nodes[0]
    q = accessor(primitive.attributes.POSITION).astype(np.float64)
    V = q * np.array(node.scale) + np.array(node.translation)
    return {
        "gltf": gltf,
        "V": V,
        "colours": accessor(primitive.attributes.COLOR_0),
        "F": accessor(primitive.indices).reshape(-1, 3).astype(np.int64),
    }


def colour_of(colours: np.ndarray) -> list[tuple]:
    return [tuple(c) for c in colours.tolist()]


@pytest.fixture(scope="module")
def arch_with_holes(tmp_path_factory):
    """An arch with three small holes (filled by the repair) and one too large to fill (left open)."""
    V, F = syn.arch(24_000, seed=3)
    rng = np.random.default_rng(11)
    small = [syn.interior_vertex(V, F, rng) for _ in range(3)]
    for centre in small:
        F = syn.punch_hole(V, F, centre, 0.6)
    large = syn.interior_vertex(V, F, rng, away=3.5)
    F = syn.punch_hole(V, F, large, 3.0)
    top = float(V[:, 2].max())
    V, F = syn.add_debris(V, F, rng, count=2)
    folder = tmp_path_factory.mktemp("webcopy")
    result = repair(write_binary_stl(folder / "holes.stl", V, F), folder / "out", "scan")
    return {"V": V, "top": top, "small": V[small], "large": V[large], "result": result}


def test_the_repair_writes_both_web_copies_and_times_them(arch_with_holes):
    result = arch_with_holes["result"]
    assert result.web_before.name == "scan.before.glb" and result.web_after.name == "scan.after.glb"
    assert "web copy" in result.report["stage_seconds"]
    assert result.report["holes_filled"] == 3 and result.report["holes_left_open"] == 1
    before = read_glb(result.web_before.read_bytes())
    after = read_glb(result.web_after.read_bytes())
    assert before["gltf"].extensionsRequired == ["KHR_mesh_quantization"]
    # Small enough to keep whole: every triangle of the upload (debris too) and of the result.
    assert len(before["F"]) == result.report["before"]["triangles"]
    assert len(after["F"]) == result.report["after"]["triangles"]
    assert set(colour_of(before["colours"])) == {GREY}  # the upload as it came, unmarked
    # Removed debris is not drawn, only counted.
    assert after["gltf"].asset.extras == {"holes_filled": 3, "holes_left_open": 1, "fragments_removed": 2}
    top = arch_with_holes["top"]
    assert before["V"][:, 2].max() > top + 3 and after["V"][:, 2].max() <= top + 1e-3


def test_colours_mark_the_repaired_triangles_and_open_rims(arch_with_holes):
    result = arch_with_holes["result"]
    after = read_glb(result.web_after.read_bytes())
    V, colours = after["V"], colour_of(after["colours"])
    tree = cKDTree(V)
    # The centre of each filled hole is a new vertex of its fan: orange, and so is the whole patch around it.
    for centre in arch_with_holes["small"]:
        near = tree.query_ball_point(centre, 0.3)
        assert near and all(colours[i] == ORANGE for i in near)
    # The open hole's rim is red all round; its centre has no surface at all.
    large = arch_with_holes["large"]
    distance = np.linalg.norm(V - large, axis=1)
    rim = (distance > 2.5) & (distance < 4.5)  # faces with a corner within 3 mm went
    red = np.array([c == RED for c in colours])
    assert red[rim].sum() >= 20
    assert distance[red].max() < 4.5  # no red anywhere else
    assert distance.min() > 2.5
    # Everything else is the scan's grey.
    marked = red | np.array([c == ORANGE for c in colours])
    assert (~marked).sum() > 0.95 * len(V)
    # Positions survive quantisation to a micrometre: every vertex is one of the repaired mesh's.
    d, _ = cKDTree(arch_with_holes["V"]).query(V[~marked])
    assert d.max() < 0.002


def test_a_million_triangle_scan_fits_in_3_mb_and_keeps_its_shape_and_marks():
    V, F = syn.arch(1_000_000, seed=5)
    assert len(F) > 990_000
    rng = np.random.default_rng(4)
    # Mark a patch as repaired and a ring as an open rim, as the pipeline would.
    centre = V[syn.interior_vertex(V, F, rng)]
    distance = np.linalg.norm(V - centre, axis=1)
    marks = np.zeros(len(V), np.uint8)
    marks[distance < 0.4] = webcopy.REPAIRED
    ring_centre = V[syn.interior_vertex(V, F, rng)]
    ring = np.abs(np.linalg.norm(V - ring_centre, axis=1) - 1.0) < 0.03
    marks[ring] = webcopy.OPEN_RIM
    data = webcopy.web_copy(V, F, marks)
    assert len(data) <= 3 * 1024 * 1024
    copy = read_glb(data)
    # Clustered (one vertex per grid cell) to 0.8-0.95 x MAX_TRIANGLES: not the exact count decimation hits.
    assert 0.8 * webcopy.MAX_TRIANGLES <= len(copy["F"]) <= webcopy.MAX_TRIANGLES
    assert copy["F"].max() < len(copy["V"])
    # The shape is kept: every vertex of the copy lies within 0.05 mm of the scan's surface (each is one of
    # the scan's own, up to the micrometre of quantisation), and the copy spans the same box.
    # Open3D only inside a test, as in the app: a process that forks workers must not have it loaded.
    import open3d as o3d

    surface = o3d.t.geometry.RaycastingScene()
    surface.add_triangles(V.astype(np.float32), F.astype(np.uint32))
    assert surface.compute_distance(copy["V"].astype(np.float32)).numpy().max() < 0.05
    # Hardly a face of the copy is turned over against the scan's surface under it: the numpy clustering
    # folds some, which would show as specks of the back side (measured with the clustering that preceded
    # pyfqmr: 3,236 faces turned when left so, 112 when turned back, 27 with pyfqmr alone: the scan's own
    # jitter; clustering alone, turned back: about 100).
    cv, cf = copy["V"].astype(np.float64), copy["F"]
    normals = np.cross(cv[cf[:, 1]] - cv[cf[:, 0]], cv[cf[:, 2]] - cv[cf[:, 0]])
    closest = surface.compute_closest_points(cv[cf].mean(axis=1).astype(np.float32))
    assert (np.einsum("ij,ij->i", normals, closest["primitive_normals"].numpy()) <= 0).sum() <= len(cf) // 1000
    assert np.allclose(copy["V"].min(axis=0), V.min(axis=0), atol=0.01)
    assert np.allclose(copy["V"].max(axis=0), V.max(axis=0), atol=0.01)
    colours = colour_of(copy["colours"])
    near = np.linalg.norm(copy["V"] - centre, axis=1)
    assert all(colours[i] == ORANGE for i in np.flatnonzero(near < 0.25))
    assert all(
        colours[i] == GREY
        for i in np.flatnonzero((near > 1.0) & (near < 5.0) & (np.linalg.norm(copy["V"] - ring_centre, axis=1) > 1.5))
    )
    assert sum(c == RED for c in colours) >= 10


def test_a_clean_scan_has_no_marks_and_a_tiny_one_is_kept_whole():
    V, F = syn.arch(2_000, seed=1)
    copy = read_glb(webcopy.web_copy(V, F, np.zeros(len(V), np.uint8)))
    assert len(copy["F"]) == len(F) and len(copy["V"]) == len(V)
    assert set(colour_of(copy["colours"])) == {GREY}
    assert copy["gltf"].accessors[2].componentType == 5123  # 16-bit indices when they fit


def test_a_large_scan_is_clustered_once_for_its_previews_and_web_copy(tmp_path, monkeypatch):
    """Above CLUSTER_ABOVE x MAX_TRIANGLES faces the repaired web copy is a clustered copy, and the previews
    draw the kept surface from that same copy: one clustering of the repaired mesh, one of the upload."""
    from smilepass.mesh import previews

    V, F = syn.arch(webcopy.CLUSTER_ABOVE * webcopy.MAX_TRIANGLES + 20_000, seed=8)
    F = syn.punch_hole(V, F, syn.interior_vertex(V, F, np.random.default_rng(2)), 0.5)
    calls = []
    real = webcopy.cluster

    def counted(V, F, target_faces):
        calls.append(len(F))
        return real(V, F, target_faces)

    monkeypatch.setattr(webcopy, "cluster", counted)
    monkeypatch.setattr(previews, "cluster", counted)
    monkeypatch.setattr(pyfqmr, "Simplify", lambda: pytest.fail("pyfqmr ran on a clustered copy"))
    result = repair(write_binary_stl(tmp_path / "big.stl", V, F), tmp_path / "out", "big")
    assert result.report["holes_filled"] == 1
    assert sorted(calls) == sorted([len(F), result.report["after"]["triangles"]])
    after = read_glb(result.web_after.read_bytes())
    assert 0.8 * webcopy.MAX_TRIANGLES <= len(after["F"]) <= webcopy.MAX_TRIANGLES
    assert ORANGE in set(colour_of(after["colours"]))  # the filled hole, marked through its cell


@pytest.mark.parametrize("h", [0.37, 1.5])  # the squeezed grid sorted, and numbered through a table
def test_clustering_numbers_cells_in_grid_order_with_far_debris_and_unused_vertices(h):
    """The cells are numbered in the order of their grid keys (what np.unique of the keys gives) also when a
    speck of debris far from the arch makes the grid too sparse for one table (webcopy._cells squeezes each
    axis's empty slabs out first), and a vertex no face uses takes no part (vertex_of -1)."""
    V, F = syn.arch(40_000, seed=3)
    V = np.asarray(V, np.float64)
    speck = V[F[:1]].reshape(3, 3) + [500.0, -800.0, 300.0]
    V = np.vstack([V, speck, [[9e3, 9e3, 9e3]]])  # the last vertex is unused
    F = np.vstack([F, [[len(V) - 4, len(V) - 3, len(V) - 2]]])
    P = [V[:-1, k] for k in range(3)]
    lo = [float(x.min()) for x in P]
    n_cells, cell = webcopy._cells(P, lo, h)
    q = np.floor((V[:-1] - V[:-1].min(axis=0)) / h).astype(np.int64)
    keys, expected = np.unique(q[:, 0] * 10**12 + q[:, 1] * 10**6 + q[:, 2], return_inverse=True)
    assert n_cells == len(keys)
    assert np.array_equal(cell, expected)

    copy = webcopy.cluster(V, F, 5_000)
    assert copy.vertex_of[-1] == -1
    assert len(copy.F) <= 5_000 and len(copy.V) == copy.F.max() + 1

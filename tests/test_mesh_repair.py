"""repair() on generated arch scans with known defects, outputs, progress, options, and the Open3D 0.20
traps the pipeline is built to avoid."""
import dataclasses
import json

import numpy as np
import pytest

from smilepass.mesh import MeshRejected, RepairOptions, inspect_file, repair, weld
from smilepass.mesh import synthetic as syn
from smilepass.mesh.holes import fill, find_loops
from smilepass.mesh.readers import load_file
from smilepass.mesh.topology import Edges, sort_by_columns

from .meshgen import binary_stl_bytes, topology, write_ascii_ply, write_ascii_stl, write_binary_ply, write_binary_stl

STAGES = {"reading", "cleaning", "filling holes", "orienting", "rendering", "web copy", "saving"}


@pytest.fixture(scope="module")
def clean_arch():
    V, F = syn.arch(24_000, seed=3)
    return V, F, syn.margin_edges(V, F)


def run(tmp_path, path, **kw):
    out = tmp_path / "out"
    kw.setdefault("preview", False)
    return repair(path, out, "scan", **kw)


def assert_clean_open_arch(result, margin_edges):
    t = topology(result.repaired_path)
    assert t["non_manifold_edges"] == 0
    assert t["duplicates"] == 0
    assert t["degenerate"] == 0
    assert t["same_direction_edges"] == 0  # every interior edge walked both ways: consistent winding
    assert t["components"] == 1
    assert t["loop_edges"] == [margin_edges]  # only the gum margin is open, and all of it
    return t


def test_clean_arch_is_ready_and_unchanged(tmp_path, clean_arch):
    V, F, margin = clean_arch
    result = run(tmp_path, write_binary_stl(tmp_path / "a.stl", V, F))
    assert (result.verdict, result.verdict_reason) == ("ready", "")
    r = result.report
    for key in ("vertices", "triangles", "boundary_loops", "boundary_edges", "components"):
        assert r["before"][key] == r["after"][key]
    assert r["before"]["boundary_loops"] == 1 and r["margin_loop_edges"] == margin
    assert r["before"]["closed"] is False and r["holes_filled"] == 0
    t = assert_clean_open_arch(result, margin)
    assert t["triangles"] == len(F)
    assert result.repaired_path == result.repaired_stl_path == tmp_path / "out" / "scan.repaired.stl"
    json.dumps(r)  # the report is JSON-serialisable as it is


def test_every_defect_at_once(tmp_path, clean_arch):
    V, F, margin = clean_arch
    rng = np.random.default_rng(7)
    for _ in range(3):
        F = syn.punch_hole(V, F, syn.interior_vertex(V, F, rng), 0.6)
    F, n_flipped = syn.flip_patch(V, F, syn.interior_vertex(V, F, rng), 2.0)
    assert n_flipped > 20
    F = syn.add_duplicates(F, rng, 25)
    F = syn.add_duplicates(F, rng, 25, back_to_back=True)
    V, F = syn.add_fins(V, F, rng, 12)
    V, F = syn.add_debris(V, F, rng, count=3)
    corners = syn.corners_with_cracks(V, F, rng, 40)
    path = tmp_path / "messy.stl"
    path.write_bytes(binary_stl_bytes(corners))

    result = run(tmp_path, path)
    r = result.report
    assert result.verdict == "repaired", result.verdict_reason
    assert r["before"]["non_manifold_edges"] > 0 and r["before"]["duplicate_triangles"] == 50
    assert r["before"]["components"] == 4 and r["before"]["boundary_loops"] > 4  # fins hang on NM edges
    assert r["welded_vertices"] > 0  # the float-noise cracks
    assert r["duplicates_removed"] == 50
    assert r["non_manifold_removed"] >= 12  # the fins
    assert r["fragments_removed"] == 3
    assert r["holes_filled"] == 3
    assert r["flipped_triangles"] >= n_flipped
    assert r["margin_loop_edges"] == margin
    after = r["after"]
    assert (after["non_manifold_edges"], after["duplicate_triangles"], after["degenerate_triangles"]) == (0, 0, 0)
    assert after["components"] == 1 and after["boundary_loops"] == 1 and after["inconsistent_edges"] == 0
    assert result.verdict_reason.startswith("Closed float-noise cracks at ")
    assert "filled 3 holes" in result.verdict_reason and "debris" in result.verdict_reason
    assert_clean_open_arch(result, margin)


def test_holes_are_filled_and_the_margin_stays_open(tmp_path, clean_arch):
    V, F, margin = clean_arch
    rng = np.random.default_rng(1)
    for radius in (0.25, 0.5, 0.8, 1.0):
        F = syn.punch_hole(V, F, syn.interior_vertex(V, F, rng), radius)
    result = run(tmp_path, write_binary_stl(tmp_path / "holes.stl", V, F))
    assert result.report["before"]["boundary_loops"] == 5
    assert result.report["holes_filled"] == 4
    assert result.report["after"]["boundary_loops"] == 1
    t = assert_clean_open_arch(result, margin)
    # The filling is wound like the surface: normals keep pointing out of the arch (up, mostly).
    Vr, Fr = t["V"], t["F"]
    n = np.cross(Vr[Fr[:, 1]] - Vr[Fr[:, 0]], Vr[Fr[:, 2]] - Vr[Fr[:, 0]])
    assert n[:, 2].sum() > 0


def test_holes_too_large_to_fill_mean_rescan(tmp_path, clean_arch):
    V, F, margin = clean_arch
    rng = np.random.default_rng(2)
    F1 = syn.punch_hole(V, F, syn.interior_vertex(V, F, rng, away=3.5), 3.0)
    result = run(tmp_path, write_binary_stl(tmp_path / "big.stl", V, F1))
    assert result.verdict == "needs_rescan"
    assert result.verdict_reason.startswith("The scan has 1 hole that could not be filled safely (the largest is ")
    assert result.report["holes_filled"] == 0 and result.report["holes_left_open"] == 1
    assert result.report["after"]["boundary_loops"] == 2

    for _ in range(4):
        F = syn.punch_hole(V, F, syn.interior_vertex(V, F, rng, away=3.5), 3.0)
    result = run(tmp_path, write_binary_stl(tmp_path / "bigger.stl", V, F))
    assert result.verdict_reason.startswith("Large parts of the surface are missing: ")
    assert "besides the gum margin" in result.verdict_reason


def test_debris_removed_but_a_second_body_of_similar_size_kept(tmp_path, clean_arch):
    V, F, margin = clean_arch
    rng = np.random.default_rng(3)
    Vd, Fd = syn.add_debris(V, F, rng, count=4)
    result = run(tmp_path, write_binary_stl(tmp_path / "debris.stl", Vd, Fd))
    assert result.report["fragments_removed"] == 4 and result.verdict == "repaired"
    assert_clean_open_arch(result, margin)

    # Two arches side by side (an upper and a lower in one file): both stay, and the verdict says why.
    V2 = np.concatenate([V, V + np.array([80.0, 0, 0], np.float32)])
    F2 = np.concatenate([F, F + len(V)])
    result = run(tmp_path, write_binary_stl(tmp_path / "two.stl", V2, F2))
    assert result.report["fragments_removed"] == 0
    assert result.report["after"]["components"] == 2 and result.report["after"]["triangles"] == len(F2)
    assert result.verdict == "needs_rescan"
    assert result.verdict_reason == ("The scan is in 2 large separate pieces; an arch scan should be one connected "
                                     "surface.")


def test_non_manifold_fins_and_back_to_back_duplicates(tmp_path, clean_arch):
    """Open3D's remove_duplicated_triangles() keeps a back-to-back pair (same vertices, opposite winding)."""
    import open3d as o3d

    pair = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(np.eye(3)),
                                     o3d.utility.Vector3iVector(np.array([[0, 1, 2], [0, 2, 1]])))
    pair.remove_duplicated_triangles()
    assert len(pair.triangles) == 2

    V, F, margin = clean_arch
    rng = np.random.default_rng(4)
    F2 = syn.add_duplicates(F, rng, 40, back_to_back=True)
    V2, F2 = syn.add_fins(V, F2, rng, 30)
    result = run(tmp_path, write_binary_stl(tmp_path / "nm.stl", V2, F2))
    r = result.report
    assert r["before"]["non_manifold_edges"] >= 30 and r["before"]["duplicate_triangles"] == 40
    assert r["duplicates_removed"] == 40 and r["non_manifold_removed"] == 30
    t = assert_clean_open_arch(result, margin)
    assert t["triangles"] == len(F)  # exactly the original surface is left


def test_flipped_patch_is_turned_back(tmp_path, clean_arch):
    V, F, margin = clean_arch
    rng = np.random.default_rng(5)
    F2, n = syn.flip_patch(V, F, syn.interior_vertex(V, F, rng), 3.0)
    result = run(tmp_path, write_binary_stl(tmp_path / "flip.stl", V, F2))
    assert result.report["before"]["inconsistent_edges"] > 0
    assert result.report["flipped_triangles"] == n
    t = assert_clean_open_arch(result, margin)
    assert t["triangles"] == len(F)


def test_closed_inside_out_body_is_turned_outward(tmp_path):
    """A closed piece is oriented by signed volume, not by what the input said."""
    octa_v = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], np.float32)
    octa_f = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])
    inside_out = octa_f[:, (0, 2, 1)]
    result = run(tmp_path, write_binary_stl(tmp_path / "o.stl", octa_v, inside_out))
    assert result.report["flipped_triangles"] == 8 and result.report["after"]["closed"]
    t = topology(result.repaired_path)
    Vr, Fr = t["V"].astype(float), t["F"]
    volume = np.einsum("ij,ij->i", Vr[Fr[:, 0]], np.cross(Vr[Fr[:, 1]], Vr[Fr[:, 2]])).sum() / 6
    assert volume > 0
    assert result.verdict == "needs_rescan"  # 8 triangles are not a scan, but the body was still fixed


def test_float_noise_cracks_are_welded_unlike_open3d(tmp_path, clean_arch):
    """Open3D's remove_duplicated_vertices() merges exact matches only, so a 1-ulp crack survives it."""
    import open3d as o3d

    V, F, margin = clean_arch
    corners = syn.corners_with_cracks(V, F, np.random.default_rng(6), 200)
    path = tmp_path / "cracks.stl"
    path.write_bytes(binary_stl_bytes(corners))
    legacy = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(corners.astype(np.float64)),
                                       o3d.utility.Vector3iVector(np.arange(len(corners)).reshape(-1, 3)))
    legacy.remove_duplicated_vertices()
    assert len(legacy.vertices) > len(V)  # the cracks are still there

    result = run(tmp_path, path)
    assert result.report["before"]["boundary_loops"] > 1 and result.report["welded_vertices"] > 0
    assert result.report["after"]["vertices"] == len(V)
    assert_clean_open_arch(result, margin)


def test_too_few_triangles_means_rescan_and_no_surface_is_refused(tmp_path):
    V, F = syn.arch(400)
    result = run(tmp_path, write_binary_stl(tmp_path / "few.stl", V, F))
    assert result.verdict == "needs_rescan" and "only" in result.verdict_reason and "1,000" in result.verdict_reason
    # Every triangle degenerate: nothing is left after cleaning, which is a refusal, not a crash.
    flat = np.zeros((30, 3), np.float32)
    flat[:, 0] = np.arange(30)
    (tmp_path / "line.stl").write_bytes(binary_stl_bytes(flat))
    with pytest.raises(MeshRejected, match="mostly degenerate: 10 of its 10 triangles"):
        run(tmp_path, tmp_path / "line.stl")


@pytest.mark.parametrize("kind", syn.DEGENERATE_KINDS)
def test_a_scan_of_mostly_degenerate_triangles_is_refused(tmp_path, kind):
    """Identical facets, copies or zero-area faces making up most of the file: an export gone wrong.
    The upload check refuses it at once, and so does the repair (for files that got past it: older
    uploads, the command line)."""
    V, F = syn.degenerate_scan(4_000, 0.6, kind)
    path = write_binary_stl(tmp_path / f"{kind}.stl", V, F)
    with pytest.raises(MeshRejected, match="mostly degenerate") as refused:
        run(tmp_path, path)
    bad = refused.value.params["bad"]
    assert refused.value.params["triangles"] == 4000 and 2400 <= bad <= 2420  # the generated arch is about 1,600
    assert str(refused.value) == (f"The scan is mostly degenerate: {bad:,} of its 4,000 triangles have no area or are "
                                  "copies of other triangles; export it again from the scanner software.")
    with pytest.raises(MeshRejected) as refused_at_upload:
        inspect_file(path)
    assert refused_at_upload.value.params == refused.value.params
    assert not (tmp_path / "out" / "scan.repaired.stl").exists()


def test_the_upload_check_counts_degenerate_triangles_in_every_format(tmp_path):
    V, F = syn.degenerate_scan(3_000, 0.55, "duplicate")
    copies = len(F) - len(np.unique(np.sort(F, axis=1), axis=0))
    for path in (write_binary_stl(tmp_path / "d.stl", V, F), write_ascii_stl(tmp_path / "a.stl", V, F),
                 write_binary_ply(tmp_path / "d.ply", V, F), write_ascii_ply(tmp_path / "a.ply", V, F)):
        with pytest.raises(MeshRejected, match=f"{copies:,} of its 3,000 triangles"):
            inspect_file(path)
    V, F = syn.degenerate_scan(3_000, 0.45, "zero-area")
    assert inspect_file(write_binary_stl(tmp_path / "z.stl", V, F)).triangles == 3_000


@pytest.mark.parametrize("kind", syn.DEGENERATE_KINDS)
def test_a_clean_scan_with_some_degenerate_triangles_is_repaired(tmp_path, clean_arch, kind):
    V, F, margin = clean_arch
    V, F = syn.add_degenerate(V, F, np.random.default_rng(4), 300, kind)
    path = write_binary_stl(tmp_path / f"{kind}.stl", V, F)
    assert inspect_file(path).triangles == len(F)
    result = run(tmp_path, path)
    assert result.verdict == "repaired", result.verdict_reason
    r = result.report
    assert r["degenerate_removed"] + r["duplicates_removed"] + r["collapsed_edges"] >= 300
    assert_clean_open_arch(result, margin)


def _wound_triangles(path) -> list:
    """The triangles of an STL file, each its corners' coordinates rotated to start at its smallest corner
    (the winding kept), sorted: the surface, whatever the order of the faces and of their corners."""
    rows = []
    for tri in load_file(path).vertices.reshape(-1, 3, 3).tolist():
        k = tri.index(min(tri))
        rows.append(tuple(map(tuple, tri[k:] + tri[:k])))
    return sorted(rows)


def test_copies_repair_alike_wherever_the_file_puts_them(tmp_path):
    """The same copies (a set's faces in either winding), spread anywhere in the file or each written
    after the face it copies: the same triangles, wound the same way, and the same report numbers. Spread
    anywhere, half the sets begin with a copy, often in the other winding, which the winding vote turns;
    written later, each set begins with its original."""
    own = syn.arch(12_000 - 3_600, seed=1)[1]  # the scan's own faces, which the copies repeat
    results = {}
    for kind in ("duplicate", "duplicate-later"):
        V, F = syn.degenerate_scan(12_000, 0.3, kind)
        _, first = np.unique(np.sort(F, axis=1), axis=0, return_index=True)
        firsts_are_own = sorted(map(tuple, F[first].tolist())) == sorted(map(tuple, own.tolist()))
        assert firsts_are_own == (kind == "duplicate-later")
        results[kind] = repair(write_binary_stl(tmp_path / f"{kind}.stl", V, F), tmp_path / kind, "scan",
                               preview=False)
    spread, later = results["duplicate"], results["duplicate-later"]
    assert spread.verdict == later.verdict == "repaired"
    numbers = ("before", "after", "duplicates_removed", "degenerate_removed", "flipped_triangles",
               "holes_filled", "non_manifold_removed", "fragments_removed")
    assert {k: spread.report[k] for k in numbers} == {k: later.report[k] for k in numbers}
    assert spread.report["duplicates_removed"] == 12_000 - len(own)
    assert spread.report["flipped_triangles"] == 0  # each set kept in its neighbours' winding: none to turn after
    assert _wound_triangles(spread.repaired_path) == _wound_triangles(later.repaired_path)


def test_the_repaired_scans_numbers_are_what_counting_it_again_finds(tmp_path, clean_arch):
    """The report's "after" numbers are worked out from what the repair did (no second edge sort):
    they must equal what measure() counts on the repaired mesh itself."""
    from smilepass.mesh.pipeline import _Work
    from smilepass.mesh.readers import load_file
    from smilepass.mesh.topology import measure
    from smilepass.mesh.weld import weld_exact

    V, F, margin = clean_arch
    rng = np.random.default_rng(11)
    for _ in range(3):
        F = syn.punch_hole(V, F, syn.interior_vertex(V, F, rng), 0.4)
    V, F = syn.add_debris(V, F, rng, count=2)
    F, _ = syn.flip_patch(V, F, syn.interior_vertex(V, F, rng), 1.0)
    F = syn.add_duplicates(F, rng, 40, back_to_back=True)
    for kind in syn.DEGENERATE_KINDS:
        V, F = syn.add_degenerate(V, F, rng, 200, kind)
    result = run(tmp_path, write_binary_stl(tmp_path / "s.stl", V, F))
    r = result.report
    assert r["holes_filled"] == 3 and r["flipped_triangles"] > 0 and r["degenerate_removed"] > 0
    raw = load_file(result.repaired_path)
    V2, inverse, _ = weld_exact(raw.vertices)
    F2 = inverse.reshape(-1, 3)
    min_height = _Work.from_raw(load_file(tmp_path / "s.stl"), RepairOptions()).min_height
    counted = measure(V2, F2, min_height, components=r["after"]["components"]).stats
    counted["surface_area_mm2"] = pytest.approx(counted["surface_area_mm2"], rel=1e-5)  # the report rounds
    counted["bbox_mm"] = pytest.approx(counted["bbox_mm"], rel=1e-5)
    assert r["after"] == counted


def test_degenerate_and_duplicate_faces_never_reach_the_preview_renderer(tmp_path, clean_arch, monkeypatch):
    """A ray tracer's BVH cannot split a heap of identical or coincident triangles (100,000 copies of one
    facet kept the renderer busy for minutes): the previews draw each place once, and only triangles
    with an area."""
    from smilepass.mesh import previews, render

    V, F, margin = clean_arch
    rng = np.random.default_rng(5)
    F = syn.punch_hole(V, F, syn.interior_vertex(V, F, rng), 0.6)
    V, F = syn.add_debris(V, F, rng, count=2)
    for kind in syn.DEGENERATE_KINDS:
        V, F = syn.add_degenerate(V, F, rng, 2_000, kind)
    drawn = []
    real = render.render_before_after

    def spy(camera, kept, removed, added, kept_flipped=None):
        drawn.extend([kept, removed, added])
        return real(camera, kept, removed, added, kept_flipped)

    monkeypatch.setattr(previews.render, "render_before_after", spy)
    result = repair(write_binary_stl(tmp_path / "heap.stl", V, F), tmp_path / "out", "heap")
    assert result.verdict == "repaired" and result.preview_before.exists()
    r = result.report
    assert r["degenerate_removed"] + r["duplicates_removed"] >= 4_000 and r["fragments_removed"] == 2
    kept, removed, added = drawn
    assert len(removed[1]) >= 16 and len(added[1]) > 0  # the debris is drawn, and the filled hole
    places = set()
    for Vs, Fs in drawn:
        corners = Vs[Fs].astype(np.float64)
        area = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
        assert (area > 1e-9).all()
        places.update(frozenset(map(tuple, tri)) for tri in corners.tolist())
    assert len(places) == sum(len(Fs) for _, Fs in drawn)  # no two drawn triangles in the same place


def test_zero_area_slivers_are_collapsed_without_leaving_slits(tmp_path, clean_arch):
    """A sliver whose corner lies on its opposite edge has no area but three distinct corners; removing
    it alone would open a slit (and filling that slit would put the same sliver back)."""
    V, F, margin = clean_arch
    e = Edges(F, len(V))
    h1, h2 = e.pairs(only_manifold=True)
    V2, F2 = V.copy(), F.copy()
    extra_v, extra_f, replaced = [], [], []
    for h in h1[::997][:15]:
        f, k = h // 3, h % 3
        a, b, c = F[f, k], F[f, (k + 1) % 3], F[f, (k + 2) % 3]
        mid = len(V2) + len(extra_v)
        extra_v.append((V[a] + V[b]) / 2)
        replaced.append(f)
        extra_f += [[a, mid, c], [mid, b, c], [a, b, mid]]  # the last one is the zero-area sliver
    keep = np.ones(len(F), bool)
    keep[replaced] = False
    V2 = np.concatenate([V2, np.array(extra_v, np.float32)])
    F2 = np.concatenate([F2[keep], np.array(extra_f, F.dtype)])
    result = run(tmp_path, write_binary_stl(tmp_path / "slivers.stl", V2, F2))
    r = result.report
    assert r["before"]["degenerate_triangles"] == 15 and r["before"]["boundary_loops"] == 1
    assert r["collapsed_edges"] == 15 and r["holes_filled"] == 0
    assert r["after"]["degenerate_triangles"] == 0 and r["after"]["triangles"] == len(F)
    assert_clean_open_arch(result, margin)


def test_the_upload_column_counts_the_surface_without_faces_that_add_nothing_to_it(tmp_path, clean_arch):
    """Faces with a repeated corner, with three corners at one new point and needles pointing to a corner
    of their own (issue 12's "zero-area" export) have their own row, degenerate triangles: the upload's
    pieces, loops and open, non-manifold and inconsistent edges are the surface's, as if they were not
    in the file (before: thousands of pieces and loops for one arch). The repaired scan is the same."""
    from smilepass.mesh.topology import measure

    V, F, margin = clean_arch
    V2, F2 = syn.add_degenerate(V, F, np.random.default_rng(4), 6_000, "zero-area")
    r = run(tmp_path, write_binary_stl(tmp_path / "squashed.stl", V2, F2)).report
    arch = measure(V, F, 1e-9).stats
    keys = ("components", "boundary_loops", "boundary_edges", "non_manifold_edges", "inconsistent_edges")
    assert {k: r["before"][k] for k in keys} == {k: arch[k] for k in keys}
    assert (r["before"]["components"], r["before"]["boundary_loops"]) == (1, 1)
    assert r["before"]["degenerate_triangles"] == r["degenerate_removed"] == 6_000
    assert r["before"]["triangles"] == len(F) + 6_000 and r["after"]["triangles"] == len(F)
    # Every face of the input in the surface's numbers (what the report counted before) says otherwise.
    whole = measure(V2, F2, 1e-9).stats
    assert whole["components"] > 1_000 and whole["boundary_loops"] > 1_000


def test_a_needle_to_a_corner_of_its_own_and_its_copies_are_left_out_of_the_edges(clean_arch):
    """A needle pointing to a corner no face with an area uses opens and closes nothing: it and a copy
    of it (rotated, so its shape is computed from other corners) are left out of the edge sort, and
    the copy is not counted back on the surface's edges. (A sliver over a T-junction, whose corners
    are all the surface's, stays in: test_zero_area_slivers_are_collapsed_without_leaving_slits.)"""
    from smilepass.mesh.topology import measure

    V, F, _ = clean_arch
    h1, _ = Edges(F, len(V)).pairs(only_manifold=True)
    f, k = h1[5] // 3, h1[5] % 3
    a, b = F[f, k], F[f, (k + 1) % 3]
    tip = len(V)
    V2 = np.concatenate([V, ((V[a] + V[b]) / 2)[None, :].astype(V.dtype)])
    F2 = np.concatenate([F, np.array([[a, b, tip], [b, tip, a]], F.dtype)])
    measured = measure(V2, F2, 1e-4, set_aside_copies=True, surface_only=True)
    assert measured.set_aside.left_out.tolist() == [len(F), len(F) + 1]
    assert len(measured.set_aside.copies) == 0 and measured.edges.n_faces == len(F)
    assert measured.stats["degenerate_triangles"] == 2 and measured.stats["duplicate_triangles"] == 1
    arch = measure(V, F, 1e-4).stats
    assert {k: measured.stats[k] for k in ("boundary_edges", "non_manifold_edges", "boundary_loops")} == \
        {k: arch[k] for k in ("boundary_edges", "non_manifold_edges", "boundary_loops")}


def test_a_copy_is_left_out_or_kept_with_its_first_face_whatever_its_own_shape_says():
    """Copies are left out as their set's first face is: rounding can call a rotated copy of a face
    thin when the face is not (or not when it is), and a copy set aside must have its first face among
    the faces kept (its edges are counted on the first face's)."""
    from smilepass.mesh.topology import _left_out_of_surface

    F = np.array([[0, 1, 2], [1, 2, 3], [0, 1, 9], [2, 3, 1], [9, 0, 1]], np.int32)  # 3 copies 1, 4 copies 2
    thin = np.array([False, False, True, True, False])  # the copies' own shapes disagree with the firsts'
    copies = (np.array([False, False, False, True, True]), np.array([0, 1, 2, 1, 2]))
    gone = _left_out_of_surface(F, 10, thin, np.zeros(5, bool), copies)
    assert gone.tolist() == [False, False, True, False, True]


def test_non_orientable_input_does_not_break_the_pipeline(tmp_path):
    """A Moebius strip cannot be oriented (Open3D's orient_triangles() returns False and leaves part of
    the mesh flipped); here the report says how many edges stay inconsistent."""
    n = 600
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    rows = []
    for w in (-1.0, 1.0):
        rows.append(np.stack([(10 + w * np.cos(t / 2)) * np.cos(t), (10 + w * np.cos(t / 2)) * np.sin(t),
                              w * np.sin(t / 2)], axis=1))
    V = np.concatenate(rows).astype(np.float32)
    F = []
    for i in range(n):
        j = (i + 1) % n
        a, b, c, d = i, j, n + j, n + i
        if j == 0:  # the half twist: the strip's two sides swap
            b, c = n + 0, 0
        F += [[a, b, c], [a, c, d]]
    result = run(tmp_path, write_binary_stl(tmp_path / "m.stl", V, np.array(F)))
    assert result.report["after"]["non_manifold_edges"] == 0
    assert result.report["inconsistent_edges_left"] >= 1


# --- outputs, previews, progress -----------------------------------------------------------------


def test_ply_upload_gives_binary_ply_and_stl_keeping_doubles_and_colours(tmp_path, clean_arch):
    """`o3d.t.geometry.TriangleMesh.from_legacy()` would round coordinates to float32: the pipeline
    keeps what the file had, and the scanner's vertex colours too."""
    from smilepass.mesh.readers import load_file

    V, F, margin = clean_arch
    Vd = V.astype(np.float64) + 1e-9 * np.arange(len(V))[:, None]
    path = write_binary_ply(tmp_path / "d.ply", Vd, F, coord="double")
    result = run(tmp_path, path)
    assert result.repaired_path.name == "scan.repaired.ply" and result.repaired_stl_path.name == "scan.repaired.stl"
    header = result.repaired_path.read_bytes()[:400]
    assert b"binary_little_endian" in header and b"property double x" in header
    t = topology(result.repaired_path)
    assert t["V"].dtype == np.float64 and np.array_equal(np.sort(t["V"], axis=0), np.sort(Vd, axis=0))
    assert topology(result.repaired_stl_path)["triangles"] == len(F)

    rgb = (np.arange(len(V) * 3) % 251).astype(np.uint8).reshape(-1, 3)
    vert = np.zeros(len(V), np.dtype([("p", "<f4", (3,)), ("rgb", "u1", (3,))]))
    vert["p"], vert["rgb"] = V, rgb
    faces = np.zeros(len(F), np.dtype([("n", "u1"), ("v", "<i4", (3,))]))
    faces["n"], faces["v"] = 3, F
    header = (f"ply\nformat binary_little_endian 1.0\nelement vertex {len(V)}\nproperty float x\nproperty float y\n"
              "property float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\n"
              f"element face {len(F)}\nproperty list uchar int vertex_indices\nend_header\n")
    (tmp_path / "c.ply").write_bytes(header.encode() + vert.tobytes() + faces.tobytes())
    out = run(tmp_path, tmp_path / "c.ply").repaired_path
    raw = load_file(out)
    assert raw.colors is not None and b"property uchar red" in out.read_bytes()[:500]
    by_position = {tuple(p): tuple(c) for p, c in zip(V, rgb, strict=True)}
    assert all(by_position[tuple(p)] == tuple(c) for p, c in zip(raw.vertices, raw.colors, strict=True))


def test_previews_and_atomic_outputs(tmp_path, clean_arch):
    V, F, margin = clean_arch
    rng = np.random.default_rng(8)
    F = syn.punch_hole(V, F, syn.interior_vertex(V, F, rng), 1.0)
    V, F = syn.add_debris(V, F, rng, count=2, lift=1.0)
    calls = []
    result = repair(write_binary_stl(tmp_path / "p.stl", V, F), tmp_path / "out", "case7",
                    progress=lambda stage, fraction: calls.append((stage, fraction)))
    from PIL import Image

    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["case7.after.glb", "case7.after.png", "case7.before.glb",
                                                     "case7.before.png", "case7.repaired.stl"]
    after = np.asarray(Image.open(result.preview_after))
    before = np.asarray(Image.open(result.preview_before))
    assert after.shape == before.shape == (480, 640, 3)
    assert (after[0, 0] == 255).all() and (after[-1, -1] == 255).all()  # white background
    orange = (after[..., 0] > 200) & (after[..., 1] > 80) & (after[..., 1] < 160) & (after[..., 2] < 60)
    red = (before[..., 0] > 150) & (before[..., 1] < 60) & (before[..., 2] < 60)
    assert orange.sum() > 20 and red.sum() > 5  # the filled hole, the removed debris
    assert not ((before[..., 0] > 200) & (before[..., 1] > 80) & (before[..., 1] < 160) & (before[..., 2] < 60)).any()

    # Progress: known stage names, fractions never go back, enough calls for a bar, ends at 1.
    assert {s for s, _ in calls} <= STAGES and {"reading", "cleaning", "rendering", "saving"} <= {s for s, _ in calls}
    fractions = [f for _, f in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(calls) >= 12
    assert set(result.report["stage_seconds"]) <= STAGES


def test_the_file_is_read_once(tmp_path, clean_arch, monkeypatch):
    """load_file() makes every check inspect_file() makes, in the same pass: the repair reads its input
    once (a 100 MB ASCII STL costs seconds per read)."""
    from smilepass.mesh import readers

    reads = []
    read = readers._read
    monkeypatch.setattr(readers, "_read", lambda path, **kw: reads.append(path) or read(path, **kw))
    V, F, margin = clean_arch
    src = write_binary_stl(tmp_path / "once.stl", V, F)
    assert run(tmp_path, src).verdict == "ready"
    assert reads == [src]


@pytest.mark.parametrize("fail_at", ["rendering", "saving"])
def test_a_job_killed_midway_leaves_no_output_files(tmp_path, clean_arch, fail_at):
    V, F, margin = clean_arch
    src = write_binary_stl(tmp_path / "k.stl", V, F)

    class Killed(Exception):
        pass

    def progress(stage, fraction):
        if stage == fail_at and fraction > 0.05 + (0.6 if fail_at == "rendering" else 0.85):
            raise Killed

    with pytest.raises(Killed):
        repair(src, tmp_path / "out", "scan", progress=progress)
    assert list((tmp_path / "out").iterdir()) == []


def test_options_from_json_and_their_effect(tmp_path, clean_arch):
    V, F, margin = clean_arch
    defaults = RepairOptions()
    stored = json.loads(json.dumps(dataclasses.asdict(defaults)))
    assert RepairOptions.from_dict(stored) == defaults
    assert RepairOptions.from_dict({"debris_max_area_fraction": "0.05", "removed_in_v2": 1}) == \
        RepairOptions(debris_max_area_fraction=0.05)
    assert RepairOptions.from_dict(None) == defaults

    rng = np.random.default_rng(9)
    F = syn.punch_hole(V, F, syn.interior_vertex(V, F, rng), 0.6)
    V, F = syn.add_debris(V, F, rng, count=2)
    path = write_binary_stl(tmp_path / "o.stl", V, F)
    keep_all = run(tmp_path, path, options=RepairOptions(debris_max_area_fraction=0.0,
                                                          hole_max_perimeter_fraction=0.0))
    assert keep_all.report["fragments_removed"] == 0 and keep_all.report["holes_filled"] == 0
    assert keep_all.report["options"]["hole_max_perimeter_fraction"] == 0.0
    assert run(tmp_path, path).report["holes_filled"] == 1


# --- Open3D 0.20 traps ----------------------------------------------------------------------------


def test_bad_index_is_refused_before_any_mesh_library_runs(tmp_path, clean_arch, monkeypatch):
    """Open3D loads an out-of-range face index silently and SIGSEGVs later in compute_vertex_normals; the
    previews' z-buffer would index out of range: the file is refused before either could run."""
    from smilepass.mesh import render

    monkeypatch.setattr(render, "_rasterize", lambda *a: (_ for _ in ()).throw(AssertionError))
    V, F, margin = clean_arch
    G = F.copy()
    G[3, 2] = len(V) + 5
    with pytest.raises(MeshRejected, match="refers to vertex"):
        repair(write_binary_ply(tmp_path / "bad.ply", V, G), tmp_path / "out", "bad")
    assert not (tmp_path / "out" / "bad.repaired.ply").exists()


def test_broken_stl_is_refused_where_open3d_returns_an_empty_mesh(tmp_path, clean_arch):
    import open3d as o3d

    V, F, margin = clean_arch
    data = write_binary_stl(tmp_path / "full.stl", V, F).read_bytes()
    (tmp_path / "cut.stl").write_bytes(data[:5000])
    assert len(o3d.io.read_triangle_mesh(str(tmp_path / "cut.stl")).triangles) == 0  # only a warning
    with pytest.raises(MeshRejected, match="truncated"):
        run(tmp_path, tmp_path / "cut.stl")


def test_hole_filling_returns_new_arrays(clean_arch):
    """o3d.t TriangleMesh.fill_holes() returns a mesh sharing the input's vertex buffer; ours neither
    aliases nor modifies its inputs."""
    V, F, margin = clean_arch
    F = syn.punch_hole(V, F, syn.interior_vertex(V, F, np.random.default_rng(3)), 0.7)
    V0, F0 = V.copy(), F.copy()
    e = Edges(F, len(V))
    loops = find_loops(V, F, e)
    hole = np.flatnonzero(loops.perimeter < loops.perimeter.max())
    V2, F2, _, added = fill(V, F, loops, hole)
    assert added > 0 and len(F2) == len(F) + added
    assert not np.shares_memory(V2, V) and not np.shares_memory(F2, F)
    assert np.array_equal(V, V0) and np.array_equal(F, F0)


def test_components_through_a_heap_of_copies_match_csgraph():
    """Faces around an edge shared by thousands of copies are one piece; counted without a label having
    to travel round a ring of them (the numbering is the same as scipy's, in order of first face)."""
    from smilepass.mesh.topology import face_components, manifold_components

    V, F = syn.arch(3_000, seed=5)
    V, F = syn.add_degenerate(V, F, np.random.default_rng(6), 5_000, "identical")
    F = np.concatenate([F, [[len(V), len(V) + 1, len(V) + 2]]]).astype(F.dtype)  # and a loose triangle
    V = np.concatenate([V, np.eye(3, dtype=V.dtype) * 500])
    e = Edges(F, len(V))
    assert e.counts.max() > 5_000
    count, labels = manifold_components(e, through_non_manifold=True)
    expected_count, expected = face_components(len(F), *e.pairs())
    assert count == expected_count == 2
    assert np.array_equal(labels, expected)


@pytest.mark.parametrize("n, base, ncols", [
    (2000, 2**20, 2),  # key and row number fit in 63 bits: one packed sort
    (5000, 2**28, 2),  # a few bits too wide: split into buckets by the first column's top bits
    (3000, 2**18, 3),
    (4000, 2**34, 2),  # far too wide: column by column
    (1500, 2**60, 2),  # one column and the row number are too wide: lexsort
])
def test_sort_by_columns_matches_lexsort(n, base, ncols):
    """Every path of sort_by_columns gives numpy's stable lexsort order and flags each new row value,
    repeated rows included (equal keys keep their row order)."""
    rng = np.random.default_rng(n)
    cols = [rng.integers(0, base, n) for _ in range(ncols)]
    for col in cols:
        col[: n // 2] = col[n - n // 2:][: n // 2]  # every row of the first half repeats one of the second
    cols[0][:50] = base - 1  # the top of the range (the last bucket)
    order, new = sort_by_columns(cols, base)
    expected = np.lexsort(list(reversed(cols)))
    assert np.array_equal(order, expected)
    rows = np.stack([col[expected] for col in cols], axis=1)
    assert new[0] and np.array_equal(new[1:], (rows[1:] != rows[:-1]).any(axis=1))
    assert 0 < new.sum() < n


def test_spatial_order_renumbers_a_shuffled_scan_only(monkeypatch, clean_arch):
    """A large scan whose faces come in no spatial order gets nearby numbers for nearby points and faces
    (the same triangles); one in scanning order, or a small one, is left as it is."""
    V, F, _ = clean_arch
    monkeypatch.setattr(weld, "REORDER_MIN_FACES", 1000)
    assert weld.spatial_order(V, F) is None  # the generator's grid order is coherent already
    shuffled = F[np.random.default_rng(4).permutation(len(F))]
    V_used, inverse, _ = weld.weld_exact(V[shuffled].reshape(-1, 3))  # numbered by first appearance, as read
    F_read = inverse.reshape(-1, 3)
    spread = F_read.max(axis=1) - F_read.min(axis=1)
    assert np.median(spread) > 0.1 * len(V_used)
    V2, F2, order = weld.spatial_order(V_used, F_read)
    assert np.array_equal(V2, V_used[order]) and sorted(order.tolist()) == list(range(len(V_used)))
    # The same triangles, corners in the same order (so the same winding).
    assert sorted(map(tuple, V2[F2].reshape(len(F2), -1).tolist())) == \
        sorted(map(tuple, V_used[F_read].reshape(len(F_read), -1).tolist()))
    assert np.median(F2.max(axis=1) - F2.min(axis=1)) < 0.01 * len(V2)
    monkeypatch.setattr(weld, "REORDER_MIN_FACES", len(F) + 1)
    assert weld.spatial_order(V_used, F_read) is None  # small enough for the cache


def test_a_flat_file_in_no_order_is_renumbered_without_dividing_by_nothing(monkeypatch):
    """Copies of one facet in the z = 0 plane (an export gone wrong, refused later): the z axis spans
    nothing; it made inf and NaN cell numbers (numpy's RuntimeWarnings, here errors)."""
    monkeypatch.setattr(weld, "REORDER_MIN_FACES", 1000)
    rng = np.random.default_rng(3)
    V = np.zeros((300, 3), np.float32)
    V[:, :2] = rng.random((300, 2))
    F = rng.integers(0, 300, (5000, 3)).astype(np.int32)
    with np.errstate(all="raise"):
        V2, F2, order = weld.spatial_order(V, F)
    assert np.array_equal(V2, V[order]) and sorted(order.tolist()) == list(range(300))
    triangles = sorted(map(tuple, V[F].reshape(len(F), -1).tolist()))
    assert sorted(map(tuple, V2[F2].reshape(len(F2), -1).tolist())) == triangles  # the same, corners in order


def test_a_renumbered_scan_is_repaired_as_in_file_order(tmp_path, monkeypatch, clean_arch):
    """The spatial renumbering of a shuffled file changes nothing in the repair: same report, same
    triangles out."""
    V, F, margin = clean_arch
    rng = np.random.default_rng(11)
    for _ in range(3):
        F = syn.punch_hole(V, F, syn.interior_vertex(V, F, rng), 0.6)
    F, _ = syn.flip_patch(V, F, syn.interior_vertex(V, F, rng), 2.0)
    F = syn.add_duplicates(F, rng, 25)
    F = syn.add_duplicates(F, rng, 25, back_to_back=True)  # shuffles the faces too
    V, F = syn.add_fins(V, F, rng, 12)
    V, F = syn.add_debris(V, F, rng, count=3)
    path = write_binary_stl(tmp_path / "shuffled.stl", V, F)
    as_read = run(tmp_path / "as_read", path)
    monkeypatch.setattr(weld, "REORDER_MIN_FACES", 1000)
    renumbered = run(tmp_path / "renumbered", path)
    assert (renumbered.verdict, renumbered.verdict_reason) == (as_read.verdict, as_read.verdict_reason)
    for key in ("before", "after", "holes_filled", "duplicates_removed", "non_manifold_removed",
                "fragments_removed", "flipped_triangles", "margin_loop_edges"):
        assert renumbered.report[key] == as_read.report[key], key
    assert_clean_open_arch(renumbered, margin)

    def triangles(path):
        raw = load_file(path)
        corners = raw.vertices.reshape(-1, 9)
        return corners[np.lexsort(corners.T[::-1])]
    assert np.array_equal(triangles(renumbered.repaired_path), triangles(as_read.repaired_path))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weld_exact_merges_exactly_the_equal_points(monkeypatch, dtype):
    """Every group of bit-identical points becomes one vertex, numbered by first appearance, whatever
    the slices the coordinates are checked in; points one ulp apart in a single coordinate, and -0.0
    beside 0.0, stay apart."""
    monkeypatch.setattr(weld, "_CHECK_SLICE", 7)  # many slice boundaries inside hash groups
    rng = np.random.default_rng(3)
    distinct = rng.random((300, 3)).astype(dtype)
    distinct[1] = distinct[0]
    distinct[1, 2] = np.nextafter(distinct[0, 2], dtype(2))
    distinct[2] = (0.0, 0.5, 0.5)
    distinct[3] = (-0.0, 0.5, 0.5)
    P = distinct[rng.integers(0, len(distinct), 5000)]
    V, inverse, first = weld.weld_exact(P)
    assert np.array_equal(V[inverse], P) and np.array_equal(P[first], V)
    expected = np.unique(P.view(np.dtype((np.void, 3 * P.itemsize))).ravel(), return_index=True)[1]
    assert np.array_equal(first, np.sort(expected))  # one vertex per distinct bit pattern, first appearance


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weld_exact_probes_past_points_that_share_a_slot(monkeypatch, dtype):
    """Distinct points whose hashes fall into one table slot are told apart by their coordinates and
    placed in the slots after it, each group still one vertex numbered by first appearance; a table
    that would need too many probing rounds hands over to the sorted weld (the same result here)."""
    rng = np.random.default_rng(8)
    distinct = rng.random((400, 3)).astype(dtype)
    distinct[:, 0] = np.repeat(distinct[:40, 0], 10)  # 40 x values, 10 points on each
    P = distinct[rng.integers(0, len(distinct), 6000)]
    expected = np.sort(np.unique(P.view(np.dtype((np.void, 3 * P.itemsize))).ravel(), return_index=True)[1])
    # A hash of x alone: the 10 points on each x share a slot.
    monkeypatch.setattr(weld, "_hash", lambda bits, w: (bits[:, 0].astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)))
    V, inverse, first = weld.weld_exact(P)
    assert np.array_equal(V[inverse], P) and np.array_equal(P[first], V)
    assert np.array_equal(first, expected)
    monkeypatch.setattr(weld, "_MAX_ROUNDS", 1)  # stops before the 10 points of one x are placed
    sorted_weld = []
    monkeypatch.setattr(weld, "_weld_sorted", lambda P, real=weld._weld_sorted: sorted_weld.append(1) or real(P))
    V2, inverse2, first2 = weld.weld_exact(P)
    assert sorted_weld == [1]
    assert np.array_equal(V2[inverse2], P)


def test_duplicate_faces_of_a_scan_in_spatial_order_are_found_as_in_any_order(monkeypatch, clean_arch):
    """The stable sort of a scan whose faces come in spatial order (its keys in ascending runs) finds
    the same copies, and keeps the same face of each set, as the mixed-key sort a shuffled file gets."""
    from smilepass.mesh import topology as topo

    V, F, _ = clean_arch
    rng = np.random.default_rng(21)
    copies = F[rng.integers(0, len(F), 300)]
    copies = np.where(rng.random((300, 1)) < 0.5, copies, copies[:, ::-1])  # half back to back
    F2 = np.insert(F, np.sort(rng.integers(0, len(F), 300)), copies, axis=0)
    stable_sorts = []
    real_argsort = np.argsort
    monkeypatch.setattr(topo.np, "argsort", lambda a, kind=None, **kw: stable_sorts.append(kind) or
                        real_argsort(a, kind=kind, **kw))
    in_runs = topo.duplicate_face_mask(F2, len(V), with_first=True)
    assert stable_sorts == ["stable"]  # the spatial-order path was taken
    monkeypatch.setattr(topo, "_RUNS_MAX_DESCENTS", -1.0)
    mixed = topo.duplicate_face_mask(F2, len(V), with_first=True)
    assert in_runs[0].sum() == 300
    assert np.array_equal(in_runs[0], mixed[0]) and np.array_equal(in_runs[1], mixed[1])
    # A mix that sends every key to one run (every face a collision): the copies are still exactly
    # these (the check of the faces taken for copies sees the collisions and sorts the keys instead).
    monkeypatch.setattr(topo, "_KEY_MULT", np.uint64(0))
    collided = topo.duplicate_face_mask(F2, len(V), with_first=True)
    assert np.array_equal(in_runs[0], collided[0]) and np.array_equal(in_runs[1], collided[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("values", [np.arange(5.0), np.arange(-2, 3) * 0.25, np.arange(0, 500, 100.0)])
def test_weld_exact_merges_points_with_round_coordinates(dtype, values):
    """Coordinates on a grid (whole numbers, quarter millimetres: a double's low bits all zero) hash
    apart like any others, so every copy is merged: 125 vertices, not tens of thousands (a float64 PLY
    of such points once kept 27,000 of 100,000 corners apart)."""
    rng = np.random.default_rng(5)
    P = rng.choice(values, (100_000, 3)).astype(dtype)
    V, inverse, first = weld.weld_exact(P)
    assert len(V) == 125
    assert np.array_equal(V[inverse], P) and np.array_equal(P[first], V)


def test_a_repair_reads_the_file_once_and_sorts_its_edges_once(tmp_path, clean_arch, monkeypatch):
    """What the repair job runs (scans/repair.py calls repair() on the stored file, previews and web
    copies included) reads the upload once and measures a scan that nothing changed once: no second
    read, no second edge sort, no second count."""
    from smilepass.mesh import pipeline, topology

    counts = {"read": 0, "edges": 0, "measure": 0}

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(pipeline, "load_file", counted("read", pipeline.load_file))
    monkeypatch.setattr(pipeline, "measure", counted("measure", pipeline.measure))
    monkeypatch.setattr(topology.Edges, "__init__", counted("edges", topology.Edges.__init__))
    V, F, _ = clean_arch
    result = run(tmp_path, write_binary_stl(tmp_path / "clean.stl", V, F), preview=True)
    assert result.verdict == "ready" and result.web_after is not None and result.preview_after is not None
    assert counts == {"read": 1, "edges": 1, "measure": 1}


def _scans_with_copies():
    """Scans with copies in both windings, a heap of identical facets, copies on the boundary, fins,
    needles and an inverted patch: what measure(set_aside_copies=True) must count as if every copy
    had been sorted with the rest."""
    V, F = syn.arch(6_000, seed=8)
    rng = np.random.default_rng(9)
    yield "duplicate", syn.add_degenerate(V, F, rng, 3_000, "duplicate")
    yield "identical", syn.add_degenerate(V, F, rng, 2_000, "identical")
    F2, _ = syn.flip_patch(V, F, syn.interior_vertex(V, F, rng), 2.0)
    F2 = syn.add_duplicates(F2, rng, 200, back_to_back=True)
    yield "flipped patch, back-to-back copies", (V, syn.add_duplicates(F2, rng, 200))
    V3, F3 = syn.add_fins(V, F2, rng, 12)
    V3, F3 = syn.add_degenerate(V3, F3, rng, 500, "zero-area")
    yield "fins, flipped patch, copies, needles", (V3, syn.add_duplicates(F3, rng, 200))


@pytest.mark.parametrize("surface_only", [False, True])
@pytest.mark.parametrize("case", range(4))
def test_copies_set_aside_from_the_edge_sort_count_as_sorted_with_the_rest(case, surface_only, monkeypatch):
    """surface_only: the faces that add nothing to the surface (the needles of case 3 and their copies)
    left out of both counts, the copies kept in the edges in one and set aside in the other."""
    from smilepass.mesh import topology
    from smilepass.mesh.topology import measure

    monkeypatch.setattr(topology, "SET_ASIDE_MIN_SHARE", 0.0)  # a few copies too (the repair sorts them)
    name, (V, F) = list(_scans_with_copies())[case]
    F = F.astype(np.int32)
    whole = measure(V, F, 1e-9, surface_only=surface_only)
    aside = measure(V, F, 1e-9, set_aside_copies=True, surface_only=surface_only)
    left_out = aside.set_aside.left_out
    left_out = np.zeros(0, np.int64) if left_out is None else left_out
    assert (len(left_out) > 0) == (surface_only and case == 3), name
    copies = whole.stats["duplicate_triangles"]
    copies_left_out = int(np.count_nonzero(whole.duplicates[left_out]))  # copies of needles
    assert len(aside.set_aside.copies) == copies - copies_left_out > 0
    assert aside.edges.n_faces == len(F) - copies - (len(left_out) - copies_left_out)
    assert aside.stats == whole.stats, name


@pytest.mark.parametrize("case", range(4))
def test_cleaning_that_calls_a_scan_consistently_wound_is_right(tmp_path, case):
    """orient() skips its check when cleaning knows the winding to be consistent (copies set aside, the
    vote's turns checked): then a fresh sort finds no edge walked the same way by both its faces, and
    a scan with an inverted patch is never called consistent."""
    from smilepass.mesh.pipeline import _Progress, _Work

    name, (V, F) = list(_scans_with_copies())[case]
    work = _Work.from_raw(load_file(write_binary_stl(tmp_path / "scan.stl", V, F)), RepairOptions())
    steps = _Progress(None, True)
    steps.stage("cleaning")
    work.clean(steps)
    _, _, same = Edges(work.F, len(work.V)).inconsistent_pairs()
    assert work.consistent == (name in ("duplicate", "identical")), name
    assert not (work.consistent and same.any())


def test_smallest_linked_finds_the_components_csgraph_finds():
    """smallest_linked() (the boundary loops of large inputs) gives every node the smallest node of its
    component: random graphs, a path numbered against its direction, and no links at all."""
    from smilepass.mesh.topology import graph_components, smallest_linked

    rng = np.random.default_rng(12)
    path = rng.permutation(30_000)
    graphs = [(n, rng.integers(0, n, k), rng.integers(0, n, k)) for n, k in ((1_000, 400), (1_000, 1_500),
                                                                            (50_000, 45_000))]
    graphs += [(30_000, path[:-1], path[1:]), (30_000, np.arange(29_999, 0, -1), np.arange(29_998, -1, -1)),
               (10, np.zeros(0, np.int64), np.zeros(0, np.int64))]
    for n, a, b in graphs:
        root = smallest_linked(n, a, b)
        count, labels = graph_components(n, a, b)
        smallest = np.full(count, n)
        np.minimum.at(smallest, labels, np.arange(n))
        assert np.array_equal(root, smallest[labels])


def test_linked_merges_count_the_components_of_the_linked_nodes():
    """linked_merges() (the boundary loops of large inputs): the nodes the links touch less the merges
    are the components among them that csgraph finds, for random graphs with repeated links, a path
    numbered against its direction, a star and no links at all."""
    from smilepass.mesh.topology import graph_components, linked_merges

    rng = np.random.default_rng(14)
    path = rng.permutation(30_000)
    graphs = [(n, rng.integers(0, n, k), rng.integers(0, n, k)) for n, k in ((1_000, 400), (1_000, 1_500),
                                                                            (50_000, 45_000), (200, 5_000))]
    graphs += [(30_000, path[:-1], path[1:]), (30_000, np.arange(29_999, 0, -1), np.arange(29_998, -1, -1)),
               (500, np.zeros(499, np.int64), np.arange(1, 500)), (10, np.zeros(0, np.int64), np.zeros(0, np.int64))]
    for n, a, b in graphs:
        apart = a != b
        a, b = a[apart], b[apart]
        touched = np.zeros(n, bool)
        touched[a] = touched[b] = True
        _, labels = graph_components(n, a, b)
        expected = len(np.unique(labels[touched]))
        assert int(touched.sum()) - linked_merges(n, a, b) == expected


def test_masked_picks_what_a_boolean_mask_picks():
    """masked() takes numpy's boolean indexing for nearly full masks and an index otherwise: the same
    entries in the same order either way (empty, mixed, nearly full and full masks)."""
    from smilepass.mesh.topology import masked

    rng = np.random.default_rng(15)
    values = rng.integers(0, 1_000_000, 10_000).astype(np.int32)
    for share in (0.0, 0.2, 0.6, 0.95, 1.0):
        mask = rng.random(len(values)) < share
        assert np.array_equal(masked(values, mask), values[mask]), share
    assert len(masked(values[:0], np.zeros(0, bool))) == 0


def test_jumping_some_nodes_to_their_roots_leaves_the_others_alone():
    from smilepass.mesh.topology import jump_nodes_to_roots

    # 0 <- 1 <- 2 <- 3 <- 4, 5 <- 6 <- 7, 8 alone
    parent = np.array([0, 0, 1, 2, 3, 5, 5, 6, 8], np.int32)
    for steps in (8, 1):  # followed one at a time; beyond one step, shortened as they go
        out = jump_nodes_to_roots(parent.copy(), np.array([4, 7, 8, 2]), steps=steps)
        assert out.tolist() == [0, 0, 0, 2, 0, 5, 5, 5, 8], steps
    # A chain of 1,000 nodes numbered against its direction, all of them asked for.
    chain = np.append(np.arange(1, 1_000), 999).astype(np.int32)  # i -> i + 1, the root 999
    assert (jump_nodes_to_roots(chain.copy(), np.arange(1_000)) == 999).all()


@pytest.mark.parametrize("kind", syn.DEGENERATE_KINDS)
def test_boundary_loops_of_a_large_boundary_are_those_of_a_small_one(monkeypatch, kind):
    """Boundary loops counted over vertex numbers (beyond _NUMPY_LOOPS_MAX_EDGES boundary edges,
    self-loops of squashed faces left out of the links) are those counted on the boundary's own
    vertices."""
    from smilepass.mesh import topology
    from smilepass.mesh.topology import boundary_vertex_components

    rng = np.random.default_rng(13)
    V, F = syn.arch(14_000, seed=13)
    F = syn.punch_hole(V, F, syn.interior_vertex(V, F, rng), 1.0)
    V, F = syn.add_degenerate(V, F, rng, 6_000, kind)
    V, F = syn.add_fins(V, F, rng, 40)
    e = Edges(F.astype(np.int32), len(V))
    small = boundary_vertex_components(e)
    monkeypatch.setattr(topology, "_NUMPY_LOOPS_MAX_EDGES", 0)
    assert boundary_vertex_components(e) == small > 1


def test_input_pieces_join_removed_faces_linked_only_to_later_removed_faces(tmp_path):
    """The input's piece count when removed faces hang on one another (squashed faces sharing an edge
    or a repeated corner's self-loop, a chain of them early in the file joined to the surface only by a
    removed face late in it) is what counting every face through any shared edge finds: the links the
    first hook leaves apart join the trees too."""
    from smilepass.mesh.pipeline import _Work
    from smilepass.mesh.topology import manifold_components

    V, F = syn.arch(6_000, seed=15)
    rng = np.random.default_rng(16)
    chains = []
    for a, b in F[rng.choice(len(F), 30, replace=False)][:, :2]:
        p = len(V) + np.arange(6)
        V = np.concatenate([V, V[a] + np.float32(3.0) + np.arange(6, dtype=np.float32)[:, None]])
        chain = [(p[i], p[i], p[i + 1]) for i in range(5)] + [(p[i + 1], p[i + 1], p[i]) for i in range(5)]
        hang = [(a, a, b), (a, a, p[0]), (p[0], p[0], a)]  # on the surface's edge {a, b}, then to the chain
        chains.append((chain, hang))
    F = np.concatenate([[f for chain, _ in chains for f in chain], F, [f for _, hang in chains for f in hang]])
    path = write_binary_stl(tmp_path / "scan.stl", V, F.astype(np.int32))
    read = _Work.from_raw(load_file(path), RepairOptions())
    expected = manifold_components(Edges(read.F, len(read.V)), through_non_manifold=True)[0]
    result = repair(path, tmp_path / "out", "scan", preview=False)
    assert result.report["before"]["components"] == expected == 1
    assert result.report["degenerate_removed"] == 30 * 13


@pytest.mark.parametrize("shuffled", [False, True])
def test_pieces_of_a_scan_in_any_face_order_are_csgraphs(shuffled):
    """Pieces through manifold edges (the trees of the first round joined by smallest_linked) are
    scipy's, numbered in order of first face, for faces in scanning order and for faces in none, with
    debris, holes and fins (non-manifold edges joining nothing)."""
    from smilepass.mesh.topology import face_components, manifold_components

    rng = np.random.default_rng(17)
    V, F = syn.arch(8_000, seed=17)
    F = syn.punch_hole(V, F, syn.interior_vertex(V, F, rng), 1.0)
    V, F = syn.add_debris(V, F, rng, count=5)
    V, F = syn.add_fins(V, F, rng, 20)
    if shuffled:
        F = F[rng.permutation(len(F))]
    e = Edges(F.astype(np.int32), len(V))
    count, labels = manifold_components(e)
    expected_count, expected = face_components(len(F), *e.pairs(only_manifold=True))
    assert count == expected_count > 5
    assert np.array_equal(labels, expected)


@pytest.mark.parametrize("kind", [None, *syn.DEGENERATE_KINDS])
def test_edge_keys_of_a_scan_with_degenerate_faces_spread_over_it_are_not_taken_for_runs(kind):
    """The edge sort takes timsort for the keys of a scan in scanning order (long ascending runs) and
    numpy's default sort when faces spread over the file cut the runs every few keys (45 % copies or
    squashed faces: timsort was 4-10x slower there); either way the order is lexsort's."""
    from smilepass.mesh.topology import keys_in_runs, tails_heads

    V, F = syn.arch(40_000, seed=18) if kind is None else syn.degenerate_scan(40_000, 0.45, kind)
    tails, heads = tails_heads(F)
    lo, hi = np.minimum(tails, heads).astype(np.int64), np.maximum(tails, heads).astype(np.int64)
    bits, rows = int(len(V) - 1).bit_length(), int(len(tails) - 1).bit_length()
    packed = (((lo << bits) | hi) << rows) | np.arange(len(tails))
    assert keys_in_runs(packed) == (kind is None)
    order, _ = sort_by_columns([lo, hi], len(V))
    assert np.array_equal(order, np.lexsort((hi, lo)))


def test_same_winding_is_a_rotation_of_the_first_face():
    """same_winding() (by the permutation's parity, repeated corners always alike) against a check of the
    three rotations, on every order of faces of three distinct and of repeated vertices, on both paths
    (few copies: rows gathered; many: the whole face array)."""
    from itertools import permutations

    from smilepass.mesh.topology import same_winding

    faces = [p for vertices in ((3, 7, 9), (5, 5, 2), (8, 1, 8), (4, 4, 4)) for p in permutations(vertices)]
    F = np.array(faces, np.int32)
    first, copies = np.array([(i, j) for i in range(len(F)) for j in range(len(F))
                              if sorted(faces[i]) == sorted(faces[j])]).T
    rotations = [[tuple(np.roll(faces[i], r)) for r in range(3)] for i in range(len(F))]
    expected = np.array([faces[j] in rotations[i] for i, j in zip(first, copies, strict=True)])
    assert expected.any() and not expected.all()
    assert np.array_equal(same_winding(F, first, copies), expected)  # many copies: the whole array
    padded = np.concatenate([F, np.tile(np.array([[0, 1, 2]], np.int32), (4 * len(copies), 1))])
    assert np.array_equal(same_winding(padded, first, copies), expected)  # few: the rows compared


def test_first_faces_of_long_and_short_runs_of_copies(monkeypatch):
    """_copies_from_runs steps back from each copy to its set's first face while the runs are short and
    takes a running maximum when they are long (a heap of copies of one facet): both give what the
    argsort path gives (the mix sending every key to one run)."""
    from smilepass.mesh import topology as topo

    V, F = syn.arch(3_000, seed=5)
    rng = np.random.default_rng(5)
    for heap in (0, 40, 2_000):  # no heap, a run longer than the steps, most copies in one run
        extra = np.concatenate([F[rng.integers(0, len(F), 400)], np.repeat(F[7:8, ::-1], heap, axis=0)])
        F2 = np.insert(F, np.sort(rng.integers(0, len(F), len(extra))), extra, axis=0)
        monkeypatch.setattr(topo, "_RUNS_MAX_DESCENTS", -1.0)  # the mixed-key path
        mixed = topo.duplicate_face_mask(F2, len(V), with_first=True)
        monkeypatch.setattr(topo, "_KEY_MULT", np.uint64(0))  # every key collides: the argsort path
        sorted_ = topo.duplicate_face_mask(F2, len(V), with_first=True)
        monkeypatch.undo()
        assert mixed[0].sum() >= 400 + heap - 20
        assert np.array_equal(mixed[0], sorted_[0]) and np.array_equal(mixed[1], sorted_[1]), heap

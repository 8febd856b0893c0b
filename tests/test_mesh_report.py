"""The scan report adds up (every open loop found before filling is filled, left open or the scan's
margin), the scan panel shows "Holes left open" beside "Holes filled", and repaired areas stand out in
the preview even when they are a few pixels across."""
import json

import numpy as np
import pytest
from PIL import Image

from smilepass.mesh import RepairOptions, render, repair
from smilepass.mesh import synthetic as syn
from smilepass.models import Scan, Ticket, User

from .conftest import query
from .meshgen import SHARED_MESHES, write_binary_stl

BUNNY = SHARED_MESHES / "stanford_bunny_res2_holes.ply"
ORANGE = tuple(int(c * 255 + 0.5) for c in render.FILLED)


def arch_with_a_small_hole(tmp_path):
    V, F = syn.arch(24_000, seed=5)
    F = syn.punch_hole(V, F, syn.interior_vertex(V, F, np.random.default_rng(5)), 0.35)
    return write_binary_stl(tmp_path / "hole.stl", V, F)


def assert_loops_add_up(report):
    assert report["loops_before_filling"] == report["holes_filled"] + report["holes_left_open"] \
        + report["margin_loops"]
    assert report["after"]["boundary_loops"] == report["holes_left_open"] + report["margin_loops"]


def test_every_loop_is_accounted_for(tmp_path):
    result = repair(arch_with_a_small_hole(tmp_path), tmp_path, "out", options=RepairOptions(), preview=False)
    report = result.report
    assert (report["before"]["boundary_loops"], report["loops_before_filling"]) == (2, 2)
    assert (report["holes_filled"], report["holes_left_open"], report["margin_loops"]) == (1, 0, 1)
    assert_loops_add_up(report)


@pytest.mark.skipif(not BUNNY.exists(), reason=f"shared test mesh not found at {BUNNY}")
def test_the_bunny_report_adds_up(tmp_path):
    """Its 5 uploaded loops become 10 once 85 non-manifold triangles are removed: 5 are filled, 4 are
    too odd to fill safely (the verdict's "4 holes"), 1 is its base. So the open loops stay at 5."""
    result = repair(BUNNY, tmp_path, "bunny", preview=False)
    report = result.report
    assert report["before"]["boundary_loops"] == 5 and report["non_manifold_removed"] == 85
    assert (report["loops_before_filling"], report["holes_filled"], report["holes_left_open"],
            report["margin_loops"]) == (10, 5, 4, 1)
    assert_loops_add_up(report)
    assert result.verdict == "needs_rescan" and "4 holes that could not be filled" in result.verdict_reason


def test_repaired_areas_are_circled_in_the_preview(tmp_path):
    result = repair(arch_with_a_small_hole(tmp_path), tmp_path, "out", options=RepairOptions())
    after = np.asarray(Image.open(result.preview_after).convert("RGB"))
    orange = (after == ORANGE).all(axis=2)
    # A ring of MARK_WIDTH around a hole a few pixels wide: far more orange than the filling itself.
    ring_area = np.pi * (render.MARK_RADIUS ** 2 - (render.MARK_RADIUS - render.MARK_WIDTH) ** 2)
    assert orange.sum() >= 0.8 * ring_area
    # Nothing was removed here, so the before image has no marks.
    before = np.asarray(Image.open(result.preview_before).convert("RGB"))
    assert not (before == tuple(int(c * 255 + 0.5) for c in render.REMOVED)).all(axis=2).any()


def test_the_scan_panel_shows_holes_left_open_beside_holes_filled(clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    report = {"before": {"boundary_loops": 5}, "after": {"boundary_loops": 5}, "holes_filled": 5,
              "holes_left_open": 4, "loops_before_filling": 10, "margin_loops": 1}
    query(lambda: Scan.create(ticket=ticket_id, uploader=User.get(User.email == "dr.ada@clinic.test"),
                              original_name="arch.ply", stored_name="x" * 32 + ".ply", size=1, sha256="0" * 64,
                              file_format="ply-ascii", triangles=16301, state="done", verdict="needs_rescan",
                              report=json.dumps(report)))
    assert query(lambda: Ticket.get_by_id(ticket_id).scans.count()) == 1
    page = clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert '<th scope="row">Holes filled</th><td colspan="2">5</td>' in page
    assert '<th scope="row">Holes left open</th><td colspan="2">4</td>' in page
    assert ("the scan had 10 open loops: 5 holes filled, 4 left open and 1 outer edge of the scan (the gum margin), "
            "which stays open.") in page


def test_a_large_scans_preview_drawn_from_a_clustered_copy_looks_the_same(monkeypatch):
    """Above 2 x PREVIEW_FACES kept faces the kept surface is drawn from a clustered copy (previews.py):
    the picture covers the same pixels, shows the faces the repair turned (blue-grey, drawn as they were)
    in the same place, and is shaded alike."""
    from smilepass.mesh import previews

    V, F = syn.arch(1_000_000, seed=2)
    centre = V[syn.interior_vertex(V, F, np.random.default_rng(2))]
    flipped = np.linalg.norm(V[F].mean(axis=1) - centre, axis=1) < 2.0
    mesh = previews.RepairedMesh(V, F, np.zeros(len(F), bool), V, F, len(F), flipped, 1e-6)
    clustered, _ = previews.render_previews(mesh)
    monkeypatch.setattr(previews, "PREVIEW_FACES", len(F))
    full, _ = previews.render_previews(mesh)
    hit_c, hit_f = (clustered != 255).any(axis=2), (full != 255).any(axis=2)
    assert (hit_c != hit_f).sum() <= 0.01 * hit_f.sum()

    def blue(image):
        return (image[..., 2].astype(int) > image[..., 0].astype(int) + 10) & hit_f

    assert blue(full).sum() > 500 # the turned patch shows
    assert (blue(clustered) != blue(full)).sum() <= 0.1 * blue(full).sum()
    both = hit_c & hit_f
    assert np.abs(clustered[both].astype(int) - full[both].astype(int)).mean() < 12


def test_the_scan_panel_says_the_uploads_pieces_and_edges_are_counted_without_degenerate_triangles(
        tmp_path, clinician, new_ticket):
    """A report of a scan with degenerate triangles says so under its table (their own row counts them);
    a report stored before the upload's numbers were the surface's, or of a scan without any, does not."""
    V, F = syn.degenerate_scan(6_000, 0.2, "zero-area")
    report = repair(write_binary_stl(tmp_path / "squashed.stl", V, F), tmp_path, "out", preview=False).report
    assert report["upload_counts"] == "surface" and report["before"]["degenerate_triangles"] > 1_000
    older = {key: value for key, value in report.items() if key != "upload_counts"}
    clean = dict(report, before=dict(report["before"], degenerate_triangles=0))
    hint = "Degenerate triangles have no surface: the uploaded scan's separate pieces and open and non-manifold edges"
    for stored, shown in ((report, True), (older, False), (clean, False)):
        ticket_id = new_ticket(clinician)
        query(lambda stored=stored, ticket_id=ticket_id: Scan.create(
            ticket=ticket_id, uploader=User.get(User.email == "dr.ada@clinic.test"), original_name="arch.stl",
            stored_name=f"{ticket_id:032d}.stl", size=1, sha256="0" * 64, file_format="stl", triangles=6_000,
            state="done", verdict="repaired", report=json.dumps(stored)))
        page = clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
        assert (hint in page) is shown

"""The 3D viewer's server side: the web copies a repair stores and how they are served (issue 18)."""

import io

import pytest

from smilepass.models import Scan
from smilepass.storage import for_config

from .conftest import query, run_worker
from .scanfiles import arch_stl


def file_scan(browser, payload: bytes = None):
    data = {
        "title": "Scan rejected by the lab",
        "description": "Holes on the lower molars.",
        "scan": (io.BytesIO(payload or arch_stl()), "clinic7_patient42_2026-11-20.stl"),
    }
    response = browser.post("/support/tickets", data, content_type="multipart/form-data")
    assert response.status_code == 303
    return query(lambda: Scan.select().order_by(Scan.id.desc()).get())


@pytest.fixture
def repaired_scan(app, clinician, redis_conn):
    scan = file_scan(clinician)
    result = run_worker(app)
    assert result.returncode == 0, result.stderr[-2000:]
    scan = query(lambda: Scan.get_by_id(scan.id))
    assert scan.state == "done", scan.error
    return scan


def test_the_repair_stores_both_web_copies_and_serves_them_like_the_previews(app, clinician, repaired_scan):
    scan = repaired_scan
    assert scan.web_before_name.endswith(".before.glb") and scan.web_after_name.endswith(".after.glb")
    stored = {o.key for o in for_config(app.config).list()}
    assert {f"scans/{scan.web_before_name}", f"scans/{scan.web_after_name}"} <= stored
    for which in ("before", "after"):
        response = clinician.get(f"/support/scans/{scan.id}/web/{which}.glb")
        assert response.status_code == 200
        assert response.data[:4] == b"glTF" and response.mimetype == "model/gltf-binary"
        assert response.headers["Cache-Control"] == "no-store"
    assert clinician.get(f"/support/scans/{scan.id}/web/other.glb").status_code == 404


def test_another_clinicians_web_copy_is_a_404(app, clinician, other_clinician, support, repaired_scan):
    for which in ("before", "after"):
        assert other_clinician.get(f"/support/scans/{repaired_scan.id}/web/{which}.glb").status_code == 404
        assert support.get(f"/support/scans/{repaired_scan.id}/web/{which}.glb").status_code == 200


def test_a_rerun_replaces_the_web_copies(app, clinician, support, repaired_scan):
    first = repaired_scan
    response = support.post(f"/support/scans/{first.id}/rerun", {"hole_percent": "0", "debris_percent": "1"})
    assert response.status_code == 303
    assert run_worker(app).returncode == 0
    again = query(lambda: Scan.get_by_id(first.id))
    assert again.state == "done" and again.web_after_name and again.web_after_name != first.web_after_name
    keys = {o.key for o in for_config(app.config).list()}
    assert f"scans/{first.web_after_name}" not in keys and f"scans/{again.web_after_name}" in keys

"""Scan retention: scans of cases whose latest shipment was delivered more than N months ago are purged
(rows, files, jobs) by the periodic job; everything else stays. Off (0) by default."""
import datetime as dt
import importlib
import io
import sys

import pytest
from rq import Queue

from smilepass import settings
from smilepass.cases import shipments
from smilepass.models import AuditLog, Scan, utcnow
from smilepass.stewardship.retention import months_before, purge_expired_scans

from .case_helpers import ADA, ROOT, SAM, make_case, make_shipment, user
from .conftest import query, run_worker, stored_keys
from .scanfiles import arch_stl


def upload_scan(browser, case, name="upper.stl"):
    response = browser.post(f"/cases/{case.id}/scans", {"scan": (io.BytesIO(arch_stl(rows=20, cols=60)), name)},
                            content_type="multipart/form-data")
    assert response.status_code == 303, response.get_data(as_text=True)
    return query(lambda: Scan.select().order_by(Scan.id.desc()).get())


def deliver(case, delivered_at: dt.datetime):
    shipment = make_shipment(case)
    query(lambda: shipments.advance(shipment, user(SAM), carrier="DHL", tracking_number="1Z999", at=delivered_at))
    query(lambda: shipments.advance(shipment, user(SAM), at=delivered_at))
    return shipment


def backdate(scan, when: dt.datetime):
    query(lambda: Scan.update(created_at=when).where(Scan.id == scan.id).execute())


def scan_files(app, scan) -> set[str]:
    return {f"scans/{n}" for n in (scan.stored_name, scan.repaired_name, scan.repaired_stl_name,
                                   scan.preview_before_name, scan.preview_after_name, scan.web_before_name,
                                   scan.web_after_name) if n}


@pytest.fixture
def new_years_eve(time_machine):
    """23:59 UTC on 31 December (the cutoff 12 months back is 31 December 2025 23:59), in the worker too;
    requested before the sign-in fixtures, so their sessions start at the same moment."""
    time_machine.move_to(dt.datetime(2026, 12, 31, 23, 59, tzinfo=dt.UTC), tick=True)


def test_expired_scans_are_purged_by_a_real_worker(new_years_eve, app, clinician, support, admin, redis_conn,
                                                   storage_settings):
    now = utcnow()
    long_ago = now - dt.timedelta(days=420)
    expired = make_case(ADA, number="R-1")
    deliver(expired, long_ago)
    old_scan = upload_scan(clinician, expired, "old.stl")
    backdate(old_scan, long_ago - dt.timedelta(days=30))
    # A request about the case that carried a scan: the case's scan too.
    response = clinician.post(
        "/support/tickets",
        {
            "title": "Tray loose",
            "description": "Since Monday.",
            "priority": "1",
            "category": "Production & Shipping",
            "case_number": "R-1",
            "scan": (io.BytesIO(arch_stl(rows=20, cols=60)), "req.stl"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    request_scan = query(lambda: Scan.get(Scan.original_name == "req.stl"))
    backdate(request_scan, long_ago)
    # Uploaded within the window on the same case: kept (a refinement may be starting).
    fresh_on_expired = upload_scan(clinician, expired, "fresh.stl")

    recent = make_case(ADA, number="R-2")
    deliver(recent, now - dt.timedelta(days=60))
    recent_scan = upload_scan(clinician, recent, "recent.stl")
    backdate(recent_scan, long_ago)

    # Delivered long ago, but a newer shipment is on its way: the case is active again.
    active = make_case(ADA, number="R-3")
    deliver(active, long_ago)
    make_shipment(active)
    active_scan = upload_scan(clinician, active, "active.stl")
    backdate(active_scan, long_ago)

    purged = [old_scan, request_scan]
    kept = [fresh_on_expired, recent_scan, active_scan]
    originals = {scan.id: scan_files(app, scan) for scan in purged}
    assert set().union(*originals.values()) <= set(stored_keys(app))

    # Off by default: the job purges nothing.
    with app.app_context():
        assert query(lambda: purge_expired_scans(app.config))["scans"] == 0
    with app.app_context():
        query(lambda: settings.set_value("scan_retention_months", "12", user(ROOT)))

    # Enqueued as rq cron enqueues it; the worker takes the default queue first, then the repairs.
    Queue("default", connection=redis_conn).enqueue("smilepass.stewardship.jobs.scan_retention")
    result = run_worker(app, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]

    remaining = query(lambda: {s.id: s for s in Scan.select()})
    assert set(remaining) == {scan.id for scan in kept}
    assert all(remaining[scan.id].state == "done" for scan in kept)  # their repairs ran after the purge
    # Exactly the kept scans' files remain, in whichever storage (a folder or a bucket).
    assert set(stored_keys(app)) == set().union(*(scan_files(app, remaining[scan.id]) for scan in kept))
    for scan in purged:
        assert not redis_conn.exists(f"rq:job:scan-{scan.id}-run1")
    [row] = query(lambda: list(AuditLog.select().where(AuditLog.action == "scans_purged")))
    assert (row.object_type, row.object_id) == ("case", str(expired.id))
    assert row.detail == f"2 scans, retention 12 months: #{old_scan.id}, #{request_scan.id}"

    # A second run finds nothing more to do.
    with app.app_context():
        assert query(lambda: purge_expired_scans(app.config))["scans"] == 0


def test_months_before():
    assert months_before(dt.datetime(2026, 3, 31, 9, 30), 1) == dt.datetime(2026, 2, 28, 9, 30)
    assert months_before(dt.datetime(2026, 1, 15), 13) == dt.datetime(2024, 12, 15)
    assert months_before(dt.datetime(2024, 2, 29), 12) == dt.datetime(2023, 2, 28)


def test_the_setting_is_on_the_settings_page(app, admin):
    page = admin.get("/admin/settings").get_data(as_text=True)
    assert "Purge scans of delivered cases after (months)" in page and 'name="scan_retention_months"' in page
    # Fields left out of the post keep their current values.
    response = admin.post("/admin/settings", {"scan_retention_months": "-1"})
    assert response.status_code == 422 and "Enter a number from 0 to 600." in response.get_data(as_text=True)
    assert admin.post("/admin/settings", {"scan_retention_months": "24"}).status_code == 303
    with app.app_context():
        assert query(lambda: settings.get("scan_retention_months")) == 24


def test_cron_registers_the_retention_job():
    from rq import cron
    cron._job_data_registry.clear()
    sys.modules.pop("workers.cron", None)
    importlib.import_module("workers.cron")
    jobs = {job["name"]: job for job in cron._job_data_registry}
    assert "scan-retention" in jobs and jobs["scan-retention"]["interval"] == 3600
    assert jobs["scan-retention"]["queue_name"] == "default"
    cron._job_data_registry.clear()

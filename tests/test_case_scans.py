"""Scans on cases: uploaded on the case page (streamed and checked like a request's scan), sent with
a request about a case, listed on the case page with the ticket page's panels, repaired by a real
worker, and invisible to other clinicians."""
import datetime as dt
import io
import re

import pytest
from rq import Queue
from werkzeug.datastructures import FileStorage

from smilepass import db
from smilepass.models import AuditLog, Scan, Ticket
from smilepass.queue import SCAN_QUEUE
from smilepass.scans.staging import StagedUploads

from .case_helpers import ADA, BOB, make_case, user
from .conftest import query, run_worker, stored_bytes
from .scanfiles import arch_stl
from .test_scans import HTML_PAGE, scan_files

RERUN = {"hole_percent": "5", "debris_percent": "1"}


def upload(browser, case, payload=None, name="upper_2026-11-20.stl", htmx=False, **kwargs):
    data = {"scan": (io.BytesIO(arch_stl() if payload is None else payload), name)}
    return browser.post(f"/cases/{case.id}/scans", data, htmx=htmx, content_type="multipart/form-data", **kwargs)


def scans():
    return query(lambda: list(Scan.select().order_by(Scan.id)))


def reply_with_scan(browser, ticket_id, name="rescan.stl"):
    response = browser.post(f"/support/tickets/{ticket_id}/replies",
                            {"body": "Here is the rescan.", "scan": (io.BytesIO(arch_stl()), name)},
                            content_type="multipart/form-data")
    assert response.status_code == 303, response.get_data(as_text=True)


def link_ticket(ticket_id, case):
    query(lambda: Ticket.update(case=case.id).where(Ticket.id == ticket_id).execute())


def test_upload_on_the_case_page_without_js(app, clinician, redis_conn):
    case = make_case(ADA)
    response = upload(clinician, case)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/cases/{case.id}#scans")
    [scan] = scans()
    assert scan.case_id == case.id and scan.ticket_id is None and scan.message_id is None
    assert scan.state == "queued" and scan.original_name == "upper_2026-11-20.stl" and scan.triangles > 20000
    assert Queue(SCAN_QUEUE, connection=redis_conn).count == 1
    [row] = query(lambda: list(AuditLog.select().where(AuditLog.action == "scan_upload")))
    assert (row.object_type, row.object_id) == ("scan", str(scan.id))
    assert row.detail == f"case #{case.id}" and "upper" not in row.detail

    page = clinician.get(f"/cases/{case.id}").get_data(as_text=True)
    assert 'id="scans"' in page and f'id="scan-{scan.id}"' in page and "upper_2026-11-20.stl" in page
    assert f'hx-get="/support/scans/{scan.id}"' in page and 'hx-trigger="every 1s"' in page
    assert "Queued" in page and 'http-equiv="refresh"' in page  # no JS: the page reloads itself
    assert "Uploaded by Dr.Ada" in page and "with request" not in page


def test_upload_with_htmx_answers_the_scans_section(app, clinician, redis_conn):
    case = make_case(ADA)
    upload(clinician, case, name="first.stl")
    response = upload(clinician, case, name="second.ply.stl", htmx=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html
    assert '<section id="scans"' in html and 'id="case-scan-upload"' in html
    # Newest first.
    assert html.index("second.ply.stl") < html.index("first.stl")
    assert 'name="csrf_token"' in html and "field-error" not in html


@pytest.mark.parametrize("payload, name, message", [
    (HTML_PAGE, "upper.stl", "HTML"),
    (arch_stl()[:-1000], "upper.stl", "truncated"),
    (b"", "upper.stl", "empty"),
])
@pytest.mark.parametrize("htmx", [True, False])
def test_refused_scan_shows_the_error_next_to_the_field(app, clinician, redis_conn, payload, name, message, htmx):
    case = make_case(ADA)
    response = upload(clinician, case, payload, name=name, htmx=htmx)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    error = re.search(r'<p class="field-error" id="case-scan-error">([^<]+)</p>', html)
    assert error and message.lower() in error.group(1).lower()
    assert 'aria-describedby="case-scan-error"' in html
    assert ("<html" in html) is not htmx
    assert scans() == [] and scan_files(app) == []
    assert Queue(SCAN_QUEUE, connection=redis_conn).count == 0


def test_oversized_scan_is_refused_while_streaming(app, clinician, redis_conn):
    app.config["MAX_SCAN_BYTES"] = 512 * 1024
    response = upload(clinician, make_case(ADA), htmx=True)
    assert response.status_code == 422 and "larger than the 0.5 MB" in response.get_data(as_text=True)
    assert scans() == [] and scan_files(app) == []


def test_no_file_chosen_and_no_csrf(app, clinician, redis_conn):
    case = make_case(ADA)
    response = clinician.post(f"/cases/{case.id}/scans", {}, content_type="multipart/form-data")
    assert response.status_code == 422 and "Choose an STL or PLY file to upload." in response.get_data(as_text=True)
    forged = clinician.post(f"/cases/{case.id}/scans", {"scan": (io.BytesIO(arch_stl()), "a.stl")},
                            csrf=False, content_type="multipart/form-data")
    assert forged.status_code == 400
    assert scans() == [] and scan_files(app) == []


def test_other_clinicians_cannot_see_or_touch_case_scans(app, clinician, other_clinician, support, redis_conn):
    case = make_case(ADA)
    assert upload(clinician, case).status_code == 303
    [scan] = scans()
    for path in (f"/cases/{case.id}", f"/support/scans/{scan.id}", f"/support/scans/{scan.id}/files/original",
                 f"/support/scans/{scan.id}/preview/before"):
        assert other_clinician.get(path, htmx=True).status_code == 404, path
        assert other_clinician.get(path).status_code == 404, path
    assert other_clinician.post(f"/support/scans/{scan.id}/rerun", RERUN).status_code == 404
    # Uploading to another clinician's case is a 404, and nothing is stored.
    assert upload(other_clinician, case).status_code == 404
    assert upload(other_clinician, make_case(BOB, number="B-1")).status_code == 303
    assert len(scans()) == 2 and len(scan_files(app)) == 2
    # The case's own clinician may not re-run a repair; staff may see, download and upload.
    assert clinician.post(f"/support/scans/{scan.id}/rerun", RERUN).status_code == 404
    assert clinician.get(f"/support/scans/{scan.id}/files/original").data == arch_stl()
    assert "upper_2026-11-20.stl" in support.get(f"/cases/{case.id}").get_data(as_text=True)
    assert support.get(f"/support/scans/{scan.id}/files/original").status_code == 200
    assert upload(support, case, name="staff.stl").status_code == 303
    staff_scan = scans()[-1]
    assert staff_scan.case_id == case.id and staff_scan.uploader_id == user("sam@smilepass.test").id


def test_scans_sent_with_a_request_about_the_case_belong_to_it(app, clinician, other_clinician, new_ticket,
                                                                redis_conn):
    case = make_case(ADA)
    before = new_ticket(clinician, title="Before the link")
    reply_with_scan(clinician, before, name="sent-before-link.stl")
    link_ticket(before, case)
    ticket_id = new_ticket(clinician)
    link_ticket(ticket_id, case)
    reply_with_scan(clinician, ticket_id, name="sent-with-request.stl")
    unrelated = new_ticket(clinician, title="Not about the case")
    reply_with_scan(clinician, unrelated, name="unrelated.stl")
    first, second, third = scans()
    assert first.case_id is None and second.case_id == case.id and second.ticket_id == ticket_id
    assert third.case_id is None

    page = clinician.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "unrelated.stl" not in page
    # Newest first; each from a request links to it.
    assert page.index("sent-with-request.stl") < page.index("sent-before-link.stl")
    assert f'href="/support/tickets/{ticket_id}">SP-{ticket_id:06d}</a>' in page
    # The scan is still on its ticket's page too, and another clinician sees neither.
    assert "sent-with-request.stl" in clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert other_clinician.get(f"/support/scans/{second.id}", htmx=True).status_code == 404


def test_new_request_about_a_case_attaches_its_scan_to_the_case(app, clinician, new_ticket, redis_conn):
    # The New Request form creates the ticket with its case and then attaches the files in the same
    # transaction; this is that step, with a ticket that has a case.
    case = make_case(ADA)
    ticket_id = new_ticket(clinician)
    link_ticket(ticket_id, case)
    with app.app_context(), db.database.connection_context():
        ticket = Ticket.get_by_id(ticket_id)
        with StagedUploads(app.config) as uploads:
            uploads.add_scan(FileStorage(io.BytesIO(arch_stl()), "with-new-request.stl"))
            with db.database.atomic():
                uploads.attach(ticket, user(ADA))
    [scan] = scans()
    assert scan.ticket_id == ticket_id and scan.case_id == case.id and scan.message_id is None
    assert Queue(SCAN_QUEUE, connection=redis_conn).count == 1


def test_redirects_go_to_the_page_that_shows_the_scan(app, clinician, support, new_ticket, redis_conn):
    case = make_case(ADA)
    upload(clinician, case)
    ticket_id = new_ticket(clinician)
    link_ticket(ticket_id, case)
    reply_with_scan(clinician, ticket_id)
    case_only, both = scans()
    case_page = f"http://localhost/cases/{case.id}"

    # Without htmx, the panel's URL leads to the page that shows it.
    response = clinician.get(f"/support/scans/{case_only.id}")
    assert response.status_code == 303 and response.headers["Location"].endswith(
        f"/cases/{case.id}#scan-{case_only.id}"
    )
    response = clinician.get(f"/support/scans/{both.id}")
    assert response.headers["Location"].endswith(f"/support/tickets/{ticket_id}#scan-{both.id}")
    response = clinician.get(f"/support/scans/{both.id}", headers={"Referer": case_page})
    assert response.headers["Location"].endswith(f"/cases/{case.id}#scan-{both.id}")
    # A referrer elsewhere is never followed.
    response = clinician.get(f"/support/scans/{case_only.id}", headers={"Referer": "https://evil.test/cases/1"})
    assert response.headers["Location"].endswith(f"/cases/{case.id}#scan-{case_only.id}")

    # A re-run from the case page (staff, no JS) comes back to it.
    query(lambda: Scan.update(state="done").execute())
    response = support.post(f"/support/scans/{case_only.id}/rerun", RERUN, headers={"Referer": case_page})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/cases/{case.id}#scan-{case_only.id}")
    assert query(lambda: Scan.get_by_id(case_only.id)).run == 2


def test_refused_rerun_without_js_shows_the_error_in_that_panel(app, clinician, support, new_ticket, redis_conn):
    case = make_case(ADA)
    upload(clinician, case, name="one.stl")
    upload(clinician, case, name="two.stl")
    ticket_id = new_ticket(clinician)
    reply_with_scan(clinician, ticket_id)
    one, two, on_ticket = scans()
    query(lambda: Scan.update(state="done").execute())
    for scan, page in ((two, f"/cases/{case.id}"), (on_ticket, f"/support/tickets/{ticket_id}")):
        response = support.post(f"/support/scans/{scan.id}/rerun", {"hole_percent": "80", "debris_percent": "1"},
                                headers={"Referer": f"http://localhost{page}"})
        assert response.status_code == 422
        html = response.get_data(as_text=True)
        assert "<html" in html and "Number must be between 0 and 50." in html
        panel = html[html.index(f'id="scan-{scan.id}"'):]
        assert '<details class="rerun" open>' in panel[:panel.index("</article>")]
        assert html.count("field-error") == 1  # only in that scan's panel
    assert query(lambda: Scan.get_by_id(two.id)).run == 1


def test_lost_job_of_a_case_scan_is_settled_by_the_sweep(app, clinician, redis_conn):
    case = make_case(ADA)
    upload(clinician, case)
    [scan] = scans()
    redis_conn.flushdb()
    query(lambda: Scan.update(updated_at=dt.datetime(2020, 1, 1)).where(Scan.id == scan.id).execute())
    with app.app_context():
        from smilepass.scans.sweep import sweep
        query(lambda: sweep(app.config))
    assert query(lambda: Scan.get_by_id(scan.id)).state == "failed"
    page = clinician.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "lost" in page and "every 1s" not in page


def test_case_scan_is_repaired_by_a_worker_and_shows_on_the_case_page(app, clinician, support, redis_conn,
                                                                      storage_settings):
    case = make_case(ADA, number="AL/2041")
    assert upload(clinician, case, htmx=True).status_code == 200
    [scan] = scans()
    panel = clinician.get(f"/support/scans/{scan.id}", htmx=True)
    assert panel.status_code == 200 and 'hx-trigger="every 1s"' in panel.get_data(as_text=True)

    result = run_worker(app)
    assert result.returncode == 0, result.stderr[-2000:]
    scan = query(lambda: Scan.get_by_id(scan.id))
    assert scan.state == "done" and scan.verdict == "repaired", scan.error
    # The poll from the case page gets the final panel and stops.
    panel = clinician.get(f"/support/scans/{scan.id}", htmx=True)
    assert panel.status_code == 286 and "Repaired: ready for the lab" in panel.get_data(as_text=True)

    page = clinician.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "Repaired: ready for the lab" in page and "What we found and fixed" in page
    assert "every 1s" not in page and 'http-equiv="refresh"' not in page
    assert f"/support/scans/{scan.id}/preview/after" in page
    assert clinician.get(f"/support/scans/{scan.id}/preview/after").data.startswith(b"\x89PNG")
    repaired = clinician.get(f"/support/scans/{scan.id}/files/repaired")
    disposition = repaired.headers["Content-Disposition"]
    assert (
        disposition.startswith("attachment;")
        and f"AL-2041_{scan.created_at:%Y-%m-%d}_scan{scan.id}_repaired.stl" in disposition
    )
    assert (len(repaired.data) - 84) % 50 == 0
    assert repaired.data == stored_bytes(app, f"scans/{scan.repaired_name}")  # a folder's or a bucket's
    # Staff see the re-run form on the case page; the clinician does not.
    assert "Repair again" in support.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "Repair again" not in page

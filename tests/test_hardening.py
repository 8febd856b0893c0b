"""Smaller findings of the probe (issue 12 §4): downloads are never stored by caches, a full disk leaves no
temp file and keeps the form, rate limits per client address, the same password-hash work for every
failed sign-in, no 500 for out-of-range integers or a `next=` with a line break, any stored scan report
renders, passwords compared after NFKC, and HSTS behind HTTPS."""
import errno
import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from smilepass import create_app
from smilepass.auth import security
from smilepass.models import Attachment, OutboxMail, Scan, ScanState, Ticket, User
from smilepass.storage import local as storage_local

from .case_helpers import make_case
from .conftest import PASSWORD, Browser, query


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 120, 140)).save(out, "PNG")
    return out.getvalue()


def file_request(browser, title="Screenshot of the failed upload", image=True):
    data = {"title": title, "description": "The viewer shows a grey screen after upload.", "priority": "1",
            "category": "Scan & File Validation"}
    if image:
        data["image"] = (io.BytesIO(png()), "screen.png")
    return browser.post("/support/tickets", data, content_type="multipart/form-data")


def stored_files(app) -> list[str]:
    root = Path(app.config["UPLOAD_DIR"])
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# Downloads --------------------------------------------------------------------------------------

def test_downloads_of_patient_files_are_never_stored(app, clinician, redis_conn):
    assert file_request(clinician).status_code == 303
    attachment = query(lambda: Attachment.get())
    scan_dir = Path(app.config["UPLOAD_DIR"]) / "scans"
    scan_dir.mkdir(exist_ok=True)
    (scan_dir / "s1.stl").write_bytes(b"solid x\nendsolid x\n")
    (scan_dir / "s1-before.png").write_bytes(png())
    scan = query(lambda: Scan.create(ticket=attachment.ticket_id, uploader=attachment.uploader_id,
                                     original_name="arch.stl", stored_name="s1.stl", size=20, sha256="0" * 64,
                                     file_format="stl", triangles=0, state=ScanState.DONE.value,
                                     preview_before_name="s1-before.png"))
    case = make_case(number="AL-4410")
    urls = [f"/support/attachments/{attachment.id}", f"/support/attachments/{attachment.id}/thumb",
            f"/support/scans/{scan.id}/files/original", f"/support/scans/{scan.id}/preview/before"]
    for url in urls:
        response = clinician.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == "no-store", url
    clinician.get(f"/cases/{case.id}/export")
    export = clinician.post(f"/cases/{case.id}/export", {"password": PASSWORD})
    assert export.status_code == 200 and export.headers["Cache-Control"] == "no-store"


# A full disk --------------------------------------------------------------------------------------

def test_a_full_disk_leaves_no_temp_file_and_keeps_the_form(app, clinician, monkeypatch):
    def disk_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(storage_local.os, "fsync", disk_full)
    response = file_request(clinician, title="Grey screen after the upload")
    assert response.status_code == 507
    html = response.get_data(as_text=True)
    assert "The server is out of space" in html
    assert 'value="Grey screen after the upload"' in html
    assert "The viewer shows a grey screen after upload." in html
    assert stored_files(app) == []
    assert query(lambda: Ticket.select().count()) == 0


def test_a_full_disk_while_writing_the_thumbnail_removes_the_image_too(app, clinician, monkeypatch):
    writes = []
    real_fsync = os.fsync

    def second_write_fails(fd):
        writes.append(fd)
        if len(writes) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(storage_local.os, "fsync", second_write_fails)
    assert file_request(clinician).status_code == 507
    assert len(writes) == 2 and stored_files(app) == []


# Rate limits per client address -----------------------------------------------------------------------

def from_address(browser, address):
    browser.client.environ_base["REMOTE_ADDR"] = address
    return browser


def test_sign_in_attempts_across_many_emails_are_limited_per_address(app, client):
    from_address(client, "198.51.100.41")
    client.get("/auth/login")
    for n in range(20):
        response = client.post("/auth/login", {"email": f"guess{n}@clinic.test", "password": "not-it-2026"})
        assert response.status_code == 422, n
    assert client.post("/auth/login", {"email": "guess99@clinic.test", "password": "not-it-2026"}).status_code == 429
    # Another address is not slowed down.
    other = from_address(Browser(app), "198.51.100.42")
    other.get("/auth/login")
    assert other.post("/auth/login", {"email": "guess0@clinic.test", "password": "not-it-2026"}).status_code == 422


def test_successful_sign_ins_from_one_address_are_not_limited(app, make_user):
    """A clinic behind one shared address: every clinician signs in in the morning."""
    for n in range(22):
        make_user(f"dr{n}@clinic.test")
    for n in range(22):
        browser = from_address(Browser(app), "198.51.100.43")
        assert browser.login(f"dr{n}@clinic.test").status_code == 303, n


def test_reset_mails_are_limited_per_address_and_per_email(app, client, make_user):
    make_user("dr.ada@clinic.test")
    for n in range(3):
        browser = from_address(Browser(app), f"198.51.100.{50 + n}")
        browser.get("/auth/forgot")
        assert browser.post("/auth/forgot", {"email": "dr.ada@clinic.test"}).status_code == 303
    fourth = from_address(Browser(app), "198.51.100.60")
    fourth.get("/auth/forgot")
    assert fourth.post("/auth/forgot", {"email": "dr.ada@clinic.test"}).status_code == 429
    assert query(lambda: OutboxMail.select().count()) == 3
    from_address(client, "198.51.100.61")
    client.get("/auth/forgot")
    for n in range(10):
        assert client.post("/auth/forgot", {"email": f"someone{n}@clinic.test"}).status_code == 303, n
    assert client.post("/auth/forgot", {"email": "someone-else@clinic.test"}).status_code == 429


def test_the_export_password_prompt_is_limited_per_address(app, clinician):
    case = make_case(number="AL-4420")
    from_address(clinician, "198.51.100.70")
    clinician.get(f"/cases/{case.id}/export")
    for n in range(10):
        assert clinician.post(f"/cases/{case.id}/export", {"password": f"guess-{n}"}).status_code == 422, n
    assert clinician.post(f"/cases/{case.id}/export", {"password": PASSWORD}).status_code == 429


# The same work for every failed sign-in ------------------------------------------------------------------

def test_every_failed_sign_in_costs_one_password_hash(app, client, make_user, admin, monkeypatch):
    make_user("dr.ada@clinic.test")
    make_user("dr.gone@clinic.test")
    gone = query(lambda: User.by_email("dr.gone@clinic.test").id)
    admin.get("/admin/users")
    assert admin.post(f"/admin/users/{gone}/active").status_code == 303
    verified = []
    real = security._hasher

    class CountingHasher:
        def verify(self, *args):
            verified.append(1)
            return real.verify(*args)

    monkeypatch.setattr(security, "_hasher", CountingHasher())
    for email, password in [("dr.ada@clinic.test", "wrong-password-2026"), ("nobody@clinic.test", PASSWORD),
                            ("dr.gone@clinic.test", PASSWORD), ("dr.gone@clinic.test", "wrong-password-2026")]:
        verified.clear()
        browser = from_address(Browser(app), f"198.51.100.{80 + len(email) % 9}")
        browser.get("/auth/login")
        assert browser.post("/auth/login", {"email": email, "password": password}).status_code == 422
        assert len(verified) == 1, (email, password)


# Out-of-range integers and next= -----------------------------------------------------------------------

HUGE = "99999999999999999999"  # > 2^64
TWO_TO_63 = str(2**63)


def test_ids_at_or_past_two_to_the_63_are_not_found(app, clinician, support, admin):
    for number in (TWO_TO_63, HUGE):
        for browser, path in [(clinician, f"/support/tickets/{number}"), (clinician, f"/cases/{number}"),
                              (clinician, f"/support/attachments/{number}"), (clinician, f"/cases/shipments/{number}"),
                              (clinician, f"/support/scans/{number}/files/original"),
                              (admin, f"/admin/clinics/{number}")]:
            assert browser.get(path).status_code == 404, path
        clinician.get("/support/")
        assert clinician.post(f"/support/tickets/{number}/replies", {"body": "x"}).status_code == 404


def test_out_of_range_pages_and_query_ids_are_not_errors(app, clinician, support, admin):
    for number in ("0", TWO_TO_63, HUGE, str(2**40)):
        for browser, path in [(clinician, "/support/"), (clinician, "/cases/"), (support, "/shipments/"),
                              (support, "/queue/")]:
            status = browser.get(f"{path}?page={number}").status_code
            assert status in (200, 404), (path, number, status)
    assert clinician.get(f"/support/?page={HUGE}").status_code == 404
    assert clinician.get("/support/?page=²").status_code == 200  # not a number: the first page
    for path in [f"/support/?created={HUGE}", f"/support/?case={HUGE}", f"/cases/?label={HUGE}",
                 f"/audit?before={HUGE}", f"/contact/inbox?before={HUGE}"]:
        browser = admin if path.startswith(("/audit", "/contact")) else clinician
        assert browser.get(path).status_code in (200, 404), path


def test_insights_with_a_huge_clinic_id_says_so(app, admin):
    response = admin.get(f"/insights/?clinic={HUGE}")
    assert response.status_code == 422
    assert "Choose a clinic from the list." in response.get_data(as_text=True)
    assert admin.get(f"/insights/tickets.csv?clinic={HUGE}").status_code == 400


def test_next_with_a_line_break_or_backslash_goes_home(app, client, make_user):
    make_user("dr.ada@clinic.test")
    for target in ["/cases/%0D%0ASet-Cookie:%20x=1", "/support/%0Aevil", "/\\evil.example", "/%09/evil.example"]:
        browser = Browser(app)
        browser.get("/auth/login")
        response = browser.post(f"/auth/login?next={target}", {"email": "dr.ada@clinic.test", "password": PASSWORD})
        assert response.status_code == 303, target
        assert response.headers["Location"] == "/support/", target
    browser = Browser(app)
    browser.get("/auth/login")
    response = browser.post("/auth/login?next=/cases/%3Fpage%3D2", {"email": "dr.ada@clinic.test",
                                                                      "password": PASSWORD})
    assert response.headers["Location"] == "/cases/?page=2"


# Scan reports of any age ------------------------------------------------------------------------------------

def test_demo_scans_have_the_report_shape_of_real_repairs_and_render(app, support):
    result = app.test_cli_runner().invoke(args=["demo", "--tickets", "200", "--clinicians", "2"])
    assert result.exit_code == 0, result.output
    scans = query(lambda: list(Scan.select().where(Scan.ticket.is_null(False))))
    assert scans
    for scan in scans:
        report = json.loads(scan.report)
        assert {"before", "after", "holes_filled", "fragments_removed", "holes_left_open"} <= set(report)
        assert {"triangles", "vertices", "components", "bbox_mm", "surface_area_mm2", "closed"} <= set(report["before"])
        assert set(report["after"]) == set(report["before"])
    for scan in scans[:5]:
        page = support.get(f"/support/tickets/{scan.ticket_id}")
        assert page.status_code == 200
        assert "What we found and fixed" in page.get_data(as_text=True)


@pytest.mark.parametrize("report", [
    json.dumps({"holes_filled": 2, "duplicates_removed": 5}),  # an older report without before/after
    json.dumps({"before": {"triangles": 10}, "after": None, "stage_seconds": {"read": "slow"}}),  # partial
    json.dumps({"before": [], "after": "x", "verdict_reason_parts": [["oops"]]}),  # odd shapes
    json.dumps([1, 2, 3]),
    "not json at all",
    "",
])
def test_the_scan_panel_renders_any_stored_report(app, clinician, report):
    assert file_request(clinician, image=False).status_code == 303
    ticket = query(lambda: Ticket.get())
    query(lambda: Scan.create(ticket=ticket.id, uploader=ticket.requester_id, original_name="arch.stl",
                              stored_name="old.stl", size=1000, sha256="0" * 64, file_format="stl", triangles=10,
                              state=ScanState.DONE.value, verdict="repaired", verdict_reason="Filled 2 holes.",
                              report=report))
    page = clinician.get(f"/support/tickets/{ticket.id}")
    assert page.status_code == 200
    assert "Filled 2 holes." in page.get_data(as_text=True)


# Passwords after NFKC, and HSTS ---------------------------------------------------------------------------

@pytest.mark.parametrize("stored, typed", [
    ("café-au-lait-2026", "cafe\u0301-au-lait-2026"),  # precomposed é, then e + combining accent
    ("ｐａｓｓｗｏｒｄ-ｆｕｌｌ-2026", "password-full-2026"),  # full-width letters from an East Asian keyboard
])
def test_passwords_are_compared_after_nfkc(app, make_user, stored, typed):
    make_user("dr.ada@clinic.test", password=stored)
    browser = Browser(app)
    browser.get("/auth/login")
    response = browser.post("/auth/login", {"email": "dr.ada@clinic.test", "password": typed})
    assert response.status_code == 303
    assert not security.verify_password(query(lambda: User.by_email("dr.ada@clinic.test").password_hash),
                                        "cafe-au-lait-2026")


def test_hsts_only_behind_https(app, tmp_path, database_url, redis_url, monkeypatch):
    assert "Strict-Transport-Security" not in app.test_client().get("/auth/login").headers
    monkeypatch.setenv("SMILEPASS_HTTPS", "1")
    secure = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "https"), "SECRET_KEY": "k",
                         "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                         "UPLOAD_DIR": str(tmp_path / "https-uploads")})
    response = secure.test_client().get("/auth/login")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"

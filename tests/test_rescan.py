"""Rescan requests (issue 18 §2): staff ask for a new scan with coded reasons, the ticket waits on the
clinician, who is told in their language; the new scan sent in the thread answers the request, a hostile
file never does. Scans are repaired by real RQ workers on a real Redis; the repair's report suggests the
reasons. The report's wording (§3): several bodies of similar size are "Check: N separate bodies"."""
import datetime as dt
import io
import json
import uuid
from email.message import EmailMessage
from pathlib import Path

import numpy as np
import pytest

from smilepass.mailin import receive
from smilepass.mesh import repair
from smilepass.mesh.pipeline import similar_bodies
from smilepass.models import (
    AuditLog,
    Case,
    Message,
    Notification,
    OutboxMail,
    RescanRequest,
    Scan,
    Status,
    StatusChange,
    Ticket,
    User,
)
from smilepass.scans import rescans
from smilepass.stewardship import erase

from .conftest import query, run_worker
from .meshgen import SHARED_MESHES
from .parts import part_missing
from .scanfiles import arch_stl, arch_surface, binary_stl

ADA = "dr.ada@clinic.test"
# A scan whose big hole the repair must leave open (13 × 30 missing patches): it suggests "holes".
BIG_HOLE = [(r, c) for r in range(14, 40, 2) for c in range(60, 120, 2)]
HTML_PAGE = b"<!doctype html><html><body>Sign in to your scanner portal</body></html>"
NOTE = "Zebedee Quibblestone moved during the scan."


def file_scan(browser, payload: bytes, name="clinic7_zebedee_2026-11-20.stl"):
    data = {"title": "Scan rejected by the lab", "description": "Holes on the lower molars.",
            "category": "Scan & File Validation", "scan": (io.BytesIO(payload), name)}
    response = browser.post("/support/tickets", data, content_type="multipart/form-data")
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    return query(lambda: Scan.select().order_by(Scan.id.desc()).get())


def repaired(app, scan_id: int) -> Scan:
    result = run_worker(app)
    assert result.returncode == 0, result.stderr[-2000:]
    scan = query(lambda: Scan.get_by_id(scan_id))
    assert scan.state == "done", scan.error
    return scan


def judged(clinician, payload=None, name="clinic7_zebedee_2026-11-20.stl", verdict="repaired", report=None) -> Scan:
    """A scan uploaded with a request and marked repaired without a worker (for the tests of the rules
    around it; the tests above and below repair theirs for real)."""
    scan = file_scan(clinician, payload or arch_stl(), name)
    report = report or {"holes_filled": 2, "holes_left_open": 0, "margin_loops": 1, "similar_bodies": 1}
    query(lambda: Scan.update(state="done", verdict=verdict, report=json.dumps(report)).where(
        Scan.id == scan.id).execute())
    return query(lambda: Scan.get_by_id(scan.id))


def ask(browser, scan_id: int, reasons, note="", htmx=False, **kwargs):
    return browser.post(f"/support/scans/{scan_id}/rescan", {"reasons": list(reasons), "note": note}, htmx=htmx,
                        **kwargs)


def send_scan(browser, ticket_id: int, payload: bytes, name="rescan.stl", htmx=False):
    return browser.post(f"/support/tickets/{ticket_id}/replies",
                        {"body": "Here is the new scan.", "scan": (io.BytesIO(payload), name)},
                        htmx=htmx, content_type="multipart/form-data")


def german(email: str) -> None:
    query(lambda: User.update(language="de").where(User.email == email).execute())


def test_rescan_request_end_to_end(app, clinician, support, redis_conn):
    german(ADA)
    scan = repaired(app, file_scan(clinician, arch_stl(holes=BIG_HOLE)).id)
    assert scan.verdict == "needs_rescan" and json.loads(scan.report)["holes_left_open"] == 1
    ticket_id = scan.ticket_id

    # The panel offers the form to staff, with the repair's suggestion ticked.
    page = support.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "Request a rescan" in page
    assert f'id="rescan-{scan.id}-occlusal_holes" checked' in page
    assert f'id="rescan-{scan.id}-bite_scan">' in page  # not suggested, not ticked

    response = ask(support, scan.id, ["occlusal_holes", "bite_scan"], NOTE)
    assert response.status_code == 303 and response.headers["Location"].endswith(
        f"/support/tickets/{ticket_id}#scan-{scan.id}")

    request = query(lambda: RescanRequest.get())
    assert request.reason_codes == ["occlusal_holes", "bite_scan"] and request.note == NOTE
    assert request.is_open and request.scan_id == scan.id and request.ticket_id == ticket_id
    assert query(lambda: request.requested_by.email) == "sam@smilepass.test"
    assert query(lambda: request.clinician.email) == ADA
    # The ticket waits on the clinician, through the status rules (a change by staff, in the thread).
    ticket = query(lambda: Ticket.get_by_id(ticket_id))
    assert ticket.status == Status.WAITING.value and ticket.first_response_at is not None
    change = query(lambda: StatusChange.get(StatusChange.ticket == ticket_id))
    assert (change.from_status, change.to_status) == (Status.OPEN.value, Status.WAITING.value)
    # A reply lists the reasons, in the clinician's language (the reply is addressed to them).
    reply = query(lambda: Message.get_by_id(request.message_id))
    assert not reply.internal
    assert "Löcher in Kauflächen" in reply.body and "Fehlender Bissscan" in reply.body and NOTE in reply.body

    # One in-app notification and one mail, both in German; the mail names no patient, file or note.
    notes = query(lambda: list(Notification.select().where(Notification.kind == "rescan_requested")))
    assert len(notes) == 1 and "Neuer Scan erbeten" in notes[0].text
    assert query(lambda: notes[0].user.email) == ADA
    mails = query(lambda: list(OutboxMail.select().where(OutboxMail.to_addr == ADA)))
    assert len(mails) == 1, [m.subject for m in mails]  # not three (reply, status change, request)
    mail = mails[0]
    assert mail.subject == f"[SP-{ticket_id:06d}] Bitte senden Sie einen neuen Scan"
    assert "Löcher in Kauflächen, Fehlender Bissscan" in mail.body
    assert "Sie erhalten diese E-Mail" in mail.body and "Request page" not in mail.body
    for private in ("Zebedee", "Quibblestone", "clinic7", "Scan rejected by the lab"):
        assert private not in mail.body and private not in mail.subject

    # The scan says so, to the clinician (in German) and to staff; the form is gone while it is open.
    page = clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "Neuer Scan angefordert: Löcher in Kauflächen, Fehlender Bissscan" in page
    assert "Request a rescan" not in page and "Neuen Scan anfordern" not in page
    page = support.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "Rescan requested: Holes in occlusal surfaces, Missing bite scan" in page
    assert f'action="/support/scans/{scan.id}/rescan"' not in page

    # A hostile file in the thread is refused as ever, and answers nothing.
    vertices, faces = arch_surface()
    mostly_copies = binary_stl(vertices, np.concatenate([faces, faces, faces]))
    for payload in (HTML_PAGE, arch_stl()[:-1000], mostly_copies):
        assert send_scan(clinician, ticket_id, payload).status_code == 422
    assert query(lambda: RescanRequest.get_by_id(request.id).is_open)
    assert query(lambda: Scan.select().count()) == 1

    # The clinician's new scan answers the request, and the ticket is back with the team.
    assert send_scan(clinician, ticket_id, arch_stl()).status_code == 303
    new_scan = query(lambda: Scan.select().order_by(Scan.id.desc()).get())
    request = query(lambda: RescanRequest.get_by_id(request.id))
    assert request.fulfilled_by_scan_id == new_scan.id and request.fulfilled_at == new_scan.created_at
    assert request.wait_minutes is not None and request.wait_minutes >= 0
    assert query(lambda: Ticket.get_by_id(ticket_id).status) == Status.IN_PROGRESS.value
    assert repaired(app, new_scan.id).verdict == "repaired"
    assert query(lambda: RescanRequest.get_by_id(request.id).fulfilled_by_scan_id) == new_scan.id
    page = support.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "answered by a new scan on" in page and f'href="#scan-{new_scan.id}"' in page
    assert "The rescan asked for on" in page and f'href="#scan-{scan.id}"' in page  # on the new scan's panel
    # Audited by codes and ids, never the note.
    actions = query(lambda: [(r.action, r.detail) for r in AuditLog.select().where(
        AuditLog.action.startswith("rescan_")).order_by(AuditLog.id)])
    assert actions == [("rescan_request", f"scan #{scan.id}: occlusal_holes,bite_scan"),
                       ("rescan_fulfilled", f"scan #{new_scan.id}")]


def test_htmx_request_answers_with_the_panel_thread_and_status(app, clinician, support, redis_conn):
    scan = judged(clinician)
    support.get(f"/support/tickets/{scan.ticket_id}")
    response = ask(support, scan.id, ["motion"], htmx=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html and f'id="scan-{scan.id}"' in html
    assert "Rescan requested: Motion distortion or artefacts" in html
    assert 'id="thread"' in html and 'hx-swap-oob="true"' in html and "Waiting on user" in html


@pytest.mark.parametrize("htmx", [True, False])
def test_a_request_without_a_reason_is_refused_and_changes_nothing(app, clinician, support, redis_conn, htmx):
    scan = judged(clinician)
    support.get(f"/support/tickets/{scan.ticket_id}")
    response = ask(support, scan.id, [], note="Typed note stays", htmx=htmx)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Choose at least one reason." in html and "Typed note stays" in html
    assert ("<html" in html) != htmx
    assert query(lambda: (RescanRequest.select().count(), Message.select().count(),
                          Ticket.get_by_id(scan.ticket_id).status)) == (0, 0, Status.OPEN.value)
    # A forged code is no reason either.
    assert ask(support, scan.id, ["teleportation"]).status_code == 422
    assert query(lambda: RescanRequest.select().count()) == 0


def test_one_open_request_per_scan_and_none_on_a_resolved_ticket(app, clinician, support, redis_conn):
    scan = judged(clinician)
    assert ask(support, scan.id, ["motion"]).status_code == 303
    response = ask(support, scan.id, ["bite_scan"], htmx=True)
    assert response.status_code == 422 and "A rescan of this scan is already requested." in response.get_data(
        as_text=True)
    assert query(lambda: RescanRequest.select().count()) == 1

    other = judged(clinician, name="lower.stl")
    support.post(f"/support/tickets/{other.ticket_id}/status", {"status": str(Status.RESOLVED.value)})
    assert query(lambda: Ticket.get_by_id(other.ticket_id).status) == Status.RESOLVED.value
    response = ask(support, other.id, ["motion"], htmx=True)
    assert response.status_code == 422
    assert "cannot move from Resolved to Waiting on user" in response.get_data(as_text=True)
    assert query(lambda: RescanRequest.select().count()) == 1


def test_only_support_and_admins_may_ask(app, clinician, other_clinician, support, admin, redis_conn):
    scan = judged(clinician)
    page = clinician.get(f"/support/tickets/{scan.ticket_id}").get_data(as_text=True)
    assert "Request a rescan" not in page
    assert ask(clinician, scan.id, ["motion"]).status_code == 404  # the clinician's own scan
    assert ask(other_clinician, scan.id, ["motion"]).status_code == 404  # another clinician's scan
    assert ask(support, 10**6, ["motion"]).status_code == 404
    # Without the CSRF token nothing happens.
    response = support.post(f"/support/scans/{scan.id}/rescan", {"reasons": ["motion"]}, csrf=False)
    assert response.status_code == 400
    assert query(lambda: RescanRequest.select().count()) == 0
    assert ask(admin, scan.id, ["motion"]).status_code == 303
    assert query(lambda: RescanRequest.select().count()) == 1


def test_from_the_case_page_the_panel_alone_comes_back(app, clinician, support, redis_conn):
    """A scan sent with a request about a case shows on the case page too; asked from there, htmx gets the
    panel without the ticket page's parts, and without htmx the browser goes back to the case page."""
    scan, other = judged(clinician), judged(clinician, name="lower.stl")
    case = query(lambda: Case.create(case_number="C-2026-1", patient_name="Pat Seed", patient_dob=dt.date(1990, 1, 1),
                                     clinician=User.get(User.email == ADA)))
    query(lambda: Scan.update(case=case.id).execute())
    page = support.get(f"/cases/{case.id}").get_data(as_text=True)
    assert f'action="/support/scans/{scan.id}/rescan"' in page
    response = ask(support, scan.id, ["motion"], htmx=True, headers={"Referer": f"http://localhost/cases/{case.id}"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Rescan requested: Motion distortion or artefacts" in html
    assert 'id="thread"' not in html and "<html" not in html
    response = ask(support, other.id, ["motion"], headers={"Referer": f"http://localhost/cases/{case.id}"})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/cases/{case.id}#scan-{other.id}")


def test_a_scan_on_a_case_page_has_no_thread_to_ask_in(app, clinician, support, redis_conn):
    scan = query(lambda: Scan.create(uploader=User.get(User.email == ADA), original_name="arch.stl",
                                     stored_name="c" * 32 + ".stl", size=1, sha256="0" * 64, file_format="stl-binary",
                                     triangles=1000, state="done", verdict="ready", report="{}"))
    assert ask(support, scan.id, ["motion"]).status_code == 404


def test_a_new_scan_the_repair_refuses_opens_the_request_again(app, clinician, support, redis_conn):
    scan = repaired(app, file_scan(clinician, arch_stl()).id)
    assert ask(support, scan.id, ["motion"]).status_code == 303
    assert send_scan(clinician, scan.ticket_id, arch_stl()).status_code == 303
    new_scan = query(lambda: Scan.select().order_by(Scan.id.desc()).get())
    assert not query(lambda: RescanRequest.get().is_open)
    # The stored file turns out to be no mesh when the worker reads it (damaged after the upload's checks).
    (Path(app.config["UPLOAD_DIR"]) / "scans" / new_scan.stored_name).write_bytes(HTML_PAGE)
    assert run_worker(app).returncode == 0
    assert query(lambda: Scan.get_by_id(new_scan.id).state) == "failed"
    request = query(lambda: RescanRequest.get())
    assert request.is_open and request.fulfilled_by_scan_id is None and request.wait_minutes is None
    # The next good scan answers it.
    assert send_scan(clinician, scan.ticket_id, arch_stl(), name="third.stl").status_code == 303
    third = query(lambda: Scan.select().order_by(Scan.id.desc()).get())
    assert query(lambda: RescanRequest.get().fulfilled_by_scan_id) == third.id


def test_staff_scans_and_internal_notes_answer_nothing(app, clinician, support, redis_conn):
    scan = judged(clinician)
    assert ask(support, scan.id, ["motion"]).status_code == 303
    assert send_scan(support, scan.ticket_id, arch_stl(), name="lab-export.stl").status_code == 303
    response = support.post(f"/support/tickets/{scan.ticket_id}/replies",
                            {"body": "Lab's own copy.", "internal": "y",
                             "scan": (io.BytesIO(arch_stl()), "internal.stl")}, content_type="multipart/form-data")
    assert response.status_code == 303
    assert query(lambda: RescanRequest.get().is_open)


def test_english_mail_for_a_clinician_without_a_language_and_none_when_mail_is_off(app, clinician, support,
                                                                                   redis_conn):
    scan = judged(clinician)
    assert ask(support, scan.id, ["wrong_patient"], note=NOTE).status_code == 303
    mail = query(lambda: OutboxMail.get(OutboxMail.to_addr == ADA))
    assert mail.subject.endswith("] Please send a new scan")
    assert "Reasons: Wrong patient or arch" in mail.body and "The team left a note for you" in mail.body
    assert NOTE not in mail.body and "Support asks me to rescan a scan" in mail.body
    note = query(lambda: Notification.get(Notification.kind == "rescan_requested"))
    assert note.text == f"SP-{scan.ticket_id:06d}: support asks for a rescan (Wrong patient or arch)"

    other = judged(clinician, name="lower.stl")
    clinician.post("/account/notifications", {"rescan_requested": ""})
    query(lambda: OutboxMail.delete().execute())
    assert ask(support, other.id, ["motion"]).status_code == 303
    assert query(lambda: OutboxMail.select().where(OutboxMail.to_addr == ADA).count()) == 0
    assert query(lambda: Notification.select().where(Notification.kind == "rescan_requested").count()) == 2


def mail_answer(mail: OutboxMail, attachment: bytes, name: str) -> bytes:
    """The clinician's answer to the rescan mail, from a mail program, with the file attached."""
    answer = EmailMessage()
    answer["From"] = f"Dr Ada <{ADA}>"
    answer["To"] = mail.reply_to
    answer["Subject"] = "Re: " + mail.subject
    answer["Message-ID"] = f"<{uuid.uuid4().hex}@mail.clinic.test>"
    answer["In-Reply-To"] = answer["References"] = mail.in_reply_to
    answer["Authentication-Results"] = "mx.clinic.example; dkim=pass; spf=pass; dmarc=pass"
    answer.set_content("Here is the new scan.")
    answer.add_attachment(attachment, maintype="application", subtype="sla", filename=name)
    return answer.as_bytes()


def test_the_new_scan_may_come_back_by_mail(app, clinician, support, redis_conn):
    """An answer to the rescan mail with the scan attached goes through the same upload checks: a hostile
    attachment is not taken and answers nothing; a good one answers the request."""
    scan = judged(clinician)
    assert ask(support, scan.id, ["bite_scan"]).status_code == 303
    mail = query(lambda: OutboxMail.get(OutboxMail.to_addr == ADA))
    assert mail.reply_to and "You can also answer this mail with the new scan attached." in mail.body

    def take(raw):
        with app.app_context():
            return query(lambda: receive.take(raw, app.config))

    assert take(mail_answer(mail, HTML_PAGE, "rescan.stl")).status == "accepted"  # the text is a reply
    assert query(lambda: RescanRequest.get().is_open) and query(lambda: Scan.select().count()) == 1
    assert take(mail_answer(mail, arch_stl(), "rescan.stl")).status == "accepted"
    new_scan = query(lambda: Scan.select().order_by(Scan.id.desc()).get())
    assert new_scan.id != scan.id and query(lambda: RescanRequest.get().fulfilled_by_scan_id) == new_scan.id


def test_erasing_the_patient_scrubs_a_rescan_note_that_names_them(app, clinician, support, admin, redis_conn):
    """A note on another request that names the erased patient loses the name (stewardship's free-text
    scrub covers rescan notes)."""
    scan = judged(clinician)
    assert ask(support, scan.id, ["motion"], note=NOTE).status_code == 303
    ada = query(lambda: User.get(User.email == ADA))
    case = query(lambda: Case.create(case_number="C-2026-9", patient_name="Zebedee Quibblestone",
                                     patient_dob=dt.date(1987, 3, 14), clinician=ada.id))
    root = query(lambda: User.get(User.email == "root@smilepass.test"))
    with app.app_context():
        query(lambda: erase.erase_patient([Case.get_by_id(case.id)], root, app.config))
    note = query(lambda: RescanRequest.get().note)
    assert "Zebedee" not in note and "Quibblestone" not in note and "moved during the scan" in note


# Suggestions from the repair's report ---------------------------------------------------------------

def seeded(report: dict, state="done") -> Scan:
    seeded.n = getattr(seeded, "n", 0) + 1
    return Scan(state=state, report=json.dumps(report), stored_name=f"s{seeded.n}")


@pytest.mark.parametrize("report, expected", [
    ({"holes_left_open": 0, "margin_loops": 1, "similar_bodies": 1}, []),
    ({"holes_left_open": 2, "margin_loops": 1, "similar_bodies": 1}, ["occlusal_holes"]),
    ({"holes_left_open": 0, "margin_loops": 0, "similar_bodies": 6}, ["gum_margin", "wrong_export"]),
    # Reports written before the count: the bodies' areas tell it.
    ({"holes_left_open": 0, "margin_loops": 1, "piece_areas_mm2": [165045.0, 981.2, 981.2, 981.2]},
     ["wrong_export"]),
    ({"holes_left_open": 0, "margin_loops": 1, "piece_areas_mm2": [165045.0, 981.2]}, []),
    # A report without the margin count says nothing about the margin; junk says nothing at all.
    ({"holes_left_open": "many"}, []),
])
def test_the_repair_suggests_reasons(report, expected):
    assert rescans.suggested_reasons(seeded(report)) == expected


def test_no_suggestions_before_the_repair_is_done():
    assert rescans.suggested_reasons(seeded({"holes_left_open": 3}, state="processing")) == []
    assert rescans.suggested_reasons(Scan(state="done", report="not json")) == []


# The report's wording (§3) ---------------------------------------------------------------------------

def test_six_bodies_are_not_ready_but_check(app, clinician, support, redis_conn):
    """The multi-body part from the shared test meshes passed as "Ready: no problems found" before."""
    path = SHARED_MESHES / "counter_multibody_binary.stl"
    if not path.is_file():
        part_missing(f"{path.name} is not in {SHARED_MESHES}")
    scan = repaired(app, file_scan(clinician, path.read_bytes(), name="upper.stl").id)
    assert scan.verdict == "check"
    report = json.loads(scan.report)
    assert report["pieces"] == 6 and report["similar_bodies"] == 5
    page = clinician.get(f"/support/tickets/{scan.ticket_id}").get_data(as_text=True)
    assert "Check: 6 separate bodies" in page and "Ready: no problems found" not in page
    assert "5 of the scan&#39;s 6 separate bodies are of similar size" in page
    assert '<th scope="row">Holes filled</th><td colspan="2">0</td>' in page
    assert '<th scope="row">Holes left open</th><td colspan="2">0</td>' in page
    # Staff see "wrong scan type or export" and "gum margin" ticked (closed bodies have no margin loop).
    page = support.get(f"/support/tickets/{scan.ticket_id}").get_data(as_text=True)
    assert f'id="rescan-{scan.id}-wrong_export" checked' in page
    assert f'id="rescan-{scan.id}-gum_margin" checked' in page
    assert f'id="rescan-{scan.id}-occlusal_holes">' in page
    german(ADA)
    clinician.get("/support/")
    page = clinician.get(f"/support/tickets/{scan.ticket_id}").get_data(as_text=True)
    assert "Prüfen: 6 getrennte Körper" in page


@pytest.mark.parametrize("areas, similar", [([], 0), ([50.0], 1), ([10.0, 6.0], 2), ([10.0, 4.0], 1),
                                            ([165045.0, 981.3, 981.2, 981.2, 981.2, 981.2], 5),
                                            ([100.0, 60.0, 35.0, 20.0], 2)])
def test_similar_bodies_are_within_a_factor_of_two(areas, similar):
    assert similar_bodies(areas) == similar


def test_a_synthetic_scan_with_two_small_detailed_bodies_is_to_check(tmp_path):
    """An arch with two small, finely meshed parts beside it (not debris: many triangles), without the
    shared test meshes: "check", and the report counts the bodies."""
    vertices, faces = arch_surface(holes=())
    small_v, small_f = arch_surface(rows=12, cols=30, holes=())
    parts_v, parts_f = [vertices], [faces]
    for shift in (60.0, 75.0):
        parts_f.append(small_f + sum(len(v) for v in parts_v))
        parts_v.append(small_v * 0.1 + np.array([shift, 0.0, 0.0]))
    source = tmp_path / "parts.stl"
    source.write_bytes(binary_stl(np.concatenate(parts_v), np.concatenate(parts_f)))
    result = repair(source, tmp_path / "out", "parts", preview=False)
    assert result.report["pieces"] == 3 and result.report["similar_bodies"] == 2
    assert result.report["fragments_removed"] == 0
    assert result.verdict == "check" and result.verdict_reason.startswith("2 of the scan's 3 separate bodies")

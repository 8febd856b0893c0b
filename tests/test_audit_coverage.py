"""The audit trail covers the main paths: every change and every view or download of patient data is a
row with its actor, action, object and client address; and no row carries the patient's data
(name, birth date, clinic patient id, case number, ticket text, file names), whatever people typed."""
import io
import re

from PIL import Image

from smilepass.models import Attachment, AuditLog, Case, Scan, Status, User

from .case_helpers import TOKEN_URL
from .conftest import Browser, query, run_worker
from .scanfiles import arch_stl

ADDRESSES = {"dr.ada@clinic.test": "198.51.100.10", "sam@smilepass.test": "198.51.100.20",
             "root@smilepass.test": "198.51.100.30", "": "203.0.113.99"}
ADA, SAM, ROOT = "dr.ada@clinic.test", "sam@smilepass.test", "root@smilepass.test"

# A patient nobody else could be: every identifier is distinctive enough to grep for.
PATIENT = {"case_number": "ZQ-2026-991", "patient_name": "Zebedee Quibblestone", "patient_dob": "1987-03-14",
           "clinic_patient_id": "QX-778812", "treatment_plan": "Full case, 24 stages", "arches": "both",
           "notes": "Zebedee prefers morning appointments."}
IDENTIFIERS = ["ZQ-2026-991", "Zebedee", "Quibblestone", "1987-03-14", "14.03.1987", "03/14/1987", "QX-778812",
               "wobbly incisor", "cracked tray"]


def at(browser: Browser, address: str) -> Browser:
    browser.client.environ_base["REMOTE_ADDR"] = address
    return browser


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 80, 80)).save(out, "PNG")
    return out.getvalue()


def ok(response, status=303):
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return response


def rows():
    return query(lambda: list(AuditLog.select().order_by(AuditLog.id)))


def walk(app, clinician, support, admin, with_scan=False):
    """Clinician, support and admin go through the main paths, each from their own address, with the
    distinctive patient. Returns the ids of what was made."""
    at(clinician, ADDRESSES[ADA]), at(support, ADDRESSES[SAM]), at(admin, ADDRESSES[ROOT])
    made = {}
    # Case: create, view, change, labels.
    ok(clinician.post("/cases/new", PATIENT))
    case = query(lambda: Case.get(Case.case_number == PATIENT["case_number"]))
    made["case"] = case.id
    ok(clinician.get(f"/cases/{case.id}"), 200)
    ok(clinician.post(f"/cases/{case.id}/edit", {**PATIENT, "notes": "Zebedee moved to the afternoon list."}))
    ok(clinician.post("/cases/labels", {"name": "Quibblestone family", "color": "blue"}))
    label_id = int(re.search(r'/cases/labels/(\d+)"', clinician.get("/cases/labels").get_data(as_text=True)).group(1))
    made["label"] = label_id
    ok(clinician.post(f"/cases/{case.id}/labels", {"label": str(label_id)}))
    ok(clinician.post(f"/cases/{case.id}/labels/{label_id}/detach"))
    ok(clinician.post(f"/cases/labels/{label_id}", {"name": "Zebedee", "color": "green"}))

    # A request about the case, with a screenshot named after the patient.
    response = ok(clinician.post("/support/tickets", {
        "title": "Zebedee Quibblestone: cracked tray", "description": "ZQ-2026-991 has a wobbly incisor.",
        "priority": "2", "category": "Warranty & Replacement", "case_number": PATIENT["case_number"],
        "image": (io.BytesIO(png()), "ZQ-2026-991_Quibblestone.png")}, content_type="multipart/form-data"))
    ticket_id = int(response.headers["Location"].rsplit("created=", 1)[1])
    made["ticket"] = ticket_id
    attachment = query(lambda: Attachment.get(Attachment.ticket == ticket_id))
    made["attachment"] = attachment.id
    ok(clinician.get(f"/support/tickets/{ticket_id}"), 200)
    ok(clinician.get(f"/support/attachments/{attachment.id}"), 200)
    ok(clinician.get(f"/support/attachments/{attachment.id}/thumb"), 200)

    # Support works the ticket.
    sam = query(lambda: User.by_email(SAM))
    ok(support.get(f"/support/tickets/{ticket_id}"), 200)
    ok(support.post(f"/support/tickets/{ticket_id}/replies", {"body": "Zebedee's tray is on its way."}))
    ok(support.post(f"/support/tickets/{ticket_id}/replies", {"body": "Quibblestone again", "internal": "y"}))
    ok(support.post(f"/support/tickets/{ticket_id}/status", {"status": str(Status.WAITING.value)}))
    ok(support.post(f"/queue/tickets/{ticket_id}/assign", {"assignee": str(sam.id)}))
    ok(
        support.post(
            "/queue/bulk", {"ticket": str(ticket_id), "action": "assign", "assignee": "none", "tab": "unassigned"}
        )
    )
    ok(support.post(f"/support/tickets/{ticket_id}/escalate", {"reason": "Zebedee Quibblestone's mother called."}))

    # Shipments: create, advance, patient link (opened by the patient), revoke, import, reopen.
    ok(
        support.post(
            f"/cases/{case.id}/shipments", {"phases": "Aligners 1–12 for Zebedee", "target_ship_date": "2026-11-20"}
        )
    )
    shipment_id = int(
        re.search(r'/cases/shipments/(\d+)"', support.get(f"/cases/{case.id}").get_data(as_text=True)).group(1)
    )
    made["shipment"] = shipment_id
    ok(support.post(f"/cases/shipments/{shipment_id}/advance",
                    {"to": "in_transit", "carrier": "UPS", "tracking_number": "1ZQUIBBLE"}))
    ok(clinician.post(f"/cases/shipments/{shipment_id}/links"))
    page = clinician.get(f"/cases/shipments/{shipment_id}").get_data(as_text=True)
    token_url = TOKEN_URL.search(page).group(1)
    patient = at(Browser(app), ADDRESSES[""])
    ok(patient.get(token_url.replace("http://localhost", "")), 200)
    link_id = int(re.search(r'/cases/links/(\d+)/revoke', page).group(1))
    made["patientlink"] = link_id
    ok(clinician.post(f"/cases/links/{link_id}/revoke"))
    ok(support.post(f"/cases/{case.id}/shipments", {"phases": "Refinement", "target_ship_date": "2026-11-27"}))
    support.get("/shipments/import")
    ok(
        support.post(
            "/shipments/import",
            {"file": (io.BytesIO(b"ZQ-2026-991,DHL,JDQUIBBLE,2026-11-20\n"), "ZQ-2026-991.csv")},
            content_type="multipart/form-data",
        ),
        200,
    )
    ok(support.post(f"/cases/shipments/{shipment_id}/advance", {"to": "delivered"}))
    ok(
        admin.post(
            f"/cases/shipments/{shipment_id}/reopen", {"reason": "Carrier returned Zebedee Quibblestone's parcel"}
        )
    )

    # Admin: users, settings, holidays, clinics; support: canned replies.
    ok(admin.post("/admin/users", {"email": "nia@clinic.test", "name": "Nia", "role": "clinician",
                                   "password": "assistant-Pass-2026"}))
    nia = query(lambda: User.by_email("nia@clinic.test"))
    made["user"] = nia.id
    ok(admin.post(f"/admin/users/{nia.id}/active"))
    ok(admin.post(f"/admin/users/{sam.id}/escalation-role", {"escalation_role": "supervisor"}))
    ok(admin.post("/admin/settings", {"tooth_notation": "universal", "warranty_days": "120"}))
    ok(admin.post("/admin/holidays", {"date": "2030-12-25", "name": "Christmas Day"}))
    ok(admin.post("/admin/clinics", {"name": "Bright Smiles", "tier": "1", "account_manager": ""}))
    ok(support.post("/queue/canned", {"title": "Scan received", "body": "Hello {clinician_name}."}))

    if with_scan:
        made["scan"] = scan_paths(app, clinician, case)
    return made


def scan_paths(app, clinician, case):
    """A scan named after the patient, uploaded on the case page, repaired by a real worker, then its
    report, previews and files seen."""
    ok(
        clinician.post(
            f"/cases/{case.id}/scans",
            {"scan": (io.BytesIO(arch_stl()), "ZQ-2026-991_QX-778812_Quibblestone.stl")},
            content_type="multipart/form-data",
        )
    )
    scan = query(lambda: Scan.get(Scan.case == case.id))
    result = run_worker(app)
    assert result.returncode == 0, result.stderr[-2000:]
    assert ok(clinician.get(f"/support/scans/{scan.id}", htmx=True), 286)
    for which in ("before", "after"):
        ok(clinician.get(f"/support/scans/{scan.id}/preview/{which}"), 200)
    for kind in ("original", "repaired-stl"):
        ok(clinician.get(f"/support/scans/{scan.id}/files/{kind}"), 200)
    return scan.id


def assert_rows(expected):
    """Each (action, actor email, object type, object id) has a row, from the actor's address."""
    found = {(r.action, r.actor_email, r.object_type, r.object_id, r.ip) for r in rows()}
    missing = [(action, actor, kind, str(oid), ADDRESSES[actor]) for action, actor, kind, oid in expected
               if (action, actor, kind, str(oid), ADDRESSES[actor]) not in found]
    assert not missing, f"no audit row for {missing}; rows: {sorted(found)}"


def test_main_paths_are_audited_with_actor_object_and_address(app, clinician, support, admin, redis_conn):
    made = walk(app, clinician, support, admin)
    case, ticket, shipment = made["case"], made["ticket"], made["shipment"]
    assert_rows([
        ("case_create", ADA, "case", case), ("case_view", ADA, "case", case), ("case_update", ADA, "case", case),
        ("label_create", ADA, "label", made["label"]), ("case_label_attach", ADA, "case", case),
        ("case_label_detach", ADA, "case", case), ("label_update", ADA, "label", made["label"]),
        ("ticket_created", ADA, "ticket", ticket), ("attachment_upload", ADA, "attachment", made["attachment"]),
        ("ticket_view", ADA, "ticket", ticket), ("attachment_download", ADA, "attachment", made["attachment"]),
        ("attachment_thumbnail", ADA, "attachment", made["attachment"]), ("ticket_view", SAM, "ticket", ticket),
        ("ticket_reply", SAM, "ticket", ticket), ("ticket_note", SAM, "ticket", ticket),
        ("ticket_status", SAM, "ticket", ticket), ("ticket_assign", SAM, "ticket", ticket),
        ("ticket_escalated", SAM, "ticket", ticket),
        ("shipment_create", SAM, "shipment", shipment), ("shipment_advance", SAM, "shipment", shipment),
        ("patient_link_create", ADA, "patientlink", made["patientlink"]),
        ("patient_page_view", "", "shipment", shipment),
        ("patient_link_revoke", ADA, "patientlink", made["patientlink"]),
        ("shipment_import", SAM, "", ""), ("shipment_reopen", ROOT, "shipment", shipment),
        ("user_created", ROOT, "user", made["user"]), ("user_deactivated", ROOT, "user", made["user"]),
        ("escalation_role", ROOT, "user", query(lambda: User.by_email(SAM).id)),
        ("setting_change", ROOT, "", ""), ("holiday_add", ROOT, "holiday", 1),
        ("clinic_created", ROOT, "clinic", 1), ("canned_create", SAM, "cannedreply", 1),
    ])
    # Two status rows for the ticket: the first staff reply moved it on, then the explicit change.
    statuses = [r.detail for r in rows() if r.action == "ticket_status"]
    assert statuses == ["Open -> In Progress", "In Progress -> Waiting on user"]
    # Bulk unassignment is one row like a single one; the case change names fields, not values.
    assert [r.detail for r in rows() if r.action == "ticket_assign"][-1].endswith("→ Unassigned")
    assert [r.detail for r in rows() if r.action == "case_update"] == ["changed: notes"]
    assert [r.detail for r in rows() if r.action == "ticket_created"] == [f"case #{case}"]


def test_views_of_a_ticket_without_patient_data_are_not_audited(app, clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    assert clinician.get(f"/support/tickets/{ticket_id}").status_code == 200
    assert not [r for r in rows() if r.action == "ticket_view"]


def test_no_audit_row_carries_the_patients_data(app, clinician, support, admin, redis_conn):
    made = walk(app, clinician, support, admin, with_scan=True)
    assert_rows([("scan_upload", ADA, "scan", made["scan"]), ("scan_view", ADA, "scan", made["scan"]),
                 ("scan_preview", ADA, "scan", made["scan"]), ("scan_download", ADA, "scan", made["scan"])])
    trail = rows()
    assert len(trail) > 40
    for row in trail:
        text = " | ".join(str(value) for value in row.__data__.values()).casefold()
        leaked = [i for i in IDENTIFIERS if i.casefold() in text]
        assert not leaked, f"audit row {row.action} #{row.id} carries {leaked}: {row.detail!r}"
    # The reopening reason is kept, less the patient's name.
    [reopen] = [r for r in trail if r.action == "shipment_reopen"]
    assert reopen.detail.endswith("undone: Carrier returned …'s parcel")

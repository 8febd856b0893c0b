"""Exporting a patient's data (GDPR art. 15 and 20): one ZIP with `patient.json` and the original
files under readable names. Built into a temporary file (scans run to hundreds of MB, so never in
memory) that the view streams out and that vanishes when closed.

What the viewer gets is what they may see: the treating clinician gets their own requests, public
replies and the scans shown to them; an admin gets every request about the patient with the staff's
internal notes and staff-only scans, marked `"internal": true`, because an access request covers
what the clinic's staff wrote about the patient too, and the admin decides what to hand over."""
import datetime as dt
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..models import (
    Attachment,
    Case,
    CaseDetails,
    CaseLabel,
    Label,
    Message,
    PatientLink,
    Scan,
    Shipment,
    Status,
    StatusChange,
    Ticket,
    User,
    utcnow,
)
from ..scans.storage import scan_key
from ..storage import Storage
from ..storage.base import CHUNK
from .patients import scan_condition

FORMAT = "smilepass-patient-export/1"


@dataclass
class ExportSummary:
    cases: int
    requests: int
    scans: int
    files: int


def export_patient(cases: list[Case], viewer: User, storage: Storage, out) -> ExportSummary:
    """Write the ZIP for these cases (one patient's, as the viewer may see them) to the binary file
    object `out`."""
    files: list[tuple[str, str]] = []  # (storage key, name in the ZIP)
    document = {
        "format": FORMAT,
        "exported_at": _iso(utcnow()),
        "patient": {"name": cases[0].patient_name, "date_of_birth": _iso(cases[0].patient_dob),
                    "clinic_patient_ids": sorted({c.clinic_patient_id for c in cases if c.clinic_patient_id})},
        "cases": [_case(case, viewer, storage, files) for case in cases],
    }
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        archive.writestr("patient.json", json.dumps(document, indent=2, ensure_ascii=False))
        for key, name in files:
            with storage.open(key) as source, archive.open(name, "w", force_zip64=True) as target:
                while chunk := source.read(CHUNK):  # in chunks, never a whole scan in memory
                    target.write(chunk)
    return ExportSummary(cases=len(cases), requests=sum(len(c["requests"]) for c in document["cases"]),
                         scans=sum(len(c["scans"]) for c in document["cases"]), files=len(files))


def _case(case: Case, viewer: User, storage: Storage, files: list) -> dict:
    folder = f"case-{safe_name(case.case_number)}"
    shipments = case.shipments.order_by(Shipment.id)
    labels = Label.select(Label.name).join(CaseLabel).where(CaseLabel.case == case.id)
    if not viewer.is_admin:
        labels = labels.where(Label.owner == viewer.id)  # labels are their owner's own
    return {
        "case_number": case.case_number,
        "patient_name": case.patient_name,
        "date_of_birth": _iso(case.patient_dob),
        "clinic_patient_id": case.clinic_patient_id,
        "treating_clinician": case.clinician.display_name,
        "treatment_plan": case.treatment_plan,
        "arches": case.arches,
        "notes": case.notes,
        "created_at": _iso(case.created_at),
        "updated_at": _iso(case.updated_at),
        "labels": sorted(label.name for label in labels),
        "shipments": [_shipment(s) for s in shipments],
        "requests": [_request(ticket, viewer, storage, folder, files) for ticket in _requests(case, viewer)],
        "scans": [_scan(scan, storage, folder, files) for scan in _scans(case, viewer)],
    }


def _shipment(shipment: Shipment) -> dict:
    links = shipment.patient_links.order_by(PatientLink.id)
    return {
        "phases": shipment.phases, "state": shipment.state, "target_ship_date": _iso(shipment.target_ship_date),
        "in_production_at": _iso(shipment.in_production_at), "in_transit_at": _iso(shipment.in_transit_at),
        "delivered_at": _iso(shipment.delivered_at), "carrier": shipment.carrier,
        "tracking_number": shipment.tracking_number, "carrier_eta": _iso(shipment.carrier_eta),
        # A link's token is never stored, so there is nothing to export but its dates.
        "patient_links": [{"created_at": _iso(link.created_at), "revoked_at": _iso(link.revoked_at)} for link in links],
    }


def _requests(case: Case, viewer: User):
    return Ticket.visible_to(viewer).where(Ticket.case == case.id).order_by(Ticket.id)


def _request(ticket: Ticket, viewer: User, storage: Storage, folder: str, files: list) -> dict:
    messages = Message.select(Message, User).join(User).where(Message.ticket == ticket.id).order_by(Message.id)
    if not viewer.is_staff:
        messages = messages.where(Message.internal == False)  # noqa: E712
    details = CaseDetails.get_or_none(CaseDetails.ticket == ticket.id)
    screenshots = []
    for attachment in Attachment.select().where(Attachment.ticket == ticket.id).order_by(Attachment.id):
        name = f"{folder}/requests/{ticket.number}/screenshot-{attachment.id}-{safe_name(attachment.original_name)}"
        screenshots.append({"file": _add(storage, files, attachment.stored_name, name),
                            "original_name": attachment.original_name, "content_type": attachment.content_type,
                            "size": attachment.size, "sha256": attachment.sha256,
                            "uploaded_at": _iso(attachment.created_at)})
    changes = StatusChange.select().where(StatusChange.ticket == ticket.id).order_by(StatusChange.id)
    return {
        "number": ticket.number, "title": ticket.title, "description": ticket.description, "tried": ticket.tried,
        "category": ticket.category, "priority": ticket.priority_enum.label, "status": ticket.status_enum.label,
        "requester": ticket.requester.display_name, "created_at": _iso(ticket.created_at),
        "resolved_at": _iso(ticket.resolved_at),
        "case_details": None if details is None else {
            "teeth_fdi": details.teeth, "last_aligner_delivered": _iso(details.last_aligner_delivered),
            "aligner_step": details.aligner_step, "tracking_number": details.tracking_number,
            "preferred_resolution": details.preferred_resolution},
        "messages": [dict({"author": m.author.display_name, "body": m.body, "created_at": _iso(m.created_at)},
                          **({"internal": True} if m.internal else {})) for m in messages],
        "status_changes": [{"from": Status(c.from_status).label, "to": Status(c.to_status).label,
                            "at": _iso(c.created_at)} for c in changes],
        "screenshots": screenshots,
    }


def _scans(case: Case, viewer: User):
    # The same scans the case page lists for this viewer: on the case, or sent with its requests.
    tickets = [t.id for t in _requests(case, viewer)]
    query = Scan.select().where(scan_condition([case.id], tickets)).order_by(Scan.id)
    return Scan.shown_to(query, viewer)


def _scan(scan: Scan, storage: Storage, folder: str, files: list) -> dict:
    stem = f"{folder}/scans/{scan.id}-{safe_name(Path(scan.original_name).stem)}"
    report = None
    if scan.report:
        try:
            report = json.loads(scan.report)
        except ValueError:
            report = scan.report
    entry = {
        "original_name": scan.original_name, "format": scan.file_format, "size": scan.size, "sha256": scan.sha256,
        "triangles": scan.triangles, "uploaded_at": _iso(scan.created_at), "uploaded_by": scan.uploader.display_name,
        "request": Ticket(id=scan.ticket_id).number if scan.ticket_id else None,
        "state": scan.state, "verdict": scan.verdict, "verdict_reason": scan.verdict_reason, "error": scan.error,
        "repair_report": report,
        "file": _add(storage, files, scan_key(scan.stored_name), f"{stem}{Path(scan.stored_name).suffix}"),
        "repaired_file": None, "repaired_stl_file": None,
    }
    if scan.message_id is not None and Message.get_by_id(scan.message_id).internal:
        entry["internal"] = True
    if scan.repaired_name:
        entry["repaired_file"] = _add(storage, files, scan_key(scan.repaired_name),
                                      f"{stem}-repaired{Path(scan.repaired_name).suffix}")
    if scan.repaired_stl_name and scan.repaired_stl_name != scan.repaired_name:
        entry["repaired_stl_file"] = _add(storage, files, scan_key(scan.repaired_stl_name),
                                          f"{stem}-repaired{Path(scan.repaired_stl_name).suffix}")
    return entry


def _add(storage: Storage, files: list, key: str, name: str) -> str | None:
    """Queue a file for the archive; None in the JSON when it is gone (purged by retention)."""
    if not storage.exists(key):
        return None
    files.append((key, name))
    return name


def safe_name(text: str, limit: int = 80) -> str:
    """Display text as a file name: letters, digits, dot, dash and underscore; nothing else, no
    leading dot (a name is never a path)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text or "").strip("._")[:limit]
    return cleaned or "file"


def _iso(value):
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat() + "Z"  # stored naive in UTC
    return value.isoformat()

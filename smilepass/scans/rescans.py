"""Rescan requests (docs/rescan.md): staff ask the clinician to scan again for coded reasons. The request
posts a reply in the ticket's thread listing them, moves the ticket to Waiting on user and tells the
clinician (in-app and by mail, in their language); the next scan the clinician sends in the thread answers
it. The repair's report suggests reasons; staff confirm them."""
import datetime as dt
from dataclasses import dataclass

from flask_babel import force_locale, gettext

from .. import audit
from ..db import database
from ..i18n import DEFAULT_LANGUAGE
from ..live import events as live
from ..mesh.pipeline import similar_bodies
from ..models import RESCAN_REASONS, Notification, RescanRequest, Scan, ScanPin, ScanState, Ticket, User, utcnow
from ..notifications.inbox import NOTIFICATION_TEXT_MAX
from ..notifications.mailthread import subject_for
from ..notifications.outbox import absolute_url, hand_over, notify
from ..support import tickets
from .forms import NOTE_MAX
from .text import stored_report

EVENT = "rescan_requested"


class RescanRefused(Exception):
    """A rescan request that cannot be made, with the reason in the reader's language."""


def _number(value) -> float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def suggested_reasons(scan: Scan) -> list[str]:
    """The reasons the repair's own report points at, in RESCAN_REASONS order: holes it had to leave
    open, several bodies of similar size (another scan or export than one arch), no gum margin loop
    (the scan's open edge, which every arch scan has). Staff confirm or change them."""
    if scan.state != ScanState.DONE.value:
        return []
    report = stored_report(scan.report)
    if report is None:
        return []
    found = set()
    if _number(report.get("holes_left_open")) > 0:
        found.add("occlusal_holes")
    similar = report.get("similar_bodies")
    if similar is None and isinstance(report.get("piece_areas_mm2"), list):  # reports older than the count
        similar = similar_bodies([area for area in report["piece_areas_mm2"] if _number(area) > 0])
    if _number(similar) > 1:
        found.add("wrong_export")
    if "margin_loops" in report and _number(report["margin_loops"]) == 0:
        found.add("gum_margin")
    return [code for code in RESCAN_REASONS if code in found]


def reason_list(codes) -> str:
    """The reasons' names in the current language, as one line."""
    return ", ".join(str(RESCAN_REASONS[code]) for code in codes if code in RESCAN_REASONS)


@dataclass(frozen=True)
class Pin:
    """A point on the scan that a request carries, and the camera that looked at it (checked by the caller
    like any pin: on the scan, camera near it). One per request: a pin belongs to one thread message."""
    point: tuple
    camera: tuple
    target: tuple


def request_rescan(scan: Scan, staff: User, reasons, note: str = "", now: dt.datetime | None = None,
                   pin: Pin | None = None) -> RescanRequest:
    """Ask the ticket's requester to scan again, optionally pointing at one spot of the scan (the pin goes
    with the request's reply, so the clinician can open the 3D view there). Raises RescanRefused (nothing
    changed) for a scan sent with no request, no known reason, a request of this scan still open, or a
    ticket that cannot wait on the user (resolved or closed)."""
    if scan.ticket_id is None:
        raise RescanRefused(gettext("Only a scan sent with a request can be asked for again."))
    chosen = set(reasons or [])
    codes = [code for code in RESCAN_REASONS if code in chosen]
    if not codes:
        raise RescanRefused(gettext("Choose at least one reason."))
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise RescanRefused(gettext("The note can be at most %(count)s characters long.", count=NOTE_MAX))
    if RescanRequest.select().where((RescanRequest.scan == scan.id) & RescanRequest.fulfilled_at.is_null()).exists():
        raise RescanRefused(gettext("A rescan of this scan is already requested."))
    ticket = Ticket.get_by_id(scan.ticket_id)
    clinician = User.get_by_id(ticket.requester_id)
    now = now or utcnow()
    # The reply is addressed to the clinician: written in their language.
    with force_locale(clinician.language or DEFAULT_LANGUAGE):
        body = gettext("Rescan requested for %(file)s: %(reasons)s.", file=scan.original_name,
                       reasons=reason_list(codes))
        body += "\n" + gettext("Please scan again and send the new scan as a reply to this request (attach the STL "
                               "or PLY file).")
    if note:
        body += "\n\n" + note
    try:
        with database.atomic():
            result = tickets.ask_requester(ticket, staff, body, now)
            request = RescanRequest.create(scan=scan.id, ticket=ticket.id, clinician=clinician.id,
                                           reasons=",".join(codes), note=note, message=result.message.id,
                                           requested_by=staff.id, requested_at=now)
            if pin is not None:
                ScanPin.create(message=result.message.id, scan=scan.id, x=pin.point[0], y=pin.point[1],
                               z=pin.point[2], camera_x=pin.camera[0], camera_y=pin.camera[1],
                               camera_z=pin.camera[2], target_x=pin.target[0], target_y=pin.target[1],
                               target_z=pin.target[2])
            # Codes and ids only: the note is free text that may name the patient.
            audit.record("rescan_request", request, detail=f"scan #{scan.id}: {','.join(codes)}", actor=staff)
            live.changed(ticket.id, live.SCANS)
            _tell(clinician, ticket, request, staff)
    except tickets.TransitionRefused as exc:
        raise RescanRefused(str(exc)) from None
    hand_over()  # the mail, now that the request is committed
    live.send()
    return request


def _tell(clinician: User, ticket: Ticket, request: RescanRequest, staff: User) -> None:
    """One in-app notification and (if they want it) one mail, both in the clinician's language. The
    mail names the request by its number and the reasons by their codes' names: no file name and no
    note, which may carry the patient's name."""
    if not clinician.is_active:
        return
    with force_locale(clinician.language or DEFAULT_LANGUAGE):
        text = gettext("%(number)s: support asks for a rescan (%(reasons)s)", number=ticket.number,
                       reasons=reason_list(request.reason_codes))
    Notification.create(user=clinician.id, ticket=ticket.id, kind=EVENT, text=text[:NOTIFICATION_TEXT_MAX])
    live.inbox_changed(clinician.id)

    def compose():
        link = absolute_url("support.detail", ticket_id=ticket.id)
        lines = [gettext("%(name)s asks you to scan again for your request %(number)s.", name=staff.display_name,
                         number=ticket.number), "",
                 gettext("Reasons: %(reasons)s", reasons=reason_list(request.reason_codes)), ""]
        if request.note:
            lines += [gettext("The team left a note for you on the request page."), ""]
        lines += [gettext("Send the new scan as a reply on the request page (attach the STL or PLY file). It is "
                          "checked and repaired automatically and answers this request."), "",
                  gettext("Request page (sign-in needed): %(link)s", link=link), "",
                  gettext("You can also answer this mail with the new scan attached.")]
        return subject_for(ticket.number, gettext("Please send a new scan")), "\n".join(lines)

    notify(EVENT, clinician, compose, staff, ticket_id=ticket.id)


def fulfil(ticket: Ticket, scan: Scan, sender: User) -> RescanRequest | None:
    """A scan the ticket's requester just sent in a public reply answers the ticket's oldest open
    request. Call inside the reply's transaction, after the file passed the upload's checks (a refused
    file never gets here). Returns the request answered, if any."""
    if sender.id != ticket.requester_id:
        return None
    pending = RescanRequest.open_for_ticket(ticket.id)
    if not pending:
        return None
    request = pending[0]
    minutes = max(0, int((scan.created_at - request.requested_at).total_seconds() // 60))
    answered = (RescanRequest.update(fulfilled_by_scan=scan.id, fulfilled_at=scan.created_at, wait_minutes=minutes)
                .where((RescanRequest.id == request.id) & RescanRequest.fulfilled_at.is_null()).execute())
    if not answered:
        return None
    audit.record("rescan_fulfilled", request, detail=f"scan #{scan.id}", actor=sender)
    live.changed(ticket.id, live.SCANS)
    return request


def reopen_for_failed(scan_id: int) -> int:
    """The repair refused or could not finish a scan that answered a request: that scan is no rescan
    the lab can use, so the request is open again. Returns how many requests were reopened."""
    reopened = 0
    with database.atomic():
        for request in RescanRequest.select().where(RescanRequest.fulfilled_by_scan == scan_id):
            RescanRequest.update(fulfilled_by_scan=None, fulfilled_at=None, wait_minutes=None).where(
                RescanRequest.id == request.id).execute()
            audit.record("rescan_reopened", request, detail=f"scan #{scan_id} failed its repair")
            reopened += 1
    return reopened


@dataclass
class RescanState:
    """What a scan panel shows about rescans: the scan's newest request, the reasons the repair
    suggests, and (staff) the form with its errors."""
    request: RescanRequest | None
    suggested: list[str]
    answers: RescanRequest | None = None  # the request this scan answered, if any
    form: object = None
    error: str | None = None

    @property
    def reasons_text(self) -> str:
        return reason_list(self.request.reason_codes) if self.request else ""

    @property
    def answered_reasons_text(self) -> str:
        return reason_list(self.answers.reason_codes) if self.answers else ""

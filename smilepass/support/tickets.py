"""Ticket rules: creation, the status workflow, replies. Views call these; they hold no HTTP."""
import datetime as dt
from dataclasses import dataclass
from typing import NamedTuple

from flask_babel import gettext
from peewee import fn

from .. import audit, settings
from ..db import database
from ..i18n import source_language
from ..live import events as live
from ..models import (
    RESOLUTIONS,
    Case,
    CaseDetails,
    Draft,
    Message,
    Status,
    StatusChange,
    Ticket,
    TicketCount,
    User,
    ticket_number,
    utcnow,
)
from ..search import index as search_index
from ..service import sla
from . import notices, teeth, warranty


class TransitionRefused(Exception):
    pass


class StatusConflict(TransitionRefused):
    """Someone else changed the status since the page was loaded: nothing was changed."""

    def __init__(self, message: str, current: Status):
        super().__init__(message)
        self.current = current


# Where staff may move a ticket from each status. Closed is final.
STAFF_TRANSITIONS = {
    Status.OPEN: [Status.IN_PROGRESS, Status.WAITING, Status.RESOLVED],
    Status.IN_PROGRESS: [Status.WAITING, Status.RESOLVED],
    Status.WAITING: [Status.IN_PROGRESS, Status.RESOLVED],
    Status.RESOLVED: [Status.CLOSED, Status.IN_PROGRESS],
    Status.CLOSED: [],
}
# A clinician may only reopen a resolved ticket of their own.
CLINICIAN_TRANSITIONS = {Status.RESOLVED: [Status.IN_PROGRESS]}


def allowed_transitions(ticket: Ticket, user: User) -> list[Status]:
    table = STAFF_TRANSITIONS if user.is_staff else CLINICIAN_TRANSITIONS
    return list(table.get(ticket.status_enum, []))


def create_ticket(requester: User, title: str, description: str, priority: int, category: str,
                  case: Case | None = None, details: dict | None = None, now: dt.datetime | None = None,
                  tried: str = "", client: str = "") -> Ticket:
    """A new request, optionally about a case (which the caller found among the cases the requester
    may see) with its structured details (CaseDetails columns), all in one transaction. `tried` is
    what the clinician already tried, `client` their browser and device (request_quality)."""
    if details and case is None:
        raise ValueError("case details need a case")
    now = now or utcnow()
    with database.atomic():
        due = sla.due_times(priority, now)
        service = sla.service_for(requester)
        ticket = Ticket.create(
            requester=requester,
            title=title.strip(),
            description=description.strip(),
            priority=priority,
            category=category,
            created_at=now,
            updated_at=now,
            response_due_at=due.response,
            resolution_due_at=due.resolution,
            next_due_at=due.response,
            tier=service.tier.value,
            assignee=service.account_manager,
            case=case.id if case is not None else None,
            tried=tried.strip(),
            client=client[:Ticket.client.max_length],
        )
        if details:
            CaseDetails.create(ticket=ticket.id, **details)
        search_index.reindex_tickets([ticket.id])
        TicketCount.bump(requester.id, ticket.status, 1)
        # The case by its id: its number, like anything else about the patient, stays out of the trail.
        audit.record("ticket_created", ticket, detail=f"case #{case.id}" if case is not None else "",
                     actor=requester)
        if service.account_manager is not None:
            audit.record("ticket_assign", ticket, actor=requester,
                         detail=f"automatic: {service.account_manager.email}, account manager of {service.clinic_name}")
    if service.account_manager is not None:
        notices.ticket_assigned(ticket, service.account_manager, None)  # by the clinic's plan, not a person
    return ticket


# Linking requests to cases -----------------------------------------------------------------------

SUGGESTION_LIMIT = 10


def find_case(user: User, case_number: str) -> Case | None:
    """The case with this number if the user may see it; another clinician's case is as absent as a
    missing one, so a typed number can never link someone else's case."""
    number = (case_number or "").strip()
    if not number:
        return None
    return Case.visible_to(user).where(Case.case_number == number).first()


def case_suggestions(user: User, typed: str) -> list[tuple[str, str]]:
    """(case number, patient name) of the user's cases whose number starts with, or whose patient's
    name contains, what was typed; the most recent cases when nothing was typed yet."""
    typed = (typed or "").strip()  # peewee escapes LIKE wildcards in startswith/contains
    query = Case.visible_to(user).select(Case.case_number, Case.patient_name)
    if typed:
        query = query.where(Case.case_number.startswith(typed) | Case.patient_name.contains(typed))
        query = query.order_by(Case.case_number)
    else:
        query = query.order_by(Case.created_at.desc(), Case.id.desc())
    return list(query.limit(SUGGESTION_LIMIT).tuples())


class CaseTicket(NamedTuple):
    """One line of a case page's ticket list."""
    id: int
    number: str
    title: str
    status: Status
    created_at: dt.datetime


def tickets_of_case(case_id: int, viewer: User) -> list[CaseTicket]:
    """The case's requests the viewer may see (a clinician: their own), newest first."""
    query = (Ticket.visible_to(viewer).select(Ticket.id, Ticket.title, Ticket.status, Ticket.created_at)
             .where(Ticket.case == case_id).order_by(Ticket.created_at.desc(), Ticket.id.desc()))
    return [CaseTicket(ticket_id, ticket_number(ticket_id), title, Status(status), created_at)
            for ticket_id, title, status, created_at in query.tuples()]


@dataclass
class CasePanel:
    """What the ticket page shows about the linked case."""
    case_number: str
    case_id: int | None  # set only when the viewer may open the case page
    details: CaseDetails | None
    teeth: str  # in the clinic's notation
    notation_label: str
    resolution: str
    warranty: warranty.WarrantyCheck | None  # only for warranty requests


RESOLUTION_LABELS = dict(RESOLUTIONS)


def case_panel(ticket: Ticket, viewer: User, today: dt.date | None = None) -> CasePanel | None:
    if ticket.case_id is None:
        return None
    case = Case.get_or_none(Case.id == ticket.case_id)
    if case is None:
        return None
    # The ticket's requester may no longer see the case (staff gave it to another clinician).
    visible = Case.get_visible(case.id, viewer) is not None
    details = CaseDetails.get_or_none(CaseDetails.ticket == ticket.id)
    notation = settings.get("tooth_notation")
    check = None
    if ticket.category == warranty.WARRANTY_CATEGORY:
        delivered, source = warranty.delivery_date(details.last_aligner_delivered if details else None, case.id)
        check = warranty.check(delivered, settings.get("warranty_days"), today or sla.clinic_today(), source)
    return CasePanel(
        case_number=case.case_number,
        case_id=case.id if visible else None,
        details=details,
        teeth=teeth.display(details.teeth, notation) if details else "",
        notation_label=teeth.NOTATION_LABELS.get(notation, notation),
        resolution=RESOLUTION_LABELS.get(details.preferred_resolution, "") if details else "",
        warranty=check,
    )


def change_status(ticket: Ticket, user: User, to_status: Status, now: dt.datetime | None = None,
                  expected: Status | None = None) -> StatusChange:
    """Move the ticket to to_status. expected: the status the user saw; if it is no longer the ticket's
    status (someone else moved it meanwhile), StatusConflict and nothing changes."""
    if expected is not None and ticket.status_enum != expected:
        raise _conflict(ticket)
    from_status = ticket.status_enum
    if to_status == from_status:
        raise TransitionRefused(gettext("The ticket is already %(status)s.", status=to_status.label))
    if to_status not in allowed_transitions(ticket, user):
        if from_status == Status.CLOSED:
            raise TransitionRefused(gettext("This ticket is closed. Open a new request if you need more help."))
        raise TransitionRefused(gettext("A ticket cannot move from %(old)s to %(new)s.", old=from_status.label,
                                            new=to_status.label))
    change = _move(ticket, user, to_status, now)
    live.send()  # committed: open pages hear it (a web request sends after its response)
    notices.ticket_status_changed(ticket, change, user)
    return change


def _conflict(ticket: Ticket) -> StatusConflict:
    current = Status(Ticket.select(Ticket.status).where(Ticket.id == ticket.id).scalar())
    return StatusConflict(gettext("Meanwhile someone else moved this ticket to %(status)s. Nothing was changed.",
                                  status=current.label), current)


def _move(ticket: Ticket, user: User, to_status: Status, now: dt.datetime | None = None) -> StatusChange:
    now = now or utcnow()
    with database.atomic():
        # Compare and set: the row moves only from the status this ticket object was read with, so of
        # two people moving it at the same moment the later one is told instead of overwriting.
        moved = (Ticket.update(status=to_status.value)
                 .where((Ticket.id == ticket.id) & (Ticket.status == ticket.status)).execute())
        if moved != 1:
            raise _conflict(ticket)
        change = StatusChange.create(ticket=ticket, actor=user, from_status=ticket.status, to_status=to_status,
                                     created_at=now)
        sla.status_changed(ticket, ticket.status_enum, to_status, now)
        TicketCount.bump(ticket.requester_id, ticket.status, -1)
        TicketCount.bump(ticket.requester_id, to_status.value, 1)
        ticket.status = to_status.value
        ticket.updated_at = change.created_at
        ticket.save(only=ticket.dirty_fields)  # only what changed: a concurrent write elsewhere stays
        live.changed(ticket.id, live.STATUS)
        if to_status == Status.CLOSED:
            Draft.forget_ticket(ticket.id)  # Closed is final: the reply box is gone for good
        with source_language():  # the audit trail is written in one language
            detail = f"{Status(change.from_status).label} -> {to_status.label}"
        audit.record("ticket_status", ticket, detail=detail, actor=user)
    return change


@dataclass
class ReplyResult:
    message: Message
    status_change: StatusChange | None


def add_reply(ticket: Ticket, user: User, body: str, internal: bool = False,
              now: dt.datetime | None = None) -> ReplyResult:
    if ticket.status_enum == Status.CLOSED:
        raise TransitionRefused(gettext("This ticket is closed. Open a new request if you need more help."))
    if internal and not user.is_staff:
        internal = False
    with database.atomic():
        message = Message.create(ticket=ticket, author=user, body=body.strip(), internal=internal,
                                 created_at=now or utcnow())
        search_index.reindex_tickets([ticket.id])  # an internal note goes into the staff-only column
        change = None
        if not internal:
            if user.is_staff and ticket.first_response_at is None:
                ticket.first_response_at = message.created_at
                sla.first_response(ticket, message.created_at)
            if user.is_staff and ticket.status_enum == Status.OPEN:
                change = _move(ticket, user, Status.IN_PROGRESS, message.created_at)
            elif not user.is_staff and ticket.status_enum == Status.WAITING:
                # The clinician answered what staff were waiting for.
                change = _move(ticket, user, Status.IN_PROGRESS, message.created_at)
        ticket.updated_at = message.created_at
        ticket.save(only=ticket.dirty_fields)  # only what changed: a concurrent status move stays
        live.changed(ticket.id, live.THREAD, staff_only=internal)
        audit.record("ticket_note" if internal else "ticket_reply", ticket, actor=user)
    live.send()  # committed: open pages hear it (a web request sends after its response)
    notices.ticket_replied(ticket, message, user)  # tells nobody about an internal note
    return ReplyResult(message, change)


def thread(ticket: Ticket, viewer: User) -> list:
    """The conversation after the original request: replies, (staff only) internal notes and
    status changes, in time order."""
    messages = Message.select(Message, User).join(User).where(Message.ticket == ticket)
    if not viewer.is_staff:
        messages = messages.where(Message.internal == False)  # noqa: E712
    changes = StatusChange.select(StatusChange, User).join(User).where(StatusChange.ticket == ticket)
    items = [("message", m.created_at, m.id, m) for m in messages] + [
        ("status", c.created_at, c.id, c) for c in changes
    ]
    items.sort(key=lambda item: (item[1], item[0] == "message", item[2]))
    return [(kind, obj) for kind, _, _, obj in items]


def by_message(attachments: list) -> dict[int, list]:
    """Screenshots sent with replies, by the reply's id (those of the original request have none)."""
    grouped: dict[int, list] = {}
    for attachment in attachments:
        if attachment.message_id is not None:
            grouped.setdefault(attachment.message_id, []).append(attachment)
    return grouped


# What the viewer has seen (live pages and conflicts) ---------------------------------------------

def version(ticket: Ticket, viewer: User) -> str:
    """The thread as this viewer sees it, in a few characters: the newest reply (a clinician: the newest
    public one) and the newest status change. A page sends back the version it was rendered with; a
    different one means something arrived since (internal notes never change a clinician's version)."""
    messages = Message.select(fn.MAX(Message.id)).where(Message.ticket == ticket.id)
    if not viewer.is_staff:
        messages = messages.where(Message.internal == False)  # noqa: E712
    changes = StatusChange.select(fn.MAX(StatusChange.id)).where(StatusChange.ticket == ticket.id)
    return f"{messages.scalar() or 0}.{changes.scalar() or 0}"


def parse_version(raw: str | None) -> tuple[int, int] | None:
    """(newest reply id, newest status change id) from version(); None for anything else."""
    message, dot, change = (raw or "").strip()[:40].partition(".")
    if not dot or not message.isdigit() or not change.isdigit():
        return None
    return int(message), int(change)


def arrived_since(ticket: Ticket, viewer: User, seen: tuple[int, int]) -> list:
    """The thread items (as thread() gives them) this viewer has not seen: newer than `seen`."""
    last_message, last_change = seen
    return [(kind, item) for kind, item in thread(ticket, viewer)
            if item.id > (last_message if kind == "message" else last_change)]


def last_mover(ticket: Ticket) -> str:
    """The name of who made the ticket's latest status change ("" if nobody did)."""
    change = (StatusChange.select(StatusChange, User).join(User).where(StatusChange.ticket == ticket.id)
              .order_by(StatusChange.id.desc()).first())
    return change.actor.display_name if change else ""


def ask_requester(ticket: Ticket, user: User, body: str, now: dt.datetime | None = None) -> ReplyResult:
    """A public staff reply that asks the requester for something (a rescan), after which the ticket
    waits on them: posted like any reply (first response, search, audit), and moved to Waiting on user
    through the status rules. Tells nobody: the caller sends one notice for the whole request instead of
    a reply's and a status change's."""
    if not user.is_staff:
        raise TransitionRefused(gettext("Only the support team can ask for this."))
    if ticket.status_enum == Status.CLOSED:
        raise TransitionRefused(gettext("This ticket is closed. Open a new request if you need more help."))
    if ticket.status_enum != Status.WAITING and Status.WAITING not in allowed_transitions(ticket, user):
        raise TransitionRefused(gettext("A ticket cannot move from %(old)s to %(new)s.",
                                        old=ticket.status_enum.label, new=Status.WAITING.label))
    with database.atomic():
        message = Message.create(ticket=ticket, author=user, body=body.strip(), internal=False,
                                 created_at=now or utcnow())
        search_index.reindex_tickets([ticket.id])
        if ticket.first_response_at is None:
            ticket.first_response_at = message.created_at
            sla.first_response(ticket, message.created_at)
        change = None
        if ticket.status_enum != Status.WAITING:
            change = _move(ticket, user, Status.WAITING, message.created_at)
        ticket.updated_at = message.created_at
        ticket.save(only=ticket.dirty_fields)
        live.changed(ticket.id, live.THREAD)
        audit.record("ticket_reply", ticket, actor=user)
    live.send()
    return ReplyResult(message, change)

"""Ticket rules: creation, the status workflow, replies. Views call these; they hold no HTTP."""
from dataclasses import dataclass

from . import audit, sla
from .db import database
from .models import Message, Status, StatusChange, Ticket, TicketCount, User, utcnow


class TransitionRefused(Exception):
    pass


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


def create_ticket(requester: User, title: str, description: str, priority: int, category: str) -> Ticket:
    now = utcnow()
    with database.atomic():
        ticket = Ticket.create(
            requester=requester,
            title=title.strip(),
            description=description.strip(),
            priority=priority,
            category=category,
            created_at=now,
            updated_at=now,
            response_due_at=sla.first_response_due(priority, now),
        )
        TicketCount.bump(requester.id, ticket.status, 1)
        audit.record("ticket_created", ticket, actor=requester)
    return ticket


def change_status(ticket: Ticket, user: User, to_status: Status) -> StatusChange:
    from_status = ticket.status_enum
    if to_status == from_status:
        raise TransitionRefused(f"The ticket is already {to_status.label}.")
    if to_status not in allowed_transitions(ticket, user):
        if from_status == Status.CLOSED:
            raise TransitionRefused("This ticket is closed. Open a new request if you need more help.")
        raise TransitionRefused(f"A ticket cannot move from {from_status.label} to {to_status.label}.")
    return _move(ticket, user, to_status)


def _move(ticket: Ticket, user: User, to_status: Status) -> StatusChange:
    with database.atomic():
        change = StatusChange.create(ticket=ticket, actor=user, from_status=ticket.status, to_status=to_status)
        TicketCount.bump(ticket.requester_id, ticket.status, -1)
        TicketCount.bump(ticket.requester_id, to_status.value, 1)
        ticket.status = to_status.value
        ticket.updated_at = change.created_at
        ticket.save()
        audit.record("ticket_status", ticket, detail=f"{Status(change.from_status).label} -> {to_status.label}",
                     actor=user)
    return change


@dataclass
class ReplyResult:
    message: Message
    status_change: StatusChange | None


def add_reply(ticket: Ticket, user: User, body: str, internal: bool = False) -> ReplyResult:
    if ticket.status_enum == Status.CLOSED:
        raise TransitionRefused("This ticket is closed. Open a new request if you need more help.")
    if internal and not user.is_staff:
        internal = False
    with database.atomic():
        message = Message.create(ticket=ticket, author=user, body=body.strip(), internal=internal)
        change = None
        if not internal:
            if user.is_staff and ticket.first_response_at is None:
                ticket.first_response_at = message.created_at
            if user.is_staff and ticket.status_enum == Status.OPEN:
                change = _move(ticket, user, Status.IN_PROGRESS)
            elif not user.is_staff and ticket.status_enum == Status.WAITING:
                # The clinician answered what staff were waiting for.
                change = _move(ticket, user, Status.IN_PROGRESS)
        ticket.updated_at = message.created_at
        ticket.save()
        audit.record("ticket_note" if internal else "ticket_reply", ticket, actor=user)
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

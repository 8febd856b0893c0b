"""Who works a ticket, and changes to many tickets at once from the queue. Views call these."""
from dataclasses import dataclass, field
from typing import NamedTuple

from flask_babel import gettext

from .. import audit
from ..db import database, prepared
from ..live import events as live
from ..models import Role, Status, Ticket, User
from ..params import parse_int
from ..support import tickets
from ..support.notices import ticket_assigned

STAFF_ROLES = [Role.SUPPORT.value, Role.ADMIN.value]
# Where the queue's bulk "Set status" may send tickets (the workflow still decides per ticket).
BULK_STATUSES = [Status.IN_PROGRESS, Status.WAITING, Status.RESOLVED, Status.CLOSED]
BULK_MAX = 100


class AssignmentRefused(ValueError):
    """The message is for the staff member."""


class StaffMember(NamedTuple):
    """An active staff member as the assignment lists offer them (display_name: User.display_name)."""
    id: int
    display_name: str


def active_staff() -> list[StaffMember]:
    # On every queue view (its bulk form) and staff's ticket pages: the SQL is built once (see db.prepared) and
    # its rows read as plain tuples (as model objects they cost twice the statement).
    rows = prepared("active-staff", lambda p: User.select(User.id, User.name, User.email)
                    .where(User.role.in_(STAFF_ROLES) & User.is_active).order_by(User.name, User.email), raw_rows=True)
    return [StaffMember(user_id, name or email) for user_id, name, email in rows]


def find_assignee(user_id) -> User | None:
    """The active staff member with this id (a form's value), else AssignmentRefused; "" or
    "none" means nobody (unassign)."""
    if user_id in (None, "", "none"):
        return None
    user_id = parse_int(str(user_id))
    if user_id is None:
        raise AssignmentRefused(gettext("Choose a staff member."))
    user = User.get_or_none((User.id == user_id) & User.role.in_(STAFF_ROLES) & User.is_active)
    if user is None:
        raise AssignmentRefused(gettext("Choose an active staff member."))
    return user


def _label(user: User | None) -> str:
    return user.display_name if user is not None else "Unassigned"


def assign(ticket: Ticket, assignee: User | None, actor: User) -> None:
    """Give the ticket to assignee (None: take it back to the unassigned queue); audited, and the
    new assignee is told once the change is committed."""
    if ticket.status_enum == Status.CLOSED:
        raise AssignmentRefused(gettext("%(number)s is closed.", number=ticket.number))
    new_id = assignee.id if assignee is not None else None
    if ticket.assignee_id == new_id:
        raise AssignmentRefused(gettext("%(number)s is already assigned to %(name)s.", number=ticket.number,
                                        name=assignee.display_name)
                                if assignee is not None
                                else gettext("%(number)s is not assigned to anyone.", number=ticket.number))
    previous = User.get_or_none(User.id == ticket.assignee_id) if ticket.assignee_id else None
    with database.atomic():
        ticket.assignee = new_id
        ticket.save(only=[Ticket.assignee])
        audit.record("ticket_assign", ticket, detail=f"{_label(previous)} → {_label(assignee)}", actor=actor)
        live.changed(ticket.id, live.ASSIGNMENT, staff_only=True)
    live.send()
    ticket_assigned(ticket, assignee, actor)


@dataclass
class BulkResult:
    done: list[str] = field(default_factory=list)  # ticket numbers changed
    refused: list[str] = field(default_factory=list)  # "SP-000012: why", one per ticket left as it was

    @property
    def summary(self) -> str:
        changed = gettext("%(count)s changed", count=len(self.done))
        if not self.refused:
            return changed
        return changed + ", " + gettext("%(count)s left as they were", count=len(self.refused))


def parse_ticket_ids(values: list[str]) -> list[int]:
    ids = sorted({parse_int(v) for v in values if parse_int(v) is not None})
    if not ids:
        raise AssignmentRefused(gettext("Select at least one ticket."))
    if len(ids) > BULK_MAX:
        raise AssignmentRefused(gettext("Select at most %(count)s tickets at a time.", count=BULK_MAX))
    return ids


def _each_ticket(ticket_ids: list[int], result: BulkResult):
    found = {t.id: t for t in Ticket.select().where(Ticket.id.in_(ticket_ids))}
    for ticket_id in ticket_ids:
        ticket = found.get(ticket_id)
        if ticket is None:
            result.refused.append(f"Ticket {ticket_id} no longer exists.")
        else:
            yield ticket


def bulk_assign(ticket_ids: list[int], assignee: User | None, actor: User) -> BulkResult:
    """Each ticket on its own: one refusal (already assigned, closed) leaves the others changed."""
    result = BulkResult()
    for ticket in _each_ticket(ticket_ids, result):
        try:
            assign(ticket, assignee, actor)
        except AssignmentRefused as exc:
            result.refused.append(str(exc))
        else:
            result.done.append(ticket.number)
    return result


def bulk_status(ticket_ids: list[int], target: Status, actor: User) -> BulkResult:
    """Through the same workflow rules as the ticket page (audit, SLA pause and resume, mails); a
    ticket the workflow refuses stays exactly as it was."""
    result = BulkResult()
    for ticket in _each_ticket(ticket_ids, result):
        try:
            tickets.change_status(ticket, actor, target)
        except tickets.TransitionRefused as exc:
            result.refused.append(f"{ticket.number}: {exc}")
        else:
            result.done.append(ticket.number)
    return result

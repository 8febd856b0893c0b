"""Warnings to staff about service-level deadlines that pass soon (the SLA job)."""
import datetime as dt

import peewee as pw

from .. import settings
from ..i18n import lazy_gettext
from ..models import EscalationRole, Notification, StatusChange, Ticket, User, utcnow
from ..notifications.inbox import tell
from . import sla


def sla_warning_window() -> dt.timedelta:
    return dt.timedelta(minutes=settings.get("sla_warning_minutes"))


def sla_warnings(now=None, within: dt.timedelta | None = None) -> int:
    """Warn about running deadlines that pass soon, once per ticket and deadline: a deadline is new
    when the ticket was created, first answered or changed status (that is when the clock restarts,
    pauses or resumes), so a warning written after the latest of these already covered it.
    Recipients: the assignee; else the escalation owner; else every supervisor. Returns how many
    tickets were warned about. Run periodically (the SLA job)."""
    now = now or utcnow()
    within = within or sla_warning_window()
    warned = 0
    for ticket in sla.due_soon(now, within):
        last_change = (StatusChange.select(pw.fn.MAX(StatusChange.created_at))
                       .where(StatusChange.ticket == ticket.id).scalar())
        clock_set = max(t for t in (ticket.created_at, ticket.first_response_at, _as_datetime(last_change)) if t)
        already = (Notification.select(Notification.id)
                   .where((Notification.ticket == ticket.id) & (Notification.kind == "sla_warning")
                          & (Notification.created_at >= clock_set)).exists())
        if already:
            continue
        recipients = _sla_recipients(ticket)
        which = "first response" if ticket.first_response_at is None else "resolution"
        due = f"{ticket.next_due_at:%Y-%m-%d %H:%M} UTC"
        # Each mail in its recipient's language (lazy strings; notifications/outbox.notify).
        if ticket.first_response_at is None:
            subject = lazy_gettext("First response due by %(due)s", due=due)
            line = lazy_gettext("Request %(number)s reaches its first response deadline at %(due)s.",
                                number=ticket.number, due=due)
        else:
            subject = lazy_gettext("Resolution due by %(due)s", due=due)
            line = lazy_gettext("Request %(number)s reaches its resolution deadline at %(due)s.",
                                number=ticket.number, due=due)
        if tell(recipients, ticket, "sla_warning", None,
                 text=f"{ticket.number}: the {which} deadline ({due}) passes soon: {ticket.title}",
                 subject=subject, lines=[line]):
            warned += 1
    return warned


def _sla_recipients(ticket: Ticket) -> list[User]:
    for user_id in (ticket.assignee_id, ticket.escalation_owner_id):
        if user_id is not None:
            user = User.get_or_none(User.id == user_id)
            if user is not None and user.is_active:
                return [user]
    return User.holding(EscalationRole.SUPERVISOR)


def _as_datetime(value):
    """MAX() over a timestamp comes back as text on SQLite."""
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return value

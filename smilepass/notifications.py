"""Notifications: the events a user can be told about, each user's email choices (My Account → Email
notifications), the in-app notifications (the bell in the header) and the mails themselves.

A notification is an outbox row written in the same transaction as the change it reports, so a
change that rolls back mails nobody and a committed change is never without its mail. The worker
is told about the row only after that transaction commits (`hand_over`): a job started earlier
would look for a row it cannot see yet. Anything not handed over (Redis down, a caller that forgot)
is picked up by the outbox sweep within minutes.

Mails carry the minimum: a case number identifies the case; never a patient's name or birth date."""
import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Callable

import peewee as pw
from flask import current_app, has_app_context

from . import audit
from .db import database
from .i18n import in_english, lazy_gettext
from .mail import enqueue_send
from .models import EscalationRole, Notification, OutboxMail, Role, Status, StatusChange, Ticket, User, utcnow
from .cases.models import Case, Shipment, ShipmentState, UserPreference

log = logging.getLogger(__name__)

CLINICIAN, STAFF, ALL = "clinician", "staff", "all"
PREFERENCE_PREFIX = "notify:"  # UserPreference keys are shared with other per-user choices
ON, OFF = "on", "off"


@dataclass(frozen=True)
class Event:
    key: str
    label: str
    audience: str  # CLINICIAN, STAFF or ALL
    default: bool

    def applies_to(self, user: User) -> bool:
        if self.audience == ALL:
            return True
        if self.audience == STAFF:
            return user.is_staff
        return user.role == Role.CLINICIAN.value

    @property
    def preference_key(self) -> str:
        return PREFERENCE_PREFIX + self.key


EVENTS = {event.key: event for event in (
    Event("shipment_updates", lazy_gettext("My patients' shipments change state or get tracking"), CLINICIAN, True),
    Event("ticket_replies", lazy_gettext("Support replies to my request"), CLINICIAN, True),
    Event("ticket_status", lazy_gettext("The status of my request changes"), CLINICIAN, True),
    Event("ticket_assigned", lazy_gettext("A request is assigned to me"), STAFF, True),
    Event("ticket_escalated", lazy_gettext("A request is escalated to me"), STAFF, True),
    Event("sla_warning", lazy_gettext("A request I look after is about to miss its service level"), STAFF, True),
)}


def events_for(user: User) -> list[Event]:
    return [event for event in EVENTS.values() if event.applies_to(user)]


def choices(user: User) -> dict[str, bool]:
    """This user's choice for every event that applies to them (the default where they made none)."""
    events = events_for(user)
    stored = {row.key: row.value for row in UserPreference.select().where(
        (UserPreference.user == user.id) & UserPreference.key.in_([e.preference_key for e in events]))}
    return {e.key: stored[e.preference_key] == ON if e.preference_key in stored else e.default for e in events}


def wants(user: User, event_key: str) -> bool:
    event = EVENTS[event_key]
    if not user.is_active or not event.applies_to(user):
        return False
    value = UserPreference.get_value(user, event.preference_key)
    return event.default if value is None else value == ON


def save_choices(user: User, chosen: dict[str, bool]) -> list[str]:
    """Store the user's choices for the events that apply to them; audited. Returns the keys changed."""
    before = choices(user)
    changed = [key for key, value in before.items() if key in chosen and chosen[key] != value]
    if changed:
        with database.atomic():
            for key in changed:
                UserPreference.set_value(user, EVENTS[key].preference_key, ON if chosen[key] else OFF)
            detail = ", ".join(f"{key}: {'on' if before[key] else 'off'} -> {'on' if chosen[key] else 'off'}"
                               for key in changed)
            audit.record("notification_preferences", user, detail, actor=user)
    return changed


# Sending ---------------------------------------------------------------------------------------

# Outbox rows written inside a transaction that has not committed yet, per thread (each thread has
# its own database connection and so its own transaction).
_waiting = threading.local()


@in_english
def notify(event_key: str, recipient: User, compose: Callable[[], tuple[str, str]],
           actor: User | None = None) -> OutboxMail | None:
    """Write a mail to the outbox if the recipient wants this event, is active, and did not cause
    it themselves; `compose()` gives its subject and body, and runs only then. Call this inside the
    change's transaction, then `hand_over()` after it."""
    if actor is not None and actor.id == recipient.id:
        return None
    if not wants(recipient, event_key):
        return None
    if not has_app_context():
        # Links need the app's BASE_URL. The web app, its CLI and the worker always have one; a bare
        # script calling the model functions does not, and writes no mail.
        log.warning("no application context: %r mail to user %s not written", event_key, recipient.id)
        return None
    subject, body = compose()
    footer = (f"\n\nYou get this because \"{EVENTS[event_key].label}\" is on in My Account → Email notifications:\n"
              f"{absolute_url('account.notifications')}\n")
    mail = OutboxMail.create(to_addr=recipient.email, subject=subject[:200], body=body + footer)
    if not hasattr(_waiting, "ids"):
        _waiting.ids = []
    _waiting.ids.append(mail.id)
    return mail


def hand_over() -> int:
    """Give the worker the mails written so far, once no transaction is open any more (inside one,
    this does nothing: the caller that opened it calls again after it). Without SMTP they wait in
    the outbox for an admin, like every other mail. Returns how many jobs were queued."""
    if database.in_transaction() or not has_app_context():
        return 0
    ids, _waiting.ids = getattr(_waiting, "ids", []), []
    if not ids or not current_app.config["SMTP_HOST"]:
        return 0
    # Rows of a transaction that rolled back are gone; only existing, unsent ones go to the worker.
    unsent = [row.id for row in OutboxMail.select(OutboxMail.id)
              .where(OutboxMail.id.in_(ids) & OutboxMail.sent_at.is_null()).order_by(OutboxMail.id)]
    return sum(1 for mail_id in unsent if enqueue_send(mail_id))


def absolute_url(endpoint: str, **values) -> str:
    """A link for a mail. Built from the URL map rather than the request, so a worker or a CLI
    command (no request) writes the same link as a web request: BASE_URL is the public root."""
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return current_app.config["BASE_URL"].rstrip("/") + path


# Shipments -------------------------------------------------------------------------------------

SHIPMENT_CHANGES = {
    "created": "A new shipment was created and is In Production.",
    "advanced": "The shipment is now {state}.",
    "carrier_eta": "The carrier's delivery date changed.",
    "reopened": "An administrator took the shipment back from Delivered to In Transit.",
}


@in_english
def shipment_changed(shipment: Shipment, actor: User | None, change: str) -> OutboxMail | None:
    """Tell the case's treating clinician about a shipment change (see SHIPMENT_CHANGES)."""
    case = Case.select(Case.id, Case.case_number, Case.clinician).where(Case.id == shipment.case_id).get()
    clinician = User.get_by_id(case.clinician_id)
    state = ShipmentState(shipment.state)

    def compose():
        return f"Case {case.case_number}: shipment {state.label}", _shipment_body(shipment, case, state, change)
    return notify("shipment_updates", clinician, compose, actor)


def _shipment_body(shipment: Shipment, case: Case, state: ShipmentState, change: str) -> str:
    from .cases.shipments import estimate  # shipments.py calls into this module

    lines = [f"Shipment update for case {case.case_number}.", "", SHIPMENT_CHANGES[change].format(state=state.label), "",
             f"Phases: {shipment.phases}", f"State: {state.label}"]
    if shipment.carrier:
        lines += [f"Carrier: {shipment.carrier}", f"Tracking number: {shipment.tracking_number}"]
    if state is ShipmentState.DELIVERED and shipment.delivered_at:
        lines.append(f"Delivered: {shipment.delivered_at:%Y-%m-%d}")
    else:
        kind, eta = estimate(shipment)
        if kind == "carrier":
            lines.append(f"Expected delivery: {eta:%Y-%m-%d} (carrier's date)")
        else:
            lines.append(f"Expected delivery: between {eta[0]:%Y-%m-%d} and {eta[1]:%Y-%m-%d} (estimate)")
    lines += ["", f"Case page (sign-in needed): {absolute_url('cases.detail', case_id=case.id)}"]
    return "\n".join(lines)


# Tickets ---------------------------------------------------------------------------------------
#
# Every ticket event gives the recipient an in-app notification (private, cheap, always) and, if
# their choice allows, a mail. Neither ever goes to the person who caused the event. Mails name the
# request by its number only: a title is free text and may carry a patient's name. Nothing written
# here comes from an internal note. Call these after the change (inside or after its transaction);
# each hands its mails to the worker itself once no transaction is open, otherwise the caller that
# holds the transaction calls `hand_over()` after it commits.

NOTIFICATION_TEXT_MAX = 300


@in_english
def ticket_assigned(ticket: Ticket, assignee: User | None, actor: User | None) -> bool:
    """Tell a staff member a request is now theirs. Returns whether anyone was told."""
    if assignee is None:
        return False
    by = f" by {actor.display_name}" if actor is not None else ""
    return _tell([assignee], ticket, "ticket_assigned", actor,
                 text=f"{ticket.number} was assigned to you{by}: {ticket.title}",
                 subject=f"{ticket.number} is assigned to you",
                 lines=[f"Request {ticket.number} was assigned to you{by}."])


@in_english
def ticket_escalated(ticket: Ticket, owner: User | None, actor: User | None, reason: str) -> bool:
    """Tell whoever now owns the escalated request; with no named owner, everyone who holds the
    escalation role of the ticket's level. The reason is staff-only: in-app, never in a mail."""
    role = EscalationRole.for_level(ticket.escalation_level)
    recipients = [owner] if owner is not None else _holders(role)
    level = role.label if role is not None else f"level {ticket.escalation_level}"
    by = f" by {actor.display_name}" if actor is not None else " automatically"
    text = f"{ticket.number} was escalated to you ({level}){by}"
    if reason.strip():
        text += f": {reason.strip()}"
    return _tell(recipients, ticket, "ticket_escalated", actor, text=text,
                 subject=f"{ticket.number} is escalated to you",
                 lines=[f"Request {ticket.number} was escalated to you ({level}){by}.",
                        "The reason is on the request page."])


def _holders(role: EscalationRole | None) -> list[User]:
    if role is None:
        return []
    return list(User.select().where((User.escalation_role == role.value) & (User.is_active == True)  # noqa: E712
                                    & (User.role != Role.CLINICIAN.value)).order_by(User.id))


def _tell(recipients: list[User], ticket: Ticket, event_key: str, actor: User | None, text: str,
          subject: str, lines: list[str]) -> bool:
    """One in-app notification per recipient (except the actor) and a mail to those who want it."""
    told = False
    link = None
    with database.atomic():
        for user in recipients:
            if actor is not None and user.id == actor.id or not user.is_active:
                continue
            Notification.create(user=user.id, ticket=ticket.id, kind=event_key, text=text[:NOTIFICATION_TEXT_MAX])
            told = True

            def compose():
                nonlocal link
                link = link or absolute_url("support.detail", ticket_id=ticket.id)
                return subject, "\n".join(lines + ["", f"Request page (sign-in needed): {link}"])
            notify(event_key, user, compose, actor)
    hand_over()
    return told


@in_english
def ticket_replied(ticket: Ticket, message, actor: User) -> bool:
    """Tell the requester about a public staff reply, quoting it (it is what they will read on the
    page anyway). Internal notes and the requester's own replies tell nobody."""
    if message.internal or not actor.is_staff:
        return False
    requester = User.get_by_id(ticket.requester_id)
    return _tell([requester], ticket, "ticket_replies", actor,
                 text=f"{actor.display_name} replied on {ticket.number}: {ticket.title}",
                 subject=f"{ticket.number}: new reply from SmilePass support",
                 lines=[f"{actor.display_name} replied on your request {ticket.number}:", "",
                        *("> " + line for line in message.body.splitlines()), "",
                        f"Status: {ticket.status_enum.label}"])


@in_english
def ticket_status_changed(ticket: Ticket, change, actor: User) -> bool:
    """Tell the requester their request moved (a reopen by themselves tells nobody)."""
    requester = User.get_by_id(ticket.requester_id)
    before, after = Status(change.from_status).label, Status(change.to_status).label
    return _tell([requester], ticket, "ticket_status", actor,
                 text=f"{ticket.number} is now {after} (was {before}): {ticket.title}",
                 subject=f"{ticket.number} is now {after}",
                 lines=[f"Your request {ticket.number} moved from {before} to {after}."])




def sla_warning_window() -> dt.timedelta:
    from . import settings

    return dt.timedelta(minutes=settings.get("sla_warning_minutes"))


def sla_warnings(now=None, within: dt.timedelta | None = None) -> int:
    """Warn about running deadlines that pass soon, once per ticket and deadline: a deadline is new
    when the ticket was created, first answered or changed status (that is when the clock restarts,
    pauses or resumes), so a warning written after the latest of these already covered it.
    Recipients: the assignee; else the escalation owner; else every supervisor. Returns how many
    tickets were warned about. Run periodically (the SLA job)."""
    from . import sla

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
        if _tell(recipients, ticket, "sla_warning", None,
                 text=f"{ticket.number}: the {which} deadline ({due}) passes soon: {ticket.title}",
                 subject=f"{ticket.number}: {which} due by {due}",
                 lines=[f"Request {ticket.number} reaches its {which} deadline at {due}."]):
            warned += 1
    return warned


def _sla_recipients(ticket: Ticket) -> list[User]:
    for user_id in (ticket.assignee_id, ticket.escalation_owner_id):
        if user_id is not None:
            user = User.get_or_none(User.id == user_id)
            if user is not None and user.is_active:
                return [user]
    return _holders(EscalationRole.SUPERVISOR)


def _as_datetime(value):
    """MAX() over a timestamp comes back as text on SQLite."""
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return value


# In-app notifications --------------------------------------------------------------------------

def unread_count(user: User) -> int:
    """The header badge: on every page, so one prepared COUNT on the (user, read_at, id) index."""
    from .db import prepared

    def build(p):
        return (Notification.select(pw.fn.COUNT(Notification.id))
                .where((Notification.user == p.user) & Notification.read_at.is_null()))
    rows = prepared("unread-notifications", build, raw_rows=True, user=user.id)
    return int(rows[0][0]) if rows else 0


def inbox(user: User, limit: int = 50) -> list[Notification]:
    """The user's newest notifications first (unread and read)."""
    return list(Notification.select().where(Notification.user == user.id)
                .order_by(Notification.id.desc()).limit(limit))


def mark_read(user: User, notification_id: int) -> Notification | None:
    """Mark one of the user's notifications read; None when it is not theirs (or does not exist)."""
    note = Notification.get_or_none((Notification.id == notification_id) & (Notification.user == user.id))
    if note is not None and note.read_at is None:
        with database.atomic():
            note.read_at = utcnow()
            note.save(only=[Notification.read_at])
            audit.record("notification_read", note, actor=user)
    return note


def mark_all_read(user: User) -> int:
    with database.atomic():
        n = (Notification.update(read_at=utcnow())
             .where((Notification.user == user.id) & Notification.read_at.is_null()).execute())
        if n:
            audit.record("notifications_read", user, f"{n} marked read", actor=user)
    return n

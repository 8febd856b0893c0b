"""Email notifications: the events a user can be told about, each user's choices (My Account → Email
notifications), and the mails themselves.

A notification is an outbox row written in the same transaction as the change it reports, so a
change that rolls back mails nobody and a committed change is never without its mail. The worker
is told about the row only after that transaction commits (`hand_over`): a job started earlier
would look for a row it cannot see yet. Anything not handed over (Redis down, a caller that forgot)
is picked up by the outbox sweep within minutes.

Mails carry the minimum: a case number identifies the case; never a patient's name or birth date."""
import logging
import threading
from dataclasses import dataclass
from typing import Callable

from flask import current_app, has_app_context

from . import audit
from .db import database
from .mail import enqueue_send
from .models import OutboxMail, Role, User
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
    Event("shipment_updates", "My patients' shipments change state or get tracking", CLINICIAN, True),
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

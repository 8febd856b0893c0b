"""The events a user can be told about and each user's email choices for them (My Account → Email
notifications)."""
from dataclasses import dataclass

from .. import audit
from ..db import database
from ..i18n import lazy_gettext
from ..models import Role, User, UserPreference

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
    Event("rescan_requested", lazy_gettext("Support asks me to rescan a scan"), CLINICIAN, True),
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

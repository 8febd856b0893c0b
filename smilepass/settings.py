"""Clinic-wide settings that admins change at run time (Admin → Clinic settings).

Each setting has a type, a default and a check; the database only holds values that differ from
the default. Reads go to the database each time: several web and worker processes share it, and a
per-process cache would keep serving an old value after an admin changes it."""
import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_babel import gettext

from . import audit
from .db import database, prepared
from .i18n import lazy_gettext
from .models import PRIORITY_LABELS, Priority, Setting, User, utcnow


class SettingRefused(ValueError):
    pass


@dataclass(frozen=True)
class Definition:
    label: str
    default: object
    parse: Callable[[str], object]  # text from the form or the database → value, or SettingRefused
    help: str = ""
    choices: tuple = ()


def _choice(*allowed):
    def parse(text):
        if text not in allowed:
            raise SettingRefused(gettext("Choose one of: %(choices)s.", choices=", ".join(allowed)))
        return text
    return parse


def _int_between(low, high):
    def parse(text):
        try:
            value = int(str(text).strip())
        except ValueError:
            raise SettingRefused(gettext("Enter a whole number.")) from None
        if not low <= value <= high:
            raise SettingRefused(gettext("Enter a number from %(low)s to %(high)s.", low=low, high=high))
        return value
    return parse


def _time_zone(text):
    name = str(text).strip()
    try:
        if not name or name != name.strip("/") or ".." in name:
            raise ValueError  # zoneinfo would refuse these with a less helpful error
        ZoneInfo(name)
    except (ValueError, OSError, ZoneInfoNotFoundError):
        raise SettingRefused(gettext("Enter a time zone name such as Europe/Berlin or America/New_York.")) from None
    return name


def _clock_time(text, what):
    try:
        return dt.datetime.strptime(text.strip(), "%H:%M").time()
    except ValueError:
        message = (gettext("Give the opening time as HH:MM, e.g. 08:00.") if what == "opening"
                   else gettext("Give the closing time as HH:MM, e.g. 08:00."))
        raise SettingRefused(message) from None


@dataclass(frozen=True)
class OpeningHours:
    """Daily business hours; written as "08:00-17:00" so that one field can check closes > opens."""
    opens: dt.time
    closes: dt.time

    def __str__(self):
        return f"{self.opens:%H:%M}-{self.closes:%H:%M}"


def _opening_hours(text):
    parts = str(text).replace("–", "-").split("-")
    if len(parts) != 2:
        raise SettingRefused(gettext("Give opening and closing time as HH:MM-HH:MM, e.g. 08:00-17:00."))
    hours = OpeningHours(_clock_time(parts[0], "opening"), _clock_time(parts[1], "closing"))
    if hours.closes <= hours.opens:
        raise SettingRefused(gettext("The closing time must be after the opening time."))
    return hours


DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class BusinessDays:
    """Weekdays the clinic works (Monday = 0); written as "Mon-Fri" or "Mon, Wed, Sat"."""
    weekdays: frozenset

    def __str__(self):
        days = sorted(self.weekdays)
        if len(days) > 2 and days == list(range(days[0], days[-1] + 1)):
            return f"{DAY_NAMES[days[0]]}-{DAY_NAMES[days[-1]]}"
        return ", ".join(DAY_NAMES[day] for day in days)


FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _day(name):
    """A weekday from its three-letter or full English name, in any case."""
    key = name.strip().lower()
    for number, full in enumerate(FULL_DAY_NAMES):
        if key in (full, full[:3]):
            return number
    raise SettingRefused(gettext("Unknown day %(day)r: use Mon, Tue, Wed, Thu, Fri, Sat, Sun.", day=name.strip()))


def _business_days(text):
    days = set()
    for part in str(text).replace("–", "-").split(","):
        if not part.strip():
            continue
        if "-" in part:
            first, _, last = part.partition("-")
            start, end = _day(first), _day(last)
            if end < start:
                raise SettingRefused(gettext("Write the range %(range)r from the earlier day to the later one.",
                                             range=part.strip()))
            days.update(range(start, end + 1))
        else:
            days.add(_day(part))
    if not days:
        raise SettingRefused(gettext("Name at least one business day, e.g. Mon-Fri."))
    return BusinessDays(frozenset(days))


def _default_time_zone():
    name = os.environ.get("SMILEPASS_TIME_ZONE") or "UTC"
    try:
        return _time_zone(name)
    except SettingRefused:
        raise RuntimeError(f"SMILEPASS_TIME_ZONE={name!r} is not a known time zone (e.g. Europe/Berlin).") from None


TOOTH_NOTATIONS = (("fdi", lazy_gettext("FDI (two digits: 11–48)")), ("universal", lazy_gettext("Universal (1–32)")))

DEFINITIONS = {
    "tooth_notation": Definition(
        lazy_gettext("Tooth numbering"), "fdi", _choice(*(key for key, _ in TOOTH_NOTATIONS)),
        lazy_gettext("How tooth numbers are shown across SmilePass. Clinicians may type either notation."),
        TOOTH_NOTATIONS),
    "warranty_days": Definition(
        lazy_gettext("Warranty window (days)"), 90, _int_between(1, 3650),
        lazy_gettext("A replacement request is inside the warranty when the aligner was delivered this many days "
                     "ago or less.")),
    "transit_days": Definition(
        lazy_gettext("Transit time (business days)"), 2, _int_between(0, 60),
        lazy_gettext("How many business days a parcel usually travels. Delivery estimates are the shipping day "
                     "plus this, give or take two business days.")),
    # Service levels (sla.py). Targets count business hours only: the hours and days below, minus
    # the clinic's holidays (Admin → Holidays), in the clinic's time zone.
    "time_zone": Definition(
        lazy_gettext("Clinic time zone"), _default_time_zone(), _time_zone,
        lazy_gettext("Business hours, holidays and due times are in this time zone (an IANA name such as "
                     "Europe/Berlin).")),
    "business_hours": Definition(
        lazy_gettext("Business hours"), OpeningHours(dt.time(8, 0), dt.time(17, 0)), _opening_hours,
        lazy_gettext("Opening and closing time on business days, as HH:MM-HH:MM.")),
    "business_days": Definition(
        lazy_gettext("Business days"), BusinessDays(frozenset(range(5))), _business_days,
        lazy_gettext("The days service-level clocks run: a range such as Mon-Fri, or days such as Mon, Tue, Thu.")),
}

# First-response and resolution targets per priority, in business hours.
SLA_TARGET_DEFAULTS = {"urgent": (4, 24), "high": (8, 48), "normal": (24, 120), "low": (72, 240)}
for _name, (_response, _resolution) in SLA_TARGET_DEFAULTS.items():
    _priority = PRIORITY_LABELS[Priority[_name.upper()]]
    DEFINITIONS[f"response_hours_{_name}"] = Definition(
        lazy_gettext("First response target, %(priority)s (business hours)", priority=_priority), _response,
        _int_between(1, 2000),
        lazy_gettext("Support should reply for the first time to %(priority)s requests within this many business "
                     "hours.", priority=_priority))
    DEFINITIONS[f"resolution_hours_{_name}"] = Definition(
        lazy_gettext("Resolution target, %(priority)s (business hours)", priority=_priority), _resolution,
        _int_between(1, 5000),
        lazy_gettext("%(priority)s requests should be resolved within this many business hours, not counting time "
                     "waiting on the user.", priority=_priority))
del _name, _response, _resolution, _priority
DEFINITIONS["sla_warning_minutes"] = Definition(
    lazy_gettext("Warn before a target is missed (business minutes)"), 60, _int_between(5, 1440),
    lazy_gettext("Staff are told when a ticket's running target is due within this much business time."))
# Patient-data retention (stewardship/retention.py, run hourly by rq cron).
DEFINITIONS["scan_retention_months"] = Definition(
    lazy_gettext("Purge scans of delivered cases after (months)"), 0, _int_between(0, 600),
    lazy_gettext("Scans (original, repaired, previews) of a case whose latest shipment was delivered this many "
                 "months ago are deleted for good. 0 keeps them forever."))

# Two-factor sign-in (twofa): which roles must use a second factor. A fresh install's default comes from
# SMILEPASS_2FA_DEFAULT_POLICY (roles separated by commas; "none" for none), else support and admins.
TWOFA_CHOICES = (("required", lazy_gettext("Required")), ("optional", lazy_gettext("Optional")))


def _default_twofa_roles() -> set[str]:
    text = os.environ.get("SMILEPASS_2FA_DEFAULT_POLICY")
    if text is None:
        return {"support", "admin"}
    return {part.strip().lower() for part in text.split(",") if part.strip()}


for _role, _label in (("clinician", lazy_gettext("clinicians")), ("support", lazy_gettext("support staff")),
                      ("admin", lazy_gettext("admins"))):
    DEFINITIONS[f"twofa_{_role}"] = Definition(
        lazy_gettext("Require two-factor sign-in for %(role)s", role=_label),
        "required" if _role in _default_twofa_roles() else "optional", _choice("required", "optional"),
        lazy_gettext("Required: after the password, %(role)s without an authenticator app or security key can only "
                     "set one up.", role=_label), TWOFA_CHOICES)
del _role, _label
# Answers by email (smilepass/mailin): a mail to the bare support address may open a request.
MAIL_NEW_REQUEST_CHOICES = (("off", lazy_gettext("Off")), ("on", lazy_gettext("On")))
DEFINITIONS["mail_new_requests"] = Definition(
    lazy_gettext("New requests by email"), "off", _choice("off", "on"),
    lazy_gettext("When on, a mail from an active clinician's address to the support mailbox (without a reply "
                 "address of a request) opens a new request with priority Low and is confirmed by mail."),
    MAIL_NEW_REQUEST_CHOICES)


def get(key: str):
    definition = DEFINITIONS[key]
    # Read on busy pages (the Support page's form): the SELECT is built once (db.prepared).
    found = prepared("setting-value", lambda p: Setting.select(Setting.value).where(Setting.key == p.name),
                     raw_rows=True, name=key)
    if not found:
        return definition.default
    try:
        return definition.parse(found[0][0])
    except SettingRefused:
        return definition.default  # a value written by an older version: fall back rather than fail


def get_all() -> dict:
    stored = {row.key: row.value for row in Setting.select()}
    values = {}
    for key, definition in DEFINITIONS.items():
        try:
            values[key] = definition.parse(stored[key]) if key in stored else definition.default
        except SettingRefused:
            values[key] = definition.default
    return values


def set_value(key: str, text: str, actor: User) -> object:
    """Check and store one setting; audited with its old and new value (settings hold no patient data)."""
    definition = DEFINITIONS[key]
    value = definition.parse(text)
    old = get(key)
    if value == old:
        return value
    with database.atomic():
        (Setting.insert(key=key, value=str(value), updated_at=utcnow())
         .on_conflict(conflict_target=[Setting.key], update={Setting.value: str(value), Setting.updated_at: utcnow()})
         .execute())
        audit.record("setting_change", None, f"{key}: {old} -> {value}", actor=actor)
    return value

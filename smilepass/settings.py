"""Clinic-wide settings that admins change at run time (Admin → Clinic settings).

Each setting has a type, a default and a check; the database only holds values that differ from
the default. Reads go to the database each time: several web and worker processes share it, and a
per-process cache would keep serving an old value after an admin changes it."""
from dataclasses import dataclass
from typing import Callable

from . import audit
from .db import database, prepared
from .models import Setting, User, utcnow


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
            raise SettingRefused(f"Choose one of: {', '.join(allowed)}.")
        return text
    return parse


def _int_between(low, high):
    def parse(text):
        try:
            value = int(str(text).strip())
        except ValueError:
            raise SettingRefused("Enter a whole number.") from None
        if not low <= value <= high:
            raise SettingRefused(f"Enter a number from {low} to {high}.")
        return value
    return parse


TOOTH_NOTATIONS = (("fdi", "FDI (two digits: 11–48)"), ("universal", "Universal (1–32)"))

DEFINITIONS = {
    "tooth_notation": Definition(
        "Tooth numbering", "fdi", _choice(*(key for key, _ in TOOTH_NOTATIONS)),
        "How tooth numbers are shown across SmilePass. Clinicians may type either notation.", TOOTH_NOTATIONS),
    "warranty_days": Definition(
        "Warranty window (days)", 90, _int_between(1, 3650),
        "A replacement request is inside the warranty when the aligner was delivered this many days ago or less."),
}


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

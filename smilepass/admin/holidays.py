"""Clinic holidays (Admin → Holidays). Business days skip them, so adding or removing one moves the
estimated delivery windows of shipments around it. Every change is audited."""
import datetime as dt

import peewee as pw
from flask_babel import gettext

from .. import audit
from ..db import database
from ..models import Holiday, User

NAME_MAX = 80
PAST_SHOWN = 60
BULK_MAX_LINES = 100


class HolidayRefused(ValueError):
    """The message is for the admin."""


def upcoming(today: dt.date) -> list[Holiday]:
    return list(Holiday.select().where(Holiday.date >= today).order_by(Holiday.date))


def past(today: dt.date, limit: int = PAST_SHOWN) -> list[Holiday]:
    return list(Holiday.select().where(Holiday.date < today).order_by(Holiday.date.desc()).limit(limit))


def _taken_message(existing: Holiday) -> str:
    return gettext("%(date)s is already a holiday (%(name)s).", date=existing.date.isoformat(),
                   name=existing.name or gettext("no name"))


def add_holiday(day: dt.date, name: str, actor: User) -> Holiday:
    name = (name or "").strip()
    if not name:
        raise HolidayRefused(gettext("Name the holiday."))
    if len(name) > NAME_MAX:
        raise HolidayRefused(gettext("The name may be at most %(count)s characters.", count=NAME_MAX))
    existing = Holiday.get_or_none(Holiday.date == day)
    if existing is not None:
        raise HolidayRefused(_taken_message(existing))
    try:
        with database.atomic():
            holiday = Holiday.create(date=day, name=name)
            audit.record("holiday_add", holiday, f"{day:%Y-%m-%d} {name}", actor=actor)
    except pw.IntegrityError:  # another admin added the same date a moment ago
        raise HolidayRefused(_taken_message(Holiday.get(Holiday.date == day))) from None
    return holiday


def delete_holiday(holiday: Holiday, actor: User) -> None:
    with database.atomic():
        audit.record("holiday_delete", holiday, f"{holiday.date:%Y-%m-%d} {holiday.name}", actor=actor)
        holiday.delete_instance()


def parse_list(text: str) -> tuple[list[tuple[dt.date, str]], list[str]]:
    """A pasted list, one holiday a line: `YYYY-MM-DD Name` (a comma or tab after the date also
    works). Returns the entries and one message per bad line."""
    entries, errors, seen = [], [], set()
    lines = [(n, line.strip()) for n, line in enumerate((text or "").splitlines(), start=1) if line.strip()]
    if not lines:
        return [], ["Paste at least one line: YYYY-MM-DD Name."]
    if len(lines) > BULK_MAX_LINES:
        return [], [gettext("At most %(count)s lines at a time.", count=BULK_MAX_LINES)]
    for number, line in lines:
        date_text, name = line[:10], line[10:].lstrip(" \t,;").strip()
        try:
            day = dt.date.fromisoformat(date_text)
        except ValueError:
            errors.append(gettext("Line %(number)s: start with the date as YYYY-MM-DD.", number=number))
            continue
        if not name:
            errors.append(gettext("Line %(number)s: name the holiday after the date.", number=number))
        elif len(name) > NAME_MAX:
            errors.append(gettext("Line %(number)s: the name may be at most %(count)s characters.", number=number,
                                  count=NAME_MAX))
        elif day in seen:
            errors.append(gettext("Line %(number)s: %(date)s appears twice.", number=number, date=day.isoformat()))
        else:
            seen.add(day)
            entries.append((day, name))
    return entries, errors


def add_many(entries: list[tuple[dt.date, str]], actor: User) -> tuple[int, list[dt.date]]:
    """Add every entry whose date is not a holiday yet, in one transaction; returns how many were
    added and the dates skipped because they were already holidays."""
    existing = {h.date for h in Holiday.select(Holiday.date).where(Holiday.date.in_([d for d, _ in entries]))}
    new = [(day, name) for day, name in entries if day not in existing]
    try:
        with database.atomic():
            for day, name in new:
                holiday = Holiday.create(date=day, name=name)
                audit.record("holiday_add", holiday, f"{day:%Y-%m-%d} {name}", actor=actor)
    except pw.IntegrityError:  # another admin added one of these dates meanwhile; nothing was added
        raise HolidayRefused(
            gettext("The holidays changed while you were adding these. Send the list again.")
        ) from None
    return len(new), sorted(existing)

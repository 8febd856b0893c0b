"""The page's filters: a date range (typed, or one of the quick ranges) and, for whole-practice
viewers, a clinic. Bad input is reported field by field and the default range is shown meanwhile;
what was typed stays in the form."""
import datetime as dt
from dataclasses import dataclass, field

from flask_babel import gettext, lazy_gettext

from ..models import Clinic
from ..params import parse_int
from .metrics import Scope

DEFAULT_WEEKS = 12
LONGEST_DAYS = 2 * 366
QUICK_RANGES = [(4, lazy_gettext("4 weeks")), (12, lazy_gettext("12 weeks")), (26, lazy_gettext("26 weeks")),
                (52, lazy_gettext("52 weeks"))]


def last_weeks(today: dt.date, weeks: int) -> tuple[dt.date, dt.date]:
    return today - dt.timedelta(days=7 * weeks - 1), today


@dataclass
class Filters:
    start: dt.date
    end: dt.date  # inclusive
    clinic: Clinic | None
    typed: dict  # what the form shows: from, to, clinic as sent
    errors: dict = field(default_factory=dict)

    def scope(self, clinician_id: int | None) -> Scope:
        return Scope(dt.datetime.combine(self.start, dt.time()), dt.datetime.combine(self.end + dt.timedelta(days=1),
                     dt.time()), clinic_id=self.clinic.id if self.clinic else None, clinician_id=clinician_id)

    def params(self, **changes) -> dict:
        """Query parameters for a link to the same view (the CSVs, the quick ranges)."""
        params = {"from": self.start.isoformat(), "to": self.end.isoformat(),
                  "clinic": self.clinic.id if self.clinic else None}
        params.update(changes)
        return {k: v for k, v in params.items() if v is not None}


def quick_ranges(chosen: Filters, today: dt.date) -> list[tuple[str, dict]]:
    """(label, query parameters) of each quick range, keeping the clinic chosen."""
    links = []
    for weeks, label in QUICK_RANGES:
        start, end = last_weeks(today, weeks)
        links.append((label, chosen.params(**{"from": start.isoformat(), "to": end.isoformat()})))
    return links


def _date(value: str, errors: dict, name: str):
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        errors[name] = gettext("Enter a date as YYYY-MM-DD, e.g. 2026-03-31.")
        return None


def parse(args, today: dt.date, clinic_filter: bool) -> Filters:
    """Filters from the query string. `clinic_filter` is False for a clinician (their own numbers
    only): a clinic sent anyway is ignored."""
    typed = {
        "from": args.get("from", ""),
        "to": args.get("to", ""),
        "clinic": args.get("clinic", "") if clinic_filter else "",
    }
    errors: dict = {}
    default_start, default_end = last_weeks(today, DEFAULT_WEEKS)
    start = _date(typed["from"], errors, "from") if typed["from"].strip() else default_start
    end = _date(typed["to"], errors, "to") if typed["to"].strip() else default_end
    if start and end and not errors:
        if start > end:
            errors["to"] = gettext("The end date must be on or after the start date.")
        elif (end - start).days >= LONGEST_DAYS:
            errors["to"] = gettext("Choose a range of at most two years.")
    clinic = None
    if typed["clinic"].strip():
        raw = typed["clinic"].strip()
        clinic_id = parse_int(raw)
        clinic = Clinic.get_or_none(Clinic.id == clinic_id) if clinic_id is not None else None
        if clinic is None:
            errors["clinic"] = gettext("Choose a clinic from the list.")
    if errors:
        start, end = default_start, default_end
    return Filters(start, end, clinic, typed, errors)

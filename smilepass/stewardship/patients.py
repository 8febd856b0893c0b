"""Who "the patient" is, and the words that identify them.

SmilePass has no patient table: a patient is one or more cases. Cases belong to the same patient
when they share the date of birth and either the name (ignoring case and spacing) or a non-empty
clinic patient ID. The birth date is required in both rules because it is what clinics give for
record matching: two clinics can issue the same patient ID, and names repeat."""
import datetime as dt
import re
from dataclasses import dataclass, field

from ..models import Case, Scan, Shipment, Ticket, User

REDACTED = "[removed]"
# Name parts shorter than this (initials) are too common to remove from free text.
NAME_PART_MIN = 2
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")


def _normal_name(name: str) -> str:
    return " ".join((name or "").split()).casefold()


def same_patient(a: Case, b: Case) -> bool:
    if a.patient_dob != b.patient_dob:
        return False
    if _normal_name(a.patient_name) == _normal_name(b.patient_name):
        return True
    return bool(a.clinic_patient_id.strip()) and a.clinic_patient_id.strip() == b.clinic_patient_id.strip()


def cases_of_patient(case: Case, viewer: User) -> list[Case]:
    """The given case and every other case of the same patient that the viewer may see, oldest
    first. Birth dates are not indexed; one date's cases are few, and this runs on demand only."""
    candidates = Case.visible_to(viewer).where(Case.patient_dob == case.patient_dob).order_by(Case.id)
    return [other for other in candidates if other.id == case.id or same_patient(case, other)]


def linked_ticket_ids(case_ids: list[int]) -> list[int]:
    """Requests about these cases, and requests that carried one of their scans."""
    about = Ticket.select(Ticket.id).where(Ticket.case.in_(case_ids))
    via_scans = Scan.select(Scan.ticket).where(Scan.case.in_(case_ids) & Scan.ticket.is_null(False))
    ids = {row[0] for row in about.tuples()} | {row[0] for row in via_scans.tuples()}
    return sorted(ids)


def scan_condition(case_ids: list[int], ticket_ids: list[int]):
    """Scans of the patient: uploaded on one of the cases or sent with one of its requests."""
    condition = Scan.case.in_(case_ids)
    if ticket_ids:
        condition |= Scan.ticket.in_(ticket_ids)
    return condition


def date_spellings(day: dt.date) -> set[str]:
    """A date as people write it: ISO, day-first and month-first with . / -, with and without
    leading zeros, two-digit years, and with the English month name."""
    d, m, y, yy = day.day, day.month, day.year, f"{day.year % 100:02d}"
    forms = {
        f"{y:04d}-{m:02d}-{d:02d}",
        f"{y:04d}/{m:02d}/{d:02d}",
        f"{y:04d}.{m:02d}.{d:02d}",
        f"{y:04d}{m:02d}{d:02d}",
    }
    for first, second in ((d, m), (m, d)):
        for sep in "./-":
            for a, b in ((f"{first:02d}", f"{second:02d}"), (str(first), str(second))):
                forms.add(f"{a}{sep}{b}{sep}{y}")
                forms.add(f"{a}{sep}{b}{sep}{yy}")
    for month in (MONTHS[m - 1], MONTHS[m - 1][:3]):
        for dd in (str(d), f"{d:02d}"):
            forms |= {f"{dd} {month} {y}", f"{dd}. {month} {y}", f"{month} {dd}, {y}", f"{month} {dd} {y}"}
    return forms


def name_parts(name: str) -> set[str]:
    words = set()
    for word in name.split():
        words.add(word)
        words.update(re.split(r"[-‐]", word))
    return {w.strip(".,'\"") for w in words if len(w.strip(".,'\"")) >= NAME_PART_MIN}


@dataclass
class Identifiers:
    """What identifies the patient in free text. `strong` ones (full name, case number, clinic
    patient ID, scan file names, tracking numbers) are specific enough to search the whole database
    for; the name's parts and the birth date are removed only from text already known to be about
    the patient (its requests), since "Anna" or a date alone would hit other patients' records."""
    strong: set[str] = field(default_factory=set)
    weak: set[str] = field(default_factory=set)
    _compiled: dict = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, cases: list[Case]) -> "Identifiers":
        ids = cls()
        case_ids = [case.id for case in cases]
        for case in cases:
            ids.strong |= {
                " ".join(case.patient_name.split()),
                case.case_number.strip(),
                case.clinic_patient_id.strip(),
            }
            ids.weak |= name_parts(case.patient_name) | date_spellings(case.patient_dob)
        ids.strong = {s for s in ids.strong if len(s) >= NAME_PART_MIN}
        # A scan's file name counts when it contains an identifier (clinic7_PX-4471_2026-11-20.stl);
        # "upper.stl" says nothing about anyone and must not be removed from other requests.
        tickets = linked_ticket_ids(case_ids)
        scan_names = Scan.select(Scan.original_name).where(scan_condition(case_ids, tickets))
        ids.strong |= {name for (name,) in scan_names.tuples() if ids.pattern(True).search(name)}
        tracking = Shipment.select(Shipment.tracking_number).where(Shipment.case.in_(case_ids))
        ids.strong |= {number for (number,) in tracking.tuples() if len(number) >= 6}
        ids._compiled.clear()
        return ids

    def searchable(self) -> list[str]:
        return sorted(self.strong)

    def pattern(self, include_weak: bool) -> re.Pattern:
        key = ("compiled", include_weak)
        if key not in self._compiled:
            self._compiled[key] = self._compile(include_weak)
        return self._compiled[key]

    def _compile(self, include_weak: bool) -> re.Pattern:
        words = self.strong | (self.weak if include_weak else set())
        # Longest first, so a file name or the full name goes before the parts inside it. A match
        # must not sit inside a longer word or number; underscores and dots count as separators,
        # since file names are written like clinicID_patientID_date.stl.
        alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        return re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])", re.IGNORECASE)

    def scrub(self, text: str, include_weak: bool = True) -> str:
        if not text:
            return text
        return self.pattern(include_weak).sub(REDACTED, text)

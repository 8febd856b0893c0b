"""CSV import of tracking numbers (staff): case number, carrier, tracking number, shipped date.

Every row is checked first; if any is bad nothing is applied, otherwise all rows are applied in one
transaction (each moves the case's oldest In Production shipment to In Transit)."""
import csv
import datetime as dt
import io
from dataclasses import dataclass

from flask_babel import gettext

from .. import audit
from ..db import database
from ..models import Case, Shipment, ShipmentState, User
from ..notifications.outbox import hand_over
from ..service.sla import clinic_today
from .shipments import CARRIER_MAX, TRACKING_MAX, ShipmentRefused, advance

MAX_ROWS = 2000
HEADER = ["case number", "carrier", "tracking number", "shipped date"]


class ImportError_(Exception):
    """The file as a whole cannot be read."""


@dataclass
class RowResult:
    line: int
    case_number: str
    carrier: str
    tracking_number: str
    shipped: str
    error: str = ""
    shipment_id: int | None = None
    shipped_date: dt.date | None = None


def parse_import(data: bytes, today: dt.date | None = None) -> list[RowResult]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportError_(gettext("The file is not UTF-8 text.")) from None
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise ImportError_(gettext("The file is not valid CSV: %(error)s", error=exc)) from None
    numbered = [(i, row) for i, row in enumerate(rows, start=1) if any(cell.strip() for cell in row)]
    if numbered and [c.strip().lower() for c in numbered[0][1]] == HEADER:
        numbered = numbered[1:]
    if not numbered:
        raise ImportError_(gettext("The file has no rows."))
    if len(numbered) > MAX_ROWS:
        raise ImportError_(gettext("At most %(count)s rows per file.", count=MAX_ROWS))
    today = today or clinic_today()
    results, seen = [], set()
    for line, row in numbered:
        cells = [c.strip() for c in row] + [""] * 4
        result = RowResult(line, *cells[:4])
        result.error = _check(result, row, seen, today)
        results.append(result)
    return results


def _check(result: RowResult, row: list, seen: set, today: dt.date) -> str:
    if len(row) != 4:
        return gettext("Expected 4 columns, found %(count)s.", count=len(row))
    if not result.case_number:
        return gettext("Case number is missing.")
    if result.case_number in seen:
        return gettext("This case appears twice in the file.")
    seen.add(result.case_number)
    if not result.carrier or len(result.carrier) > CARRIER_MAX:
        return gettext("Carrier is missing or too long.")
    if not result.tracking_number or len(result.tracking_number) > TRACKING_MAX:
        return gettext("Tracking number is missing or too long.")
    try:
        result.shipped_date = dt.date.fromisoformat(result.shipped)
    except ValueError:
        return gettext("Shipped date must be YYYY-MM-DD.")
    if result.shipped_date > today:
        return gettext("Shipped date is in the future.")
    case = Case.get_or_none(Case.case_number == result.case_number)
    if case is None:
        return gettext("No case has this number.")
    shipment = (Shipment.select(Shipment.id).where((Shipment.case == case.id)
                & (Shipment.state == ShipmentState.IN_PRODUCTION.value)).order_by(Shipment.id).first())
    if shipment is None:
        return gettext("The case has no shipment In Production.")
    result.shipment_id = shipment.id
    return ""


def apply_import(results: list[RowResult], actor: User) -> None:
    """All rows or none: a row refused now (changed since the check) undoes the whole import."""
    with database.atomic():
        for result in results:
            shipment = Shipment.get_by_id(result.shipment_id)
            when = dt.datetime.combine(result.shipped_date, dt.time(12, 0))
            try:
                advance(shipment, actor, to_state=ShipmentState.IN_TRANSIT.value, carrier=result.carrier,
                        tracking_number=result.tracking_number, at=when)
            except ShipmentRefused as exc:
                raise ShipmentRefused(gettext("Line %(number)s: %(error)s", number=result.line, error=exc)) from None
        # Each row is audited as its shipment moves on; this row says they came from one file.
        audit.record("shipment_import", None, f"{len(results)} shipments to in_transit", actor=actor)
    # Each row's mail was written with its row; the worker hears of them now that all are committed.
    hand_over()

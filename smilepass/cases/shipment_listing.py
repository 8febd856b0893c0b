"""The Shipments view: one page of trackers by target shipping date, with the state filters and
their counts, active (not delivered, or delivered in the last 30 days) or the whole history.

Opened often by staff, so it is built like the ticket table: the SQL of each query shape is made
once (db.prepared), rows come back as tuples and each cell's text is prepared here once."""
import datetime as dt
import functools
from dataclasses import dataclass
from typing import NamedTuple

import peewee as pw
from markupsafe import Markup

from ..db import prepared
from ..models import Case, Shipment, ShipmentCount, ShipmentState, User
from ..service.calendar import Schedule
from .eta import delivery_window, ships_on, transit_days
from .listing import STATE_CELLS
from .shipments import active_since

DELIVERED = ShipmentState.DELIVERED.value
STATE_SLUGS = {s.slug: s for s in ShipmentState}


class Row(NamedTuple):
    id: int
    case_id: int
    case_number: str
    phases: str
    state_cell: Markup
    target: str
    delivery: str
    carrier: str
    tracking_number: str


def _date(value) -> dt.date | None:
    """SQLite hands dates and timestamps back as ISO text, PostgreSQL as objects."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    return value if type(value) is dt.date else value.date()


def _timestamp(value) -> dt.datetime | None:
    if value is None or value == "":
        return None
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else value


def _delivery(state, delivered_at, carrier_eta, leaves_on, window, schedule) -> str:
    """What the Delivery column says: the delivery date, else the carrier's date, else the window
    (the same rules as eta.estimate, on raw rows)."""
    if state == DELIVERED and delivered_at:
        return schedule.local_date(_timestamp(delivered_at)).isoformat()
    if carrier_eta:
        return _date(carrier_eta).isoformat()
    first, last = window(leaves_on)
    return f"{first} – {last}"


def _row(values, window, cells, schedule) -> Row:
    (shipment_id, case_id, number, phases, state, target, in_transit_at, delivered_at, carrier_eta, carrier,
     tracking) = values
    target = _date(target)
    leaves_on = ships_on(state, target, _timestamp(in_transit_at), schedule)
    return Row(shipment_id, case_id, number, phases, cells[state], target.isoformat(),
               _delivery(state, delivered_at, carrier_eta, leaves_on, window, schedule), carrier, tracking)


def _rows_query(p, state_filtered: bool, staff: bool, history: bool):
    query = (Shipment.select(Shipment.id, Shipment.case, Case.case_number, Shipment.phases, Shipment.state,
                             Shipment.target_ship_date, Shipment.in_transit_at, Shipment.delivered_at,
                             Shipment.carrier_eta,
                             Shipment.carrier, Shipment.tracking_number)
             .join(Case, on=(Shipment.case == Case.id)))
    if not staff:
        query = query.where(Shipment.clinician == p.clinician)
    if not history:
        query = query.where((Shipment.state != p.delivered) | (Shipment.delivered_at > p.since))
    if state_filtered:
        query = query.where(Shipment.state == p.state)
    return (query.order_by(Shipment.target_ship_date.desc(), Shipment.id.desc())
            .limit(p.limit).offset(p.offset))


def _clinician_counts_query(p, history: bool):
    # One clinician's shipments are a few hundred: counted live along the (clinician, state,
    # delivered_at) index, without touching the rows.
    query = (Shipment.select(Shipment.state, pw.fn.COUNT(pw.SQL("*")))
             .where(Shipment.clinician == p.clinician).group_by(Shipment.state))
    if not history:
        query = query.where((Shipment.state != p.delivered) | (Shipment.delivered_at > p.since))
    return query


def state_counts(user: User, history: bool, since: dt.datetime) -> dict[str, int]:
    values = dict(clinician=user.id, delivered=DELIVERED, since=since)
    if not user.is_staff:
        rows = prepared(("shipment-counts", history), lambda p: _clinician_counts_query(p, history), raw_rows=True,
                        **values)
        return {state: n for state, n in rows}
    # Clinic-wide: the maintained counts (ShipmentCount); only "delivered in the last 30 days" is
    # counted live, along the delivered_at index.
    counts = {state: n for state, n in prepared("shipment-count-table", lambda p: ShipmentCount.select(
        ShipmentCount.state, ShipmentCount.n), raw_rows=True)}
    if not history:
        recent = prepared("shipments-delivered-since", lambda p: Shipment.select(pw.fn.COUNT(Shipment.id)).where(
            Shipment.delivered_at > p.since), raw_rows=True, since=since)
        counts[DELIVERED] = recent[0][0]
    return counts


@dataclass
class ShipmentPage:
    rows: list[Row]
    counts: dict
    state: ShipmentState | None
    history: bool
    page: int
    has_next: bool


def shipment_page(user: User, state: ShipmentState | None, history: bool, page: int, page_size: int,
                  schedule: Schedule, now: dt.datetime | None = None) -> ShipmentPage:
    page = max(page, 1)
    since = active_since(now)
    shape = (state is not None, user.is_staff, history)
    found = prepared(("shipment-rows", shape), lambda p: _rows_query(p, *shape), raw_rows=True,
                     clinician=user.id, delivered=DELIVERED, since=since, state=state.value if state else "",
                     limit=page_size + 1, offset=(page - 1) * page_size)
    # Rows on one page share few shipping days: each day's window is worked out once.
    transit = transit_days()
    window = functools.lru_cache(maxsize=None)(lambda day: delivery_window(day, transit, schedule))
    cells = STATE_CELLS.current()
    rows = [_row(values, window, cells, schedule) for values in found[:page_size]]
    return ShipmentPage(rows, state_counts(user, history, since), state, history, page, len(found) > page_size)

"""When a shipment is expected: the one estimate the patient page, the case page, the shipments list and
the emails all show.

Delivered: the delivery date. Otherwise the carrier's date once it gives one. Otherwise a window around
the day the parcel should arrive: the day it ships (the target shipping date while in production, the day
it actually left once in transit) plus the clinic's transit time, ± ETA_SPREAD business days, and never
before the first business day after it ships. Business days are the clinic's (weekdays and holidays)."""
import datetime as dt

from .. import settings
from ..models import Shipment, ShipmentState
from ..service import sla
from ..service.calendar import Schedule, add_business_days, subtract_business_days

ETA_SPREAD = 2  # business days either side of the expected day


def delivery_window(ships_on: dt.date, transit_days: int, schedule: Schedule,
                    spread: int = ETA_SPREAD) -> tuple[dt.date, dt.date]:
    """The window of days a parcel shipping on `ships_on` is expected to arrive in."""
    expected = add_business_days(ships_on, transit_days, schedule)
    earliest = add_business_days(ships_on, 1, schedule)
    first = max(subtract_business_days(expected, spread, schedule), earliest)
    last = max(add_business_days(expected, spread, schedule), first)
    return first, last


def ships_on(state: str, target_ship_date: dt.date, in_transit_at: dt.datetime | None, schedule: Schedule) -> dt.date:
    """The day the parcel left (in the clinic's calendar) once it did, else the day it is meant to."""
    if state != ShipmentState.IN_PRODUCTION.value and in_transit_at is not None:
        return schedule.local_date(in_transit_at)
    return target_ship_date


def transit_days() -> int:
    return settings.get("transit_days")


def estimate(shipment: Shipment, schedule: Schedule | None = None, transit: int | None = None):
    """("delivered", date), ("carrier", date) or ("window", (first, last))."""
    schedule = schedule or sla.schedule()
    if shipment.state == ShipmentState.DELIVERED.value and shipment.delivered_at:
        return "delivered", schedule.local_date(shipment.delivered_at)
    if shipment.carrier_eta:
        return "carrier", shipment.carrier_eta
    leaves = ships_on(shipment.state, shipment.target_ship_date, shipment.in_transit_at, schedule)
    return "window", delivery_window(leaves, transit_days() if transit is None else transit, schedule)

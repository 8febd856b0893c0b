"""When a first response is due. Wall-clock targets per priority for now; business hours, holidays
and pauses come with the service-levels work."""
import datetime as dt

from .models import Priority

FIRST_RESPONSE_HOURS = {
    Priority.URGENT: 4,
    Priority.HIGH: 8,
    Priority.NORMAL: 24,
    Priority.LOW: 72,
}


def first_response_due(priority: int, created_at: dt.datetime) -> dt.datetime:
    return created_at + dt.timedelta(hours=FIRST_RESPONSE_HOURS[Priority(priority)])

"""The clinic's business calendar, one for everything: business hours for the service-level clocks and
business days for delivery estimates, in the clinic's own time zone, skipping closed weekdays and holidays.

Flask-free and database-free: callers pass a Schedule. Times in and out are naive UTC datetimes,
the way the database stores them; the schedule's wall-clock hours are converted per day through
zoneinfo, so a daylight-saving change moves the UTC hours of opening, not their length on the clock
(08:00–17:00 stays nine hours on both sides of the change). Business days are counted by numpy's
business-day functions with the schedule's weekdays and holidays."""
import datetime as dt
import functools
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np

UTC = dt.UTC
# Walking further than this finds no business hours at all (e.g. every weekday made a holiday):
# better a clear error than an endless loop.
MAX_DAYS = 3 * 366


class NoBusinessHours(ValueError):
    pass


@dataclass(frozen=True)
class Schedule:
    time_zone: str = "UTC"
    opens: dt.time = dt.time(8, 0)
    closes: dt.time = dt.time(17, 0)
    weekdays: frozenset = frozenset({0, 1, 2, 3, 4})  # Monday = 0
    holidays: Collection[dt.date] = field(default_factory=frozenset)

    def __post_init__(self):
        if self.closes <= self.opens:
            raise ValueError("Closing time must be after opening time.")
        ZoneInfo(self.time_zone)  # an unknown zone fails here, not in the middle of a request

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def is_open_on(self, day: dt.date) -> bool:
        return day.weekday() in self.weekdays and day not in self.holidays

    def hours_on(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """The day's opening hours as naive UTC datetimes, or None when closed."""
        if not self.is_open_on(day):
            return None
        zone = self.zone
        start = dt.datetime.combine(day, self.opens, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
        end = dt.datetime.combine(day, self.closes, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
        return start, end

    def local_date(self, moment: dt.datetime) -> dt.date:
        return moment.replace(tzinfo=UTC).astimezone(self.zone).date()

    @functools.cached_property
    def business_days(self) -> np.busdaycalendar:
        """The open weekdays and holidays as numpy's business-day calendar (built once per schedule)."""
        return np.busdaycalendar(weekmask=[day in self.weekdays for day in range(7)],
                                 holidays=sorted(self.holidays))


# Monday to Friday, no holidays: the default calendar when a caller has none of the clinic's.
WEEKDAYS = Schedule()


def _open_periods(schedule: Schedule, start: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """Opening periods from the local day containing `start` on, clipped to begin at `start`."""
    day = schedule.local_date(start)
    for _ in range(MAX_DAYS):
        hours = schedule.hours_on(day)
        if hours is not None and hours[1] > start:
            yield max(hours[0], start), hours[1]
        day += dt.timedelta(days=1)
    raise NoBusinessHours(f"No business hours within {MAX_DAYS} days of {start:%Y-%m-%d}.")


def add_business_time(start: dt.datetime, duration: dt.timedelta, schedule: Schedule) -> dt.datetime:
    """The moment `duration` of business time after `start`. A duration that ends exactly at
    closing time ends then, not at the next opening."""
    if duration < dt.timedelta(0):
        raise ValueError("duration must not be negative")
    remaining = duration
    for period_start, period_end in _open_periods(schedule, start):
        available = period_end - period_start
        if remaining <= available:
            # Zero remaining before any opening still waits for the first open moment.
            return period_start + remaining
        remaining -= available
    raise AssertionError("unreachable")  # _open_periods raises first


def business_time_between(start: dt.datetime, end: dt.datetime, schedule: Schedule) -> dt.timedelta:
    """Business time from start to end (zero when end is not after start)."""
    total = dt.timedelta(0)
    if end <= start:
        return total
    day = schedule.local_date(start)
    last = schedule.local_date(end)
    while day <= last:
        hours = schedule.hours_on(day)
        if hours is not None:
            overlap = min(hours[1], end) - max(hours[0], start)
            if overlap > dt.timedelta(0):
                total += overlap
        day += dt.timedelta(days=1)
    return total


# Business days ------------------------------------------------------------------------------------

def is_business_day(day: dt.date, schedule: Schedule = WEEKDAYS) -> bool:
    return schedule.is_open_on(day)


def add_business_days(start: dt.date, days: int, schedule: Schedule = WEEKDAYS) -> dt.date:
    """The date `days` business days after start (before it when negative). Counting starts from
    the next (or previous) day, so start itself need not be a business day; 0 returns start."""
    if days == 0:
        return start
    # Rolling start back (forward, when counting backwards) onto a business day first makes the step
    # land on the n-th business day strictly after (before) start, whatever kind of day start is.
    roll = "backward" if days > 0 else "forward"
    return np.busday_offset(start, days, roll=roll, busdaycal=schedule.business_days).item()


def subtract_business_days(start: dt.date, days: int, schedule: Schedule = WEEKDAYS) -> dt.date:
    return add_business_days(start, -days, schedule)


def business_days_between(start: dt.date, end: dt.date, schedule: Schedule = WEEKDAYS) -> int:
    """Business days after start up to and including end (negative when end is earlier)."""
    one_day = dt.timedelta(days=1)
    low, high, sign = (start, end, 1) if end >= start else (end, start, -1)
    # numpy counts [begin, end); both ways round the days counted are those after `low` up to `high`.
    return sign * int(np.busday_count(low + one_day, high + one_day, busdaycal=schedule.business_days))


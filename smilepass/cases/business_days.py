"""Business-day arithmetic: weekends (Saturday, Sunday) and the given holiday dates are skipped.

Pure functions on dates, no Flask and no database: callers pass the holidays in."""
import datetime as dt
from collections.abc import Collection

ETA_SPREAD = 2  # business days either side of the target shipping date


def is_business_day(day: dt.date, holidays: Collection[dt.date] = ()) -> bool:
    return day.weekday() < 5 and day not in holidays


def add_business_days(start: dt.date, days: int, holidays: Collection[dt.date] = ()) -> dt.date:
    """The date `days` business days after start (before it when negative). Counting starts from
    the next (or previous) day, so start itself need not be a business day; 0 returns start."""
    step = dt.timedelta(days=1 if days >= 0 else -1)
    remaining = abs(days)
    day = start
    while remaining:
        day += step
        if is_business_day(day, holidays):
            remaining -= 1
    return day


def subtract_business_days(start: dt.date, days: int, holidays: Collection[dt.date] = ()) -> dt.date:
    return add_business_days(start, -days, holidays)


def business_days_between(start: dt.date, end: dt.date, holidays: Collection[dt.date] = ()) -> int:
    """Business days after start up to and including end (negative when end is earlier)."""
    sign = 1 if end >= start else -1
    low, high = (start, end) if sign > 0 else (end, start)
    count = 0
    day = low
    while day < high:
        day += dt.timedelta(days=1)
        if is_business_day(day, holidays):
            count += 1
    return sign * count


def eta_window(target: dt.date, holidays: Collection[dt.date] = (), spread: int = ETA_SPREAD) -> tuple[dt.date, dt.date]:
    """The estimated delivery window: target shipping date ± `spread` business days."""
    return subtract_business_days(target, spread, holidays), add_business_days(target, spread, holidays)

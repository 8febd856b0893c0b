"""Business-hour arithmetic: overnight, weekends, holidays, time zones and daylight-saving changes."""
import datetime as dt
import random
from zoneinfo import ZoneInfoNotFoundError

import pytest

from smilepass.service.calendar import NoBusinessHours, Schedule, add_business_time, business_time_between

H = dt.timedelta(hours=1)
UTC_CLINIC = Schedule()  # 08:00–17:00 Monday to Friday, UTC
NEW_YORK = Schedule(time_zone="America/New_York")
BERLIN = Schedule(time_zone="Europe/Berlin", holidays=frozenset({dt.date(2026, 12, 24), dt.date(2026, 12, 25)}))


def at(*args):
    return dt.datetime(*args)


def test_within_one_day():
    assert add_business_time(at(2026, 11, 23, 9), 4 * H, UTC_CLINIC) == at(2026, 11, 23, 13)


def test_overnight_carries_to_the_next_morning():
    # Monday 15:00 + 4 h: two hours today, two from Tuesday 08:00.
    assert add_business_time(at(2026, 11, 23, 15), 4 * H, UTC_CLINIC) == at(2026, 11, 24, 10)


def test_ending_exactly_at_closing_time_stays_that_day():
    assert add_business_time(at(2026, 11, 23, 13), 4 * H, UTC_CLINIC) == at(2026, 11, 23, 17)


def test_start_before_opening_and_after_closing():
    assert add_business_time(at(2026, 11, 23, 6), 1 * H, UTC_CLINIC) == at(2026, 11, 23, 9)
    assert add_business_time(at(2026, 11, 23, 22), 1 * H, UTC_CLINIC) == at(2026, 11, 24, 9)


def test_weekend_is_skipped():
    # Friday 15:00 + 4 h → Monday 10:00; a request on Saturday starts counting on Monday.
    assert add_business_time(at(2026, 11, 27, 15), 4 * H, UTC_CLINIC) == at(2026, 11, 30, 10)
    assert add_business_time(at(2026, 11, 28, 12), 4 * H, UTC_CLINIC) == at(2026, 11, 30, 12)


def test_long_targets_span_days():
    # 24 business hours from Monday 08:00 = 2 days and 6 hours of opening hours → Wednesday 14:00.
    assert add_business_time(at(2026, 11, 23, 8), 24 * H, UTC_CLINIC) == at(2026, 11, 25, 14)
    # 72 h is eight whole nine-hour days: Monday 23rd to Wednesday 2nd, ending at its closing time.
    assert add_business_time(at(2026, 11, 23, 8), 72 * H, UTC_CLINIC) == at(2026, 12, 2, 17)


def test_holidays_are_skipped():
    # Berlin (UTC+1 in winter): Wednesday 23 Dec 16:00 local + 2 h → one hour on the 23rd, then
    # 24th and 25th are holidays, the 26th/27th a weekend: Monday 28th 09:00 local = 08:00 UTC.
    start = at(2026, 12, 23, 15)  # 16:00 in Berlin
    assert add_business_time(start, 2 * H, BERLIN) == at(2026, 12, 28, 8)


def test_time_zone_sets_the_utc_hours():
    # 08:00 in New York in November (EST, UTC−5) is 13:00 UTC.
    assert add_business_time(at(2026, 11, 23, 12), 1 * H, NEW_YORK) == at(2026, 11, 23, 14)
    # A UTC time already past midnight is still the evening before in New York.
    assert add_business_time(at(2026, 11, 24, 2), 1 * H, NEW_YORK) == at(2026, 11, 24, 14)


def test_daylight_saving_change_keeps_the_wall_clock_hours():
    # Friday 30 Oct 2026 16:00 EDT (20:00 UTC) + 4 h: one hour on Friday; DST ends Sunday 1 Nov;
    # three hours from Monday 08:00 EST (13:00 UTC) → 11:00 EST = 16:00 UTC.
    assert add_business_time(at(2026, 10, 30, 20), 4 * H, NEW_YORK) == at(2026, 11, 2, 16)
    # Spring: Friday 6 Mar 2026 16:00 EST (21:00 UTC) + 4 h → Monday 9 Mar 11:00 EDT = 15:00 UTC.
    assert add_business_time(at(2026, 3, 6, 21), 4 * H, NEW_YORK) == at(2026, 3, 9, 15)
    # Berlin changes on 29 Mar 2026: Friday 07:00–16:00 UTC is 08:00–17:00 CET, Monday 06:00–15:00
    # UTC is 08:00–17:00 CEST. Both are whole nine-hour days.
    assert business_time_between(at(2026, 3, 27, 7), at(2026, 3, 30, 15), BERLIN) == 18 * H
    assert add_business_time(at(2026, 3, 27, 7), 10 * H, BERLIN) == at(2026, 3, 30, 7)


def test_between_counts_only_opening_hours():
    assert business_time_between(at(2026, 11, 23, 15), at(2026, 11, 24, 10), UTC_CLINIC) == 4 * H
    assert business_time_between(at(2026, 11, 27, 16), at(2026, 11, 30, 9), UTC_CLINIC) == 2 * H
    assert business_time_between(at(2026, 11, 28, 9), at(2026, 11, 29, 18), UTC_CLINIC) == dt.timedelta(0)
    assert business_time_between(at(2026, 11, 24), at(2026, 11, 23), UTC_CLINIC) == dt.timedelta(0)


@pytest.mark.parametrize("schedule", [UTC_CLINIC, NEW_YORK, BERLIN], ids=["utc", "new-york", "berlin"])
def test_adding_then_measuring_gives_the_duration_back(schedule):
    rng = random.Random(7)
    for _ in range(300):
        start = at(2026, 1, 1) + dt.timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
        duration = dt.timedelta(minutes=rng.randrange(0, 80 * 60))
        due = add_business_time(start, duration, schedule)
        assert due >= start
        assert business_time_between(start, due, schedule) == duration, (start, duration)


def test_a_schedule_without_any_open_day_fails_clearly():
    closed = Schedule(weekdays=frozenset())
    with pytest.raises(NoBusinessHours):
        add_business_time(at(2026, 11, 23), H, closed)


def test_schedule_checks_its_own_settings():
    with pytest.raises(ValueError):
        Schedule(opens=dt.time(17), closes=dt.time(8))
    with pytest.raises(ZoneInfoNotFoundError):
        Schedule(time_zone="Mars/Olympus_Mons")

"""Business-day arithmetic on the clinic's calendar (weekdays and holidays)."""
import datetime as dt

import pytest

from smilepass.service.calendar import (
    Schedule,
    add_business_days,
    business_days_between,
    is_business_day,
    subtract_business_days,
)

D = dt.date
# The clinic's calendar (Mon–Fri) with three holidays.
HOLIDAYS = Schedule(holidays=frozenset({D(2026, 12, 25), D(2026, 12, 28), D(2027, 1, 1)}))


def test_weekdays_and_weekends():
    assert is_business_day(D(2026, 11, 20))  # Friday
    assert not is_business_day(D(2026, 11, 21)) and not is_business_day(D(2026, 11, 22))
    assert not is_business_day(D(2026, 12, 25), HOLIDAYS)


@pytest.mark.parametrize("start, days, expected", [
    (D(2026, 11, 16), 0, D(2026, 11, 16)),   # Monday, no offset
    (D(2026, 11, 16), 1, D(2026, 11, 17)),
    (D(2026, 11, 20), 1, D(2026, 11, 23)),   # Friday + 1 → Monday
    (D(2026, 11, 20), 2, D(2026, 11, 24)),
    (D(2026, 11, 21), 1, D(2026, 11, 23)),   # from a Saturday
    (D(2026, 11, 16), 5, D(2026, 11, 23)),   # a full week
    (D(2026, 11, 16), -1, D(2026, 11, 13)),  # Monday - 1 → Friday
    (D(2026, 11, 16), -2, D(2026, 11, 12)),
    (D(2026, 11, 22), -1, D(2026, 11, 20)),  # Sunday - 1 → Friday
    (D(2026, 11, 30), 1, D(2026, 12, 1)),    # month edge
    (D(2026, 12, 1), -1, D(2026, 11, 30)),
    (D(2027, 2, 26), 1, D(2027, 3, 1)),      # Friday at the end of February
])
def test_add_without_holidays(start, days, expected):
    assert add_business_days(start, days) == expected


def test_holidays_are_skipped_across_the_year_end():
    # Thu 24 Dec 2026: 25th (holiday, Fri), weekend, 28th (holiday) skipped.
    assert add_business_days(D(2026, 12, 24), 1, HOLIDAYS) == D(2026, 12, 29)
    assert add_business_days(D(2026, 12, 24), 3, HOLIDAYS) == D(2026, 12, 31)
    # Thu 31 Dec + 1: New Year's Day (Fri) and the weekend skipped.
    assert add_business_days(D(2026, 12, 31), 1, HOLIDAYS) == D(2027, 1, 4)
    assert subtract_business_days(D(2027, 1, 4), 1, HOLIDAYS) == D(2026, 12, 31)
    assert subtract_business_days(D(2027, 1, 4), 3, HOLIDAYS) == D(2026, 12, 29)
    assert add_business_days(D(2027, 1, 4), -4, HOLIDAYS) == D(2026, 12, 24)


def test_negative_offsets_mirror_positive_ones():
    start = D(2026, 12, 29)
    for n in range(0, 15):
        forward = add_business_days(start, n, HOLIDAYS)
        assert add_business_days(forward, -n, HOLIDAYS) == start
        assert business_days_between(start, forward, HOLIDAYS) == n
        assert business_days_between(forward, start, HOLIDAYS) == -n


def test_the_clinics_own_business_days_count():
    """One calendar for service levels and deliveries: a clinic open Monday to Saturday counts Saturdays."""
    six_days = Schedule(weekdays=frozenset(range(6)))
    assert add_business_days(D(2026, 11, 20), 1, six_days) == D(2026, 11, 21)  # Friday → Saturday
    assert add_business_days(D(2026, 11, 21), 1, six_days) == D(2026, 11, 23)  # Saturday → Monday
    assert business_days_between(D(2026, 11, 20), D(2026, 11, 23), six_days) == 2

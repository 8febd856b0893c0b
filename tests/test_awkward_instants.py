"""The time-sensitive rules at awkward instants, with the clock fixed (time-machine) and every expected
value worked out by hand in the comments, not by calling the rule again.

The instants: Friday 16:59 and 17:00 in the clinic's zone, Sunday 03:00, the day before a clinic
holiday, New Year's Eve 23:59 UTC for a clinic in Auckland (UTC+13 in summer: already New Year's Day
there), and both daylight-saving changes in Berlin (29 March 2026 02:00 CET → 03:00 CEST, 25 October
2026 03:00 CEST → 02:00 CET). Business hours are the default 08:00–17:00, Monday to Friday."""
import datetime as dt

import pytest

from smilepass import settings
from smilepass.cases import shipments
from smilepass.cases.eta import delivery_window, ships_on
from smilepass.insights.filters import last_weeks
from smilepass.insights.metrics import Scope
from smilepass.models import Holiday, Notification, Priority, Shipment, ShipmentState, Ticket, User
from smilepass.service import sla, warnings
from smilepass.service.calendar import (
    Schedule,
    add_business_days,
    add_business_time,
    business_days_between,
    business_time_between,
)
from smilepass.stewardship.retention import months_before
from smilepass.support import tickets, warranty

from .case_helpers import ADA, ROOT, SAM, in_db, make_case, make_shipment, user
from .conftest import PASSWORD
from .test_auth import request_reset, reset_link_from_outbox, sign_in

UTC = dt.UTC
BERLIN = Schedule(time_zone="Europe/Berlin")
AUCKLAND = Schedule(time_zone="Pacific/Auckland", holidays=frozenset({dt.date(2027, 1, 1), dt.date(2027, 1, 4)}))
HOUR = dt.timedelta(hours=1)


def utc(*args) -> dt.datetime:
    """A naive UTC datetime, as the database stores them."""
    return dt.datetime(*args)


# Instants, in UTC, with what they are on the clinic's wall clock.
FRIDAY_1659_BERLIN = utc(2026, 12, 4, 15, 59)  # Friday 4 December 16:59 CET
FRIDAY_1700_BERLIN = utc(2026, 12, 4, 16, 0)  # Friday 17:00 CET: closing time
SUNDAY_0300_BERLIN = utc(2026, 12, 6, 2, 0)  # Sunday 6 December 03:00 CET
NEW_YEARS_EVE_2359 = utc(2026, 12, 31, 23, 59)  # Friday 1 January 2027 12:59 NZDT in Auckland
SPRING_FORWARD = utc(2026, 3, 29, 1, 0)  # Sunday 29 March, 02:00 CET becomes 03:00 CEST
FALL_BACK = utc(2026, 10, 25, 1, 0)  # Sunday 25 October, 03:00 CEST becomes 02:00 CET


# Business hours --------------------------------------------------------------------------------------

@pytest.mark.parametrize("start, expected", [
    # One minute left on Friday, then 59 minutes from Monday 08:00 CET (07:00 UTC).
    (FRIDAY_1659_BERLIN, utc(2026, 12, 7, 7, 59)),
    # Closed at 17:00 sharp: the whole hour is Monday's, 08:00–09:00 CET.
    (FRIDAY_1700_BERLIN, utc(2026, 12, 7, 8, 0)),
    (SUNDAY_0300_BERLIN, utc(2026, 12, 7, 8, 0)),
])
def test_an_hour_of_business_time_from_friday_evening_and_sunday_night(start, expected):
    assert add_business_time(start, HOUR, BERLIN) == expected


def test_a_duration_ending_exactly_at_closing_time_ends_on_friday():
    assert add_business_time(FRIDAY_1659_BERLIN, dt.timedelta(minutes=1), BERLIN) == FRIDAY_1700_BERLIN


def test_the_day_before_a_clinic_holiday_skips_the_holiday_and_the_weekend():
    christmas = Schedule(time_zone="Europe/Berlin", holidays=frozenset({dt.date(2026, 12, 25)}))
    thursday_1630 = utc(2026, 12, 24, 15, 30)  # Thursday 24 December 16:30 CET
    # 30 minutes on Thursday; Friday 25th is the holiday; 30 minutes on Monday 28th from 08:00 CET.
    assert add_business_time(thursday_1630, HOUR, christmas) == utc(2026, 12, 28, 7, 30)
    assert business_time_between(thursday_1630, utc(2026, 12, 28, 7, 30), christmas) == HOUR


def test_new_years_eve_in_utc_is_new_years_day_in_auckland():
    # 12:59 on 1 January (a holiday there), then the weekend, then Monday 4th (the observed 2 January
    # holiday): the hour runs 08:00–09:00 NZDT on Tuesday 5 January, which is 20:00 UTC on Monday 4th.
    assert add_business_time(NEW_YEARS_EVE_2359, HOUR, AUCKLAND) == utc(2027, 1, 4, 20, 0)
    # Without the holidays, Friday 1 January is a working day: 12:59 + 1 h = 13:59 NZDT = 00:59 UTC.
    plain = Schedule(time_zone="Pacific/Auckland")
    assert add_business_time(NEW_YEARS_EVE_2359, HOUR, plain) == utc(2027, 1, 1, 0, 59)
    assert AUCKLAND.local_date(NEW_YEARS_EVE_2359) == dt.date(2027, 1, 1)


def test_business_hours_keep_their_local_times_across_both_daylight_saving_changes():
    # Spring: Friday 27 March 16:30 CET (15:30 UTC) + 1 h → Monday 30 March 08:30 CEST (06:30 UTC).
    assert add_business_time(utc(2026, 3, 27, 15, 30), HOUR, BERLIN) == utc(2026, 3, 30, 6, 30)
    # Friday 08:00–17:00 CET is 07:00–16:00 UTC; Monday's CEST hours are 06:00–15:00 UTC: 9 h each.
    assert business_time_between(utc(2026, 3, 27, 7, 0), utc(2026, 3, 30, 15, 0), BERLIN) == 18 * HOUR
    assert BERLIN.hours_on(dt.date(2026, 3, 30)) == (utc(2026, 3, 30, 6, 0), utc(2026, 3, 30, 15, 0))
    # Autumn: Friday 23 October 16:30 CEST (14:30 UTC) + 1 h → Monday 26 October 08:30 CET (07:30 UTC).
    assert add_business_time(utc(2026, 10, 23, 14, 30), HOUR, BERLIN) == utc(2026, 10, 26, 7, 30)
    assert BERLIN.hours_on(dt.date(2026, 10, 26)) == (utc(2026, 10, 26, 7, 0), utc(2026, 10, 26, 16, 0))
    # The change itself happens on a closed Sunday: nothing counts from Saturday noon to Monday 08:00.
    nothing = dt.timedelta(0)
    assert business_time_between(SPRING_FORWARD - dt.timedelta(hours=12), utc(2026, 3, 30, 6, 0), BERLIN) == nothing
    assert business_time_between(FALL_BACK - dt.timedelta(hours=12), utc(2026, 10, 26, 7, 0), BERLIN) == nothing


# Business days and the delivery estimate ---------------------------------------------------------------

def test_business_days_around_a_weekend_and_a_holiday():
    christmas = Schedule(holidays=frozenset({dt.date(2026, 12, 25)}))
    # From Thursday 24 December: Friday is the holiday, so Monday 28th is the first business day.
    assert add_business_days(dt.date(2026, 12, 24), 1, christmas) == dt.date(2026, 12, 28)
    # From Sunday 6 December: Monday 7th is the first, Tuesday 8th the second.
    assert add_business_days(dt.date(2026, 12, 6), 2) == dt.date(2026, 12, 8)
    # Thursday 24th to Thursday 31st: Mon 28, Tue 29, Wed 30, Thu 31.
    assert business_days_between(dt.date(2026, 12, 24), dt.date(2026, 12, 31), christmas) == 4


def test_delivery_window_from_a_friday_a_sunday_and_the_day_before_a_holiday():
    # Ships Friday 4 December, 2 days in transit: expected Tuesday 8th; window Mon 7th (not before the
    # first business day after shipping, which beats Friday 4th) to Thursday 10th.
    assert delivery_window(dt.date(2026, 12, 4), 2, BERLIN) == (dt.date(2026, 12, 7), dt.date(2026, 12, 10))
    # Ships on Sunday 6th: expected Tuesday 8th again, so the same window.
    assert delivery_window(dt.date(2026, 12, 6), 2, BERLIN) == (dt.date(2026, 12, 7), dt.date(2026, 12, 10))
    # Ships Thursday 24th, Friday 25th a holiday: expected Tuesday 29th; window Monday 28th to Thursday 31st.
    christmas = Schedule(time_zone="Europe/Berlin", holidays=frozenset({dt.date(2026, 12, 25)}))
    assert delivery_window(dt.date(2026, 12, 24), 2, christmas) == (dt.date(2026, 12, 28), dt.date(2026, 12, 31))


def test_a_parcel_leaving_on_new_years_eve_utc_left_on_new_years_day_in_auckland():
    in_transit = ShipmentState.IN_TRANSIT.value
    assert ships_on(in_transit, dt.date(2026, 12, 20), NEW_YEARS_EVE_2359, AUCKLAND) == dt.date(2027, 1, 1)
    # From Friday 1 January (a holiday), two days: Tue 5th, Wed 6th (Monday 4th is a holiday too).
    # Window: Tuesday 5th (first business day after) to Friday 8th.
    assert delivery_window(dt.date(2027, 1, 1), 2, AUCKLAND) == (dt.date(2027, 1, 5), dt.date(2027, 1, 8))
    # Sunday 29 March 00:30 CET is still Sunday in Berlin (23:30 UTC on Saturday).
    assert ships_on(in_transit, dt.date(2026, 3, 20), utc(2026, 3, 28, 23, 30), BERLIN) == dt.date(2026, 3, 29)


# Dates counted in days: tracker expiry, retention, insights weeks --------------------------------------

def test_tracker_leaves_the_active_views_thirty_days_after_delivery_to_the_minute():
    delivered = Shipment(state=ShipmentState.DELIVERED.value, delivered_at=utc(2026, 12, 1, 23, 59))
    assert shipments.is_active(delivered, now=NEW_YEARS_EVE_2359 - dt.timedelta(minutes=1))  # 29 d 23 h 59 min
    assert not shipments.is_active(delivered, now=NEW_YEARS_EVE_2359)  # 30 days exactly
    # Delivered just before the autumn change: 30 days are 30 × 24 hours of UTC, whatever Berlin's clocks did.
    autumn = Shipment(state=ShipmentState.DELIVERED.value, delivered_at=utc(2026, 10, 25, 0, 30))
    assert shipments.is_active(autumn, now=utc(2026, 11, 24, 0, 29))
    assert not shipments.is_active(autumn, now=utc(2026, 11, 24, 0, 30))


def test_retention_cutoff_months_back_from_new_years_eve():
    assert months_before(NEW_YEARS_EVE_2359, 12) == utc(2025, 12, 31, 23, 59)
    assert months_before(NEW_YEARS_EVE_2359, 10) == utc(2026, 2, 28, 23, 59)  # February has no 31st
    assert months_before(utc(2028, 3, 31, 1, 0), 1) == utc(2028, 2, 29, 1, 0)  # a leap year
    assert months_before(SPRING_FORWARD, 1) == utc(2026, 2, 28, 1, 0)  # 29 February 2026 does not exist


def test_insights_weeks_run_monday_to_sunday_in_utc_across_new_year():
    start, end = last_weeks(dt.date(2026, 12, 31), 4)
    assert (start, end) == (dt.date(2026, 12, 4), dt.date(2026, 12, 31))  # 28 days, the last one included
    scope = Scope(dt.datetime.combine(start, dt.time()), dt.datetime.combine(end + dt.timedelta(days=1), dt.time()))
    # Friday 4 December lies in the week of Monday 30 November; Thursday 31st in the week of Monday 28th.
    assert scope.weeks() == [dt.date(2026, 11, 30), dt.date(2026, 12, 7), dt.date(2026, 12, 14),
                             dt.date(2026, 12, 21), dt.date(2026, 12, 28)]
    # A range ending on a Sunday at midnight does not spill into the next week.
    sunday = Scope(utc(2026, 12, 7), utc(2026, 12, 14))
    assert sunday.weeks() == [dt.date(2026, 12, 7)]


# The clinic's own day: warranty and delivery dates ---------------------------------------------------

@pytest.fixture
def auckland(app, make_user, time_machine):
    make_user(ADA)
    make_user(SAM, "support")
    make_user(ROOT, "admin")
    in_db(lambda: settings.set_value("time_zone", "Pacific/Auckland", user(ROOT)))
    time_machine.move_to(NEW_YEARS_EVE_2359.replace(tzinfo=UTC), tick=False)


def test_today_is_the_clinics_date_not_utcs(app, auckland):
    with app.app_context():
        assert in_db(sla.clinic_today) == dt.date(2027, 1, 1)


def test_warranty_days_count_in_the_clinics_calendar(app, auckland):
    with app.app_context():
        today = in_db(sla.clinic_today)
    # 1 January 2027 is day 90 after 3 October 2026 (29 + 30 + 31 = 90 days to 31 December, plus 1 = 91
    # from 2 October): 3 October is still covered, 2 October is not.
    assert warranty.check(dt.date(2026, 10, 3), 90, today).inside
    assert warranty.check(dt.date(2026, 10, 3), 90, today).days_ago == 90
    assert not warranty.check(dt.date(2026, 10, 2), 90, today).inside


def test_a_delivery_on_new_years_day_in_auckland_counts_from_new_years_day(app, auckland):
    case = in_db(lambda: make_case(ADA))
    shipment = in_db(lambda: make_shipment(case))
    # Delivered at 10:30 NZDT on 1 January, which is 21:30 UTC on 31 December.
    in_db(lambda: shipments.advance(shipment, user(SAM), carrier="DHL", tracking_number="1Z", at=utc(2026, 12, 31, 20)))
    in_db(lambda: shipments.advance(Shipment.get_by_id(shipment.id), user(SAM), at=utc(2026, 12, 31, 21, 30)))
    with app.app_context():
        assert in_db(lambda: warranty.delivery_date(None, case.id)) == (dt.date(2027, 1, 1), "shipment")


def test_a_clinician_in_auckland_may_give_new_years_day_as_the_delivery_date(app, auckland, client):
    in_db(lambda: make_case(ADA, number="AL-1"))
    assert sign_in(client, ADA, PASSWORD).status_code == 303
    form = {"title": "Tray 1 cracked", "description": "Cracked on the first day.", "priority": "1",
            "category": "Warranty & Replacement", "case_number": "AL-1", "last_aligner_delivered": "2027-01-01"}
    page = client.get("/support/").get_data(as_text=True)
    assert 'max="2027-01-01"' in page
    filed = client.post("/support/tickets", form, content_type="multipart/form-data")
    assert filed.status_code == 303, filed.get_data(as_text=True)
    tomorrow = {**form, "last_aligner_delivered": "2027-01-02"}
    refused = client.post("/support/tickets", tomorrow, content_type="multipart/form-data")
    assert refused.status_code == 422 and "The delivery date cannot be in the future." in refused.get_data(as_text=True)


# Service levels in Berlin: due times, warnings, breaches -------------------------------------------

@pytest.fixture
def berlin(app, make_user):
    make_user(ADA)
    make_user(SAM, "support")
    make_user(ROOT, "admin")
    in_db(lambda: settings.set_value("time_zone", "Europe/Berlin", user(ROOT)))
    in_db(lambda: User.update(escalation_role="supervisor").where(User.email == SAM).execute())


def file_at(now: dt.datetime, priority=Priority.URGENT) -> Ticket:
    made = in_db(lambda: tickets.create_ticket(user(ADA), "Aligner cracked", "Tray 7 split.", priority,
                                               "Warranty & Replacement", now=now))
    return in_db(lambda: Ticket.get_by_id(made.id))


def test_urgent_ticket_filed_at_1659_on_friday_is_due_on_monday(app, berlin):
    with app.app_context():
        ticket = file_at(FRIDAY_1659_BERLIN)
    # 4 h urgent response: 1 min on Friday, then 3 h 59 min from Monday 08:00 CET → 11:59 CET = 10:59 UTC.
    assert ticket.response_due_at == utc(2026, 12, 7, 10, 59)
    assert ticket.next_due_at == ticket.response_due_at


def test_ticket_filed_at_1700_on_friday_or_sunday_night_starts_counting_on_monday(app, berlin):
    with app.app_context():
        at_closing = file_at(FRIDAY_1700_BERLIN)
        sunday = file_at(SUNDAY_0300_BERLIN)
    # 08:00 + 4 h = 12:00 CET = 11:00 UTC, for both.
    assert at_closing.response_due_at == sunday.response_due_at == utc(2026, 12, 7, 11, 0)


def test_warning_at_1659_on_friday_for_a_deadline_31_business_minutes_away(app, berlin, time_machine):
    with app.app_context():
        due_monday_0830 = file_at(FRIDAY_1659_BERLIN - dt.timedelta(days=1))
        due_monday_0900 = file_at(FRIDAY_1659_BERLIN - dt.timedelta(days=1))
    # 08:30 CET on Monday: 1 min on Friday + 30 min on Monday = 31 business minutes, inside the 60.
    in_db(lambda: Ticket.update(next_due_at=utc(2026, 12, 7, 7, 30)).where(Ticket.id == due_monday_0830.id).execute())
    # 09:00:01 CET: 1 + 60 min + 1 s, one second beyond the window.
    in_db(lambda: Ticket.update(next_due_at=utc(2026, 12, 7, 8, 0, 1)).where(Ticket.id == due_monday_0900.id)
          .execute())
    time_machine.move_to(FRIDAY_1659_BERLIN.replace(tzinfo=UTC), tick=False)
    with app.app_context():
        assert in_db(lambda: warnings.sla_warnings(FRIDAY_1659_BERLIN)) == 1
        # At closing time and all weekend, the same deadline is not warned about again.
        time_machine.move_to(SUNDAY_0300_BERLIN.replace(tzinfo=UTC), tick=False)
        assert in_db(lambda: warnings.sla_warnings(FRIDAY_1700_BERLIN)) == 0
        assert in_db(lambda: warnings.sla_warnings(SUNDAY_0300_BERLIN)) == 0
    warned = in_db(lambda: [n.ticket_id for n in Notification.select().where(Notification.kind == "sla_warning")])
    assert warned == [due_monday_0830.id]


def test_breach_is_marked_only_after_the_deadline_passes(app, berlin):
    with app.app_context():
        ticket = file_at(utc(2026, 12, 4, 12, 0))  # Friday 13:00 CET + 4 h = 17:00 CET, closing time
        assert ticket.response_due_at == FRIDAY_1700_BERLIN
        assert in_db(lambda: sla.mark_breaches(FRIDAY_1659_BERLIN)) == []
        assert in_db(lambda: sla.mark_breaches(FRIDAY_1700_BERLIN)) == []  # due at 17:00, not late yet
        late = in_db(lambda: sla.mark_breaches(FRIDAY_1700_BERLIN + dt.timedelta(seconds=1)))
    assert [(t.id, kind) for t, kind in late] == [(ticket.id, sla.RESPONSE)]


def test_due_time_across_the_spring_change_and_a_holiday_eve(app, berlin):
    in_db(lambda: Holiday.create(date=dt.date(2026, 3, 30), name="Clinic closed"))
    with app.app_context():
        # Friday 27 March 16:00 CET (15:00 UTC), high priority 8 h: 1 h on Friday, Monday 30th a holiday,
        # 7 h from Tuesday 08:00 CEST (06:00 UTC) → 15:00 CEST = 13:00 UTC.
        ticket = file_at(utc(2026, 3, 27, 15, 0), Priority.HIGH)
    assert ticket.response_due_at == utc(2026, 3, 31, 13, 0)


# Sign-in lockout and reset links: UTC durations across the autumn change -----------------------------

def test_lockout_lasts_exactly_twenty_minutes_across_the_autumn_change(client, make_user, time_machine):
    time_machine.move_to(FALL_BACK.replace(tzinfo=UTC) - dt.timedelta(minutes=10), tick=False)  # 02:50 CEST
    make_user(ADA)
    for _ in range(3):
        sign_in(client, ADA, "wrong-password-1")
    # Locked until 01:10 UTC (02:10 CET, after the clocks went back): 20 minutes, not 80 or -40.
    time_machine.move_to(FALL_BACK.replace(tzinfo=UTC) + dt.timedelta(minutes=9, seconds=59), tick=False)
    assert sign_in(client, ADA, PASSWORD).status_code == 429
    time_machine.move_to(FALL_BACK.replace(tzinfo=UTC) + dt.timedelta(minutes=10), tick=False)
    assert sign_in(client, ADA, PASSWORD).status_code == 303


def test_reset_link_requested_on_new_years_eve_works_for_exactly_an_hour(client, make_user, time_machine):
    time_machine.move_to(NEW_YEARS_EVE_2359.replace(tzinfo=UTC), tick=False)
    make_user(ADA)
    request_reset(client, ADA)
    link = reset_link_from_outbox(ADA)
    time_machine.move_to(utc(2027, 1, 1, 0, 58, 59).replace(tzinfo=UTC), tick=False)
    assert client.get(link).status_code == 200
    time_machine.move_to(utc(2027, 1, 1, 0, 59).replace(tzinfo=UTC), tick=False)
    assert client.get(link).status_code == 404

"""The delivery estimate: shipping day + the clinic's transit time ± 2 business days, never before the
day after shipping; from the actual shipping day once in transit; the carrier's date once given; the
same on the case page, the Shipments view, the patient page and in emails."""
import datetime as dt
import re

import pytest
import time_machine

from smilepass import settings
from smilepass.cases import eta, shipments
from smilepass.models import Holiday, OutboxMail, Shipment
from smilepass.service.calendar import Schedule

from .case_helpers import ROOT, SAM, in_db, make_case, make_shipment, reload, user

D = dt.date
WEEKDAYS = Schedule()
HOLIDAYS = Schedule(holidays=frozenset({D(2026, 12, 25), D(2026, 12, 28), D(2027, 1, 1)}))


@pytest.mark.parametrize("ships_on, transit, schedule, expected", [
    # Seen on 4 December: shipping Monday 7th showed "3 Dec – 9 Dec", before it even shipped.
    (D(2026, 12, 7), 2, WEEKDAYS, (D(2026, 12, 8), D(2026, 12, 11))),
    # Friday: the weekend does not count; Monday is the earliest.
    (D(2026, 11, 20), 2, WEEKDAYS, (D(2026, 11, 23), D(2026, 11, 26))),
    # A Saturday shipping day counts from the Monday after.
    (D(2026, 11, 21), 2, WEEKDAYS, (D(2026, 11, 23), D(2026, 11, 26))),
    # Longer transit: the window centres on shipping + 5 business days.
    (D(2026, 11, 16), 5, WEEKDAYS, (D(2026, 11, 19), D(2026, 11, 25))),
    # No transit time: still not before the next business day.
    (D(2026, 11, 18), 0, WEEKDAYS, (D(2026, 11, 19), D(2026, 11, 20))),
    # Christmas and New Year holidays stretch the window.
    (D(2026, 12, 23), 2, HOLIDAYS, (D(2026, 12, 24), D(2026, 12, 31))),
    (D(2026, 12, 31), 2, HOLIDAYS, (D(2027, 1, 4), D(2027, 1, 7))),
])
def test_window_from_the_shipping_day(ships_on, transit, schedule, expected):
    assert eta.delivery_window(ships_on, transit, schedule) == expected


def test_shipping_day_is_the_target_until_it_ships_then_the_actual_day_in_the_clinics_zone():
    auckland = Schedule(time_zone="Pacific/Auckland")
    target = D(2026, 12, 1)
    assert eta.ships_on("in_production", target, None, auckland) == target
    # Left 2026-12-03 20:00 UTC, which is already the 4th in Auckland (UTC+13).
    left = dt.datetime(2026, 12, 3, 20, 0)
    assert eta.ships_on("in_transit", target, left, auckland) == D(2026, 12, 4)
    assert eta.ships_on("in_transit", target, left, WEEKDAYS) == D(2026, 12, 3)


@pytest.fixture
def friday():
    """Friday 2026-12-04, 10:00 UTC, from before anyone signs in (list it before the user fixtures)."""
    with time_machine.travel(dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.UTC), tick=False) as traveller:
        yield traveller


@pytest.fixture
def tracker(friday, clinician, support, admin):
    return make_shipment(make_case(), target=D(2026, 12, 7))  # a Monday


def test_estimate_follows_the_shipment(tracker):
    assert in_db(lambda: eta.estimate(tracker)) == ("window", (D(2026, 12, 8), D(2026, 12, 11)))
    # The clinic's transit time is a setting.
    in_db(lambda: settings.set_value("transit_days", "4", user(ROOT)))
    assert in_db(lambda: eta.estimate(tracker)) == ("window", (D(2026, 12, 9), D(2026, 12, 15)))
    in_db(lambda: settings.set_value("transit_days", "2", user(ROOT)))
    # It left late, on Wednesday the 9th: the window moves with the actual day.
    with time_machine.travel(dt.datetime(2026, 12, 9, 15, 0, tzinfo=dt.UTC), tick=False):
        in_db(lambda: shipments.advance(tracker, user(SAM), carrier="UPS", tracking_number="1Z"))
    moved = reload(Shipment, tracker.id)
    assert in_db(lambda: eta.estimate(moved)) == ("window", (D(2026, 12, 10), D(2026, 12, 15)))
    in_db(lambda: shipments.set_carrier_eta(moved, user(SAM), D(2026, 12, 12)))
    assert in_db(lambda: eta.estimate(reload(Shipment, tracker.id))) == ("carrier", D(2026, 12, 12))
    with time_machine.travel(dt.datetime(2026, 12, 11, 9, 30, tzinfo=dt.UTC), tick=False):
        in_db(lambda: shipments.advance(reload(Shipment, tracker.id), user(SAM)))
    assert in_db(lambda: eta.estimate(reload(Shipment, tracker.id))) == ("delivered", D(2026, 12, 11))


def test_every_screen_and_mail_shows_the_same_window(friday, clinician, support, admin, client):
    in_db(lambda: Holiday.create(date=D(2026, 12, 10), name="Clinic closed"))
    case = make_case()
    tracker = make_shipment(case, target=D(2026, 12, 7))
    # Monday 7th + 2 business days, Thursday 10th closed: expected Wednesday 9th → Tue 8th to Mon 14th.
    window = ("2026-12-08", "2026-12-14")
    case_page = clinician.get(f"/cases/{case.id}").get_data(as_text=True)
    assert re.search(r'<dd class="eta">([^<]+)</dd>', case_page).group(1) == " – ".join(window)
    listing = support.get("/shipments/").get_data(as_text=True)
    assert " – ".join(window) in listing
    token = in_db(lambda: shipments.create_link(reload(Shipment, tracker.id), user(SAM))[1])
    status = client.get(f"/p/{token}").get_data(as_text=True)
    assert "8 Dec 2026" in status and "14 Dec 2026" in status
    support.get(f"/cases/{case.id}")
    response = support.post(f"/cases/shipments/{tracker.id}/advance",
                            {"to": "in_transit", "carrier": "UPS", "tracking_number": "1Z", "carrier_eta": ""})
    assert response.status_code == 303
    mail = in_db(lambda: OutboxMail.select().order_by(OutboxMail.id.desc()).first())
    # In transit since Friday 4th: Mon 7th to Fri 11th (expected Tue 8th, Thursday closed).
    assert "Expected delivery: between 2026-12-07 and 2026-12-11 (estimate)" in mail.body

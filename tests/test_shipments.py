"""Shipment tracker rules: one step at a time, carrier and tracking for In Transit, the carrier's
date over the window, admin-only reopening with a reason, audit rows, 30-day active window."""
import datetime as dt

import pytest

from smilepass.cases import eta, shipments
from smilepass.models import AuditLog, Case, Holiday, Shipment, ShipmentState, utcnow

from .case_helpers import ADA, ROOT, SAM, in_db, make_case, make_shipment, reload, user


@pytest.fixture
def tracker(clinician, support, admin):
    case = make_case()
    return make_shipment(case)


def test_new_shipment_starts_in_production_and_sets_case_state(tracker):
    assert tracker.state == ShipmentState.IN_PRODUCTION.value
    assert tracker.in_production_at is not None and tracker.in_transit_at is None
    assert reload(Case, tracker.case_id).latest_state == "in_production"
    assert in_db(lambda: AuditLog.select().where(AuditLog.action == "shipment_create").count()) == 1


def test_steps_in_order_with_times(tracker):
    sam = user(SAM)
    in_db(lambda: shipments.advance(tracker, sam, carrier="UPS", tracking_number="1Z999"))
    s = reload(Shipment, tracker.id)
    assert s.state == "in_transit" and s.in_transit_at and (s.carrier, s.tracking_number) == ("UPS", "1Z999")
    assert reload(Case, tracker.case_id).latest_state == "in_transit"
    in_db(lambda: shipments.advance(s, sam))
    s = reload(Shipment, tracker.id)
    assert s.state == "delivered" and s.delivered_at >= s.in_transit_at >= s.in_production_at
    with pytest.raises(shipments.ShipmentRefused, match="already delivered"):
        in_db(lambda: shipments.advance(s, sam))
    actions = in_db(lambda: [a.action for a in AuditLog.select().where(AuditLog.object_type == "shipment")
                             .order_by(AuditLog.id)])
    assert actions == ["shipment_create", "shipment_advance", "shipment_advance"]


def test_in_transit_needs_carrier_and_tracking(tracker):
    sam = user(SAM)
    for carrier, number in (("", "1Z"), ("UPS", ""), ("  ", "  ")):
        with pytest.raises(shipments.ShipmentRefused, match="carrier and the tracking number"):
            in_db(lambda: shipments.advance(tracker, sam, carrier=carrier, tracking_number=number))
    assert reload(Shipment, tracker.id).state == "in_production"


def test_no_skipping_and_stale_requests_refused(tracker):
    sam = user(SAM)
    with pytest.raises(shipments.ShipmentRefused, match="next step is In Transit"):
        in_db(lambda: shipments.advance(tracker, sam, to_state="delivered"))
    in_db(lambda: shipments.advance(tracker, sam, to_state="in_transit", carrier="DHL", tracking_number="JD1"))
    # A second click on the same "Mark In Transit" button does not deliver it.
    with pytest.raises(shipments.ShipmentRefused):
        in_db(lambda: shipments.advance(reload(Shipment, tracker.id), sam, to_state="in_transit",
                                        carrier="DHL", tracking_number="JD1"))
    assert reload(Shipment, tracker.id).state == "in_transit"


def test_clinicians_cannot_move_shipments(tracker):
    with pytest.raises(shipments.ShipmentRefused):
        in_db(lambda: shipments.advance(tracker, user(ADA), carrier="UPS", tracking_number="1"))


def _delivered(tracker):
    sam = user(SAM)
    in_db(lambda: shipments.advance(tracker, sam, carrier="UPS", tracking_number="1Z"))
    in_db(lambda: shipments.advance(reload(Shipment, tracker.id), sam))
    return reload(Shipment, tracker.id)


def test_only_admin_with_reason_reopens(tracker):
    s = _delivered(tracker)
    with pytest.raises(shipments.ShipmentRefused, match="Only an admin"):
        in_db(lambda: shipments.reopen(s, user(SAM), "Carrier returned the parcel"))
    with pytest.raises(shipments.ShipmentRefused, match="Write why"):
        in_db(lambda: shipments.reopen(s, user(ROOT), "  "))
    in_db(lambda: shipments.reopen(s, user(ROOT), "Carrier returned the parcel"))
    s = reload(Shipment, tracker.id)
    assert s.state == "in_transit" and s.delivered_at is None
    row = in_db(lambda: AuditLog.get(AuditLog.action == "shipment_reopen"))
    assert "Carrier returned the parcel" in row.detail and row.actor_email == ROOT
    with pytest.raises(shipments.ShipmentRefused, match="Only a delivered"):
        in_db(lambda: shipments.reopen(s, user(ROOT), "again, no"))


def test_carrier_date_replaces_the_window(tracker):
    in_db(lambda: Holiday.create(date=dt.date(2026, 11, 23), name="Test holiday"))
    kind, window = in_db(lambda: eta.estimate(tracker))
    # Friday target 2026-11-20, two days in transit: expected Wed 25th (Monday 23rd is a holiday), from the
    # first business day after shipping (Tue 24th) to two business days after the expected day (Fri 27th).
    assert kind == "window" and window == (dt.date(2026, 11, 24), dt.date(2026, 11, 27))
    in_db(lambda: shipments.advance(tracker, user(SAM), carrier="UPS", tracking_number="1Z",
                                    carrier_eta=dt.date(2026, 11, 26)))
    assert in_db(lambda: eta.estimate(reload(Shipment, tracker.id))) == ("carrier", dt.date(2026, 11, 26))


def test_active_until_thirty_days_after_delivery(tracker):
    s = _delivered(tracker)
    now = utcnow()
    assert shipments.is_active(s, now)
    assert shipments.is_active(s, s.delivered_at + dt.timedelta(days=29, hours=23))
    assert not shipments.is_active(s, s.delivered_at + dt.timedelta(days=30))
    later = s.delivered_at + dt.timedelta(days=31)
    active = in_db(lambda: Shipment.select().where(shipments.active_condition(later)).count())
    assert active == 0
    assert in_db(lambda: Shipment.select().where(shipments.active_condition(now)).count()) == 1


def test_phases_shipped_together_are_one_tracker(clinician, support):
    case = make_case()
    make_shipment(case, phases="Aligners 1–12, attachment template")
    assert in_db(lambda: Shipment.select().where(Shipment.case == case.id).count()) == 1
    with pytest.raises(shipments.ShipmentRefused):
        make_shipment(case, phases="   ")


def test_staff_set_and_clear_the_carriers_date_of_a_shipment_in_transit(tracker, support, clinician):
    url = f"/cases/shipments/{tracker.id}/carrier-date"
    page = f"/cases/shipments/{tracker.id}"
    support.get(page)
    # Not in transit yet: refused with the reason, nothing stored.
    refused = support.post(url, {"carrier_eta": "2026-11-26"})
    assert refused.status_code == 422 and "in transit" in refused.get_data(as_text=True)
    in_db(lambda: shipments.advance(tracker, user(SAM), carrier="UPS", tracking_number="1Z"))
    assert f'action="/cases/shipments/{tracker.id}/carrier-date"' in support.get(page).get_data(as_text=True)

    assert support.post(url, {"carrier_eta": "2026-11-26"}).status_code == 303
    assert reload(Shipment, tracker.id).carrier_eta == dt.date(2026, 11, 26)
    fragment = support.post(url, {"carrier_eta": "2026-11-27"}, htmx=True)
    assert fragment.status_code == 200 and "2026-11-27" in fragment.get_data(as_text=True)
    assert "<html" not in fragment.get_data(as_text=True)
    assert support.post(url, {"carrier_eta": ""}).status_code == 303
    assert in_db(lambda: eta.estimate(reload(Shipment, tracker.id)))[0] == "window"
    details = in_db(lambda: [a.detail for a in AuditLog.select().where(AuditLog.action == "shipment_eta")
                             .order_by(AuditLog.id)])
    assert details == ["carrier date 2026-11-26", "carrier date 2026-11-27", "carrier date cleared"]

    # The treating clinician sees the date but cannot set it; a form without the token is refused.
    assert "carrier-date" not in clinician.get(page).get_data(as_text=True)
    assert clinician.post(url, {"carrier_eta": "2026-12-01"}).status_code == 404
    assert support.post(url, {"carrier_eta": "2026-12-01"}, csrf=False).status_code == 400
    assert reload(Shipment, tracker.id).carrier_eta is None

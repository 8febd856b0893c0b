"""The per-state counts behind the case list's and the Shipments view's quick filters are kept by
database triggers: every write path keeps them equal to counting the rows themselves."""
import datetime as dt
import re

import peewee as pw
import pytest

from smilepass import db
from smilepass.cases import shipments
from smilepass.models import Case, CaseCount, Shipment, ShipmentCount, utcnow

from .case_helpers import ADA, BOB, ROOT, SAM, in_db, make_case, make_shipment, user


def stored_case_counts():
    rows = CaseCount.select(CaseCount.clinician, CaseCount.state, CaseCount.n).where(CaseCount.n != 0).tuples()
    return {(c, s): n for c, s, n in rows}


def live_case_counts():
    rows = (Case.select(Case.clinician, Case.latest_state, pw.fn.COUNT(Case.id))
            .group_by(Case.clinician, Case.latest_state).tuples())
    return {(c, s): n for c, s, n in rows}


def stored_shipment_counts():
    return {s: n for s, n in ShipmentCount.select(ShipmentCount.state, ShipmentCount.n).tuples() if n}


def live_shipment_counts():
    return {
        s: n for s, n in Shipment.select(Shipment.state, pw.fn.COUNT(Shipment.id)).group_by(Shipment.state).tuples()
    }


def assert_counts_match():
    assert in_db(stored_case_counts) == in_db(live_case_counts)
    assert in_db(stored_shipment_counts) == in_db(live_shipment_counts)


@pytest.fixture
def people(clinician, other_clinician, support, admin):
    return {"ada": clinician, "bob": other_clinician, "sam": support, "root": admin}


def test_counts_follow_every_kind_of_change(people):
    first = make_case(ADA, "C-1")
    second = make_case(ADA, "C-2")
    make_case(BOB, "C-3")
    assert_counts_match()
    tracker = make_shipment(first)
    make_shipment(second)
    assert_counts_match()
    in_db(lambda: shipments.advance(tracker, user(SAM), carrier="UPS", tracking_number="1Z"))
    in_db(lambda: shipments.advance(tracker, user(SAM)))
    assert_counts_match()
    in_db(lambda: shipments.reopen(tracker, user(ROOT), "Parcel returned to sender"))
    assert_counts_match()
    # Staff hand a case to another clinician: its count moves with it.
    in_db(lambda: Case.update(clinician=user(BOB).id).where(Case.id == second.id).execute())
    assert_counts_match()
    # Bulk loads and deletes go around the application code entirely.
    in_db(lambda: Case.insert_many([
        {"case_number": f"B-{i}", "patient_name": "Bulk", "patient_dob": dt.date(2000, 1, 1),
         "clinician": user(ADA).id, "latest_state": "delivered"} for i in range(30)]).execute())
    in_db(lambda: Shipment.delete().where(Shipment.case == second.id).execute())
    in_db(lambda: shipments.refresh_case_state(second.id))
    in_db(lambda: Case.delete().where(Case.case_number == "C-3").execute())
    assert_counts_match()
    counts = in_db(stored_case_counts)
    assert counts[(user(ADA).id, "delivered")] == 30
    assert counts[(user(ADA).id, "in_transit")] == 1


def _chip_counts(html):
    return {
        label: int(n)
        for label, n in re.findall(r'class="chip[^"]*"[^>]*>([A-Za-z ]+) <span class="count">(\d+)</span>', html)
    }


def test_quick_filter_counts_on_the_pages(people):
    ada_case = make_case(ADA, "C-1")
    make_case(ADA, "C-2")
    bob_case = make_case(BOB, "C-3")
    ada_tracker = make_shipment(ada_case)
    make_shipment(bob_case)
    in_db(lambda: shipments.advance(ada_tracker, user(SAM), carrier="UPS", tracking_number="1Z"))

    ada_cases = _chip_counts(people["ada"].get("/cases/").get_data(as_text=True))
    assert ada_cases == {"All": 2, "In Production": 0, "In Transit": 1, "Delivered": 0, "No shipment": 1}
    staff_cases = _chip_counts(people["sam"].get("/cases/").get_data(as_text=True))
    assert staff_cases == {"All": 3, "In Production": 1, "In Transit": 1, "Delivered": 0, "No shipment": 1}
    # A search counts what it found, not the maintained totals.
    searched = _chip_counts(people["sam"].get("/cases/?q=C-3").get_data(as_text=True))
    assert searched["All"] == 1 and searched["In Production"] == 1

    ada_ships = _chip_counts(people["ada"].get("/shipments/").get_data(as_text=True))
    assert ada_ships == {"All": 1, "In Production": 0, "In Transit": 1, "Delivered": 0}
    staff_ships = _chip_counts(people["sam"].get("/shipments/").get_data(as_text=True))
    assert staff_ships == {"All": 2, "In Production": 1, "In Transit": 1, "Delivered": 0}


def test_deliveries_older_than_thirty_days_leave_the_active_counts(people):
    old, recent = make_case(ADA, "C-OLD"), make_case(ADA, "C-NEW")
    for case, days_ago in ((old, 31), (recent, 3)):
        tracker = make_shipment(case)
        in_db(lambda: shipments.advance(tracker, user(SAM), carrier="UPS", tracking_number="1Z"))
        in_db(lambda: shipments.advance(tracker, user(SAM), at=utcnow() - dt.timedelta(days=days_ago)))
    for who in ("ada", "sam"):
        active = people[who].get("/shipments/").get_data(as_text=True)
        assert _chip_counts(active)["Delivered"] == 1, who
        assert "C-NEW" in active and "C-OLD" not in active
        history = people[who].get("/shipments/?history=1").get_data(as_text=True)
        assert _chip_counts(history)["Delivered"] == 2, who
        assert "C-OLD" in history


def test_shipment_rows_show_the_delivery_column(people):
    case = make_case(ADA, "C-1")
    make_shipment(case, target=dt.date(2026, 11, 20))  # a Friday
    html = people["ada"].get("/shipments/?state=in-production").get_data(as_text=True)
    assert "2026-11-23 – 2026-11-26" in html  # target + 2 days in transit ± 2, not before the Monday after
    other = people["bob"].get("/shipments/").get_data(as_text=True)
    assert "C-1" not in other


def planner_case_rows():
    """How many rows the query planner believes the case table holds (None: it has no statistics)."""
    if db.is_postgres():
        rows = db.database.execute_sql("SELECT reltuples FROM pg_class WHERE relname = 'case'").fetchall()
        return int(rows[0][0]) if rows and rows[0][0] >= 0 else None
    rows = db.database.execute_sql("SELECT stat FROM sqlite_stat1 WHERE tbl = 'case' AND idx IS NOT NULL").fetchall()
    # Each index's statistics start with the table's row count; they agree.
    counts = {int(stat.split()[0]) for (stat,) in rows}
    assert len(counts) <= 1, counts
    return counts.pop() if counts else None


def test_statistics_refresh_shows_the_planner_this_databases_rows(app, clinician):
    ada = user(ADA).id
    in_db(lambda: Case.insert_many([
        {"case_number": f"S-{i}", "patient_name": "Stats", "patient_dob": dt.date(2000, 1, 1),
         "clinician": ada, "latest_state": ""} for i in range(40)]).execute())
    assert in_db(planner_case_rows) != 40  # a bulk load alone leaves the planner's picture stale
    with app.app_context():
        db.refresh_statistics()
    assert in_db(planner_case_rows) == 40


def test_a_case_handed_to_another_clinician_takes_its_shipments_along(people):
    case = make_case(ADA, "C-MOVE")
    tracker = make_shipment(case)
    assert in_db(lambda: Shipment.get_by_id(tracker.id).clinician_id) == user(ADA).id
    assert "C-MOVE" in people["ada"].get("/shipments/").get_data(as_text=True)
    in_db(lambda: Case.update(clinician=user(BOB).id).where(Case.id == case.id).execute())
    assert in_db(lambda: Shipment.get_by_id(tracker.id).clinician_id) == user(BOB).id
    assert "C-MOVE" not in people["ada"].get("/shipments/").get_data(as_text=True)
    bob = people["bob"].get("/shipments/").get_data(as_text=True)
    assert "C-MOVE" in bob and _chip_counts(bob)["In Production"] == 1

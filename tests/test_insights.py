"""Practice Insights: every metric against a small practice built row by row with known timestamps
(the expected numbers are worked out by hand in the comments), the clinic filter, the clinician's
own view, access, the CSV downloads and the htmx fragment."""
import csv
import datetime as dt
import io
import json

import pytest

from smilepass.insights import charts, metrics
from smilepass.models import Case, Clinic, ClinicMember, Escalation, Scan, Shipment, Status, Ticket, User

from .conftest import query

D = dt.datetime
# The range under test: two whole weeks, Monday 2 March to Sunday 15 March 2026.
RANGE = {"from": "2026-03-02", "to": "2026-03-15"}
START, END = D(2026, 3, 2), D(2026, 3, 16)
WEEK1, WEEK2 = dt.date(2026, 3, 2), dt.date(2026, 3, 9)
BILLING, CASES, TECH = "Billing & Insurance", "Case Submission", "Technical Issues & Bugs"


def ticket(requester, created, status=Status.OPEN, category=TECH, answered=None, response=None, late_reply=False,
           resolved=None, resolution=None, late_fix=False):
    return Ticket.create(requester=requester.id, title="Seeded", description="Seeded.", created_at=created,
                         updated_at=created, status=status.value, category=category, first_response_at=answered,
                         response_minutes=response, response_breached=late_reply, resolved_at=resolved,
                         resolution_minutes=resolution, resolution_breached=late_fix)


def scan(uploader, created, state="done", verdict="", report=None):
    scan.n = getattr(scan, "n", 0) + 1
    return Scan.create(uploader=uploader.id, original_name="arch.stl", stored_name=f"seeded-{created:%m%d}-{scan.n}",
                       size=84, sha256="0" * 64, file_format="stl", triangles=1000, state=state, verdict=verdict,
                       report=json.dumps(report) if report is not None else "", created_at=created)


def case(clinician, number, state, shipped=None):
    """A case whose newest shipment is in `state` ("" for none); shipped = (in production, delivered)."""
    made = Case.create(case_number=number, patient_name="Pat Seed", patient_dob=dt.date(1990, 1, 1),
                       clinician=clinician.id, latest_state=state)
    if shipped:
        produced, delivered = shipped
        Shipment.create(case=made.id, phases="Aligners 1–12", state=state, target_ship_date=produced.date(),
                        in_production_at=produced, delivered_at=delivered)
    return made


@pytest.fixture
def practice(make_user):
    """Two clinics with one clinician each, tickets, escalations, scans, cases and shipments."""
    ada = make_user("dr.ada@clinic.test", name="Dr. Ada")    # clinic North
    bob = make_user("dr.bob@clinic.test", name="Dr. Bob")    # clinic South
    sam = make_user("sam@smilepass.test", "support", name="Sam")
    sue = make_user("sue@smilepass.test", "support", name="Sue")

    def seed():
        User.update(escalation_role="supervisor").where(User.id == sue.id).execute()
        north, south = Clinic.create(name="North Smiles"), Clinic.create(name="South Smiles")
        ClinicMember.create(user=ada.id, clinic=north.id)
        ClinicMember.create(user=bob.id, clinic=south.id)
        t = {}
        # Ada (North)
        t[1] = ticket(ada, D(2026, 3, 2, 9), Status.RESOLVED, answered=D(2026, 3, 2, 10), response=30,
                      resolved=D(2026, 3, 4, 12), resolution=600)
        t[2] = ticket(ada, D(2026, 3, 3, 9), Status.CLOSED, answered=D(2026, 3, 3, 15), response=90, late_reply=True,
                      resolved=D(2026, 3, 10, 9), resolution=3000, late_fix=True)
        t[3] = ticket(ada, D(2026, 3, 9, 9), Status.IN_PROGRESS, BILLING, answered=D(2026, 3, 9, 9, 10), response=10)
        t[4] = ticket(ada, D(2026, 3, 10, 9), Status.OPEN, BILLING)
        # Opened and answered before the range, resolved inside it.
        t[5] = ticket(ada, D(2026, 2, 20, 9), Status.RESOLVED, answered=D(2026, 2, 20, 10), response=45,
                      resolved=D(2026, 3, 5, 9), resolution=1200)
        t[6] = ticket(ada, D(2026, 3, 16, 0), Status.WAITING)  # the Monday after the range
        # Bob (South)
        t[7] = ticket(bob, D(2026, 3, 2, 11), Status.WAITING, CASES, answered=D(2026, 3, 2, 12), response=60)
        t[8] = ticket(bob, D(2026, 3, 11, 9), Status.RESOLVED, answered=D(2026, 3, 11, 15), response=240,
                      late_reply=True, resolved=D(2026, 3, 12, 9), resolution=120)
        # Escalations: t2 automatically (missed target) then by Sue; t7 by Sam; t5 before the range.
        Escalation.create(ticket=t[2].id, level=1, actor=None, reason="Missed", created_at=D(2026, 3, 5, 9))
        Escalation.create(ticket=t[2].id, level=2, actor=sue.id, reason="Liaison", created_at=D(2026, 3, 6, 9))
        Escalation.create(ticket=t[7].id, level=1, actor=sam.id, reason="Asked", created_at=D(2026, 3, 3, 9))
        Escalation.create(ticket=t[5].id, level=1, actor=None, reason="Missed", created_at=D(2026, 2, 21, 9))
        # Scans
        scan(ada, D(2026, 3, 3), verdict="repaired", report={"holes_filled": 2, "duplicates_removed": 5,
                                                            "welded_vertices": 0})
        scan(ada, D(2026, 3, 4), verdict="needs_rescan", report={"holes_left_open": 1, "holes_filled": 1})
        scan(ada, D(2026, 3, 10), state="failed")
        scan(ada, D(2026, 3, 11), state="processing")
        scan(bob, D(2026, 3, 5), verdict="ready", report={"holes_filled": 0, "duplicates_removed": 0})
        scan(bob, D(2026, 2, 1), verdict="repaired", report={"fragments_removed": 3})  # before the range
        # Cases: Ada's delivered in 10 days (week 2), Bob's in 6 days (week 1).
        case(ada, "C-1", "delivered", (D(2026, 3, 1, 12), D(2026, 3, 11, 12)))
        case(ada, "C-2", "in_production", (D(2026, 3, 12, 12), None))
        case(bob, "C-3", "in_transit", (D(2026, 2, 20, 12), None))
        case(bob, "C-4", "")
        case(bob, "C-5", "delivered", (D(2026, 2, 25, 12), D(2026, 3, 3, 12)))
        return north, south, t

    north, south, tickets = query(seed)
    return {"ada": ada, "bob": bob, "north": north, "south": south, "tickets": tickets, "sue": sue}


def scope(**kw):
    return metrics.Scope(START, END, **kw)


def test_tickets_per_week(practice):
    weeks = query(lambda: metrics.tickets_per_week(scope()))
    # Opened: t1, t2, t7 | t3, t4, t8. Resolved: t1, t5 (opened in February) | t2, t8. t6 is the next Monday.
    assert [(w.week, w.opened, w.resolved) for w in weeks] == [(WEEK1, 3, 2), (WEEK2, 3, 2)]


def test_first_response_times_nearest_rank(practice):
    stats = query(lambda: metrics.first_response_times(scope()))
    # First answered in range: t1 30, t2 90 (late), t3 10, t7 60, t8 240 (late) -> 10 30 60 90 240.
    # Median: position ceil(0.5·5) = 3 -> 60; 90th: ceil(0.9·5) = 5 -> 240. (t5 was answered in February.)
    assert (stats.count, stats.median, stats.p90, stats.breached) == (5, 60, 240, 2)
    assert stats.compliance == 60.0


def test_resolution_times_even_count_takes_lower_middle(practice):
    stats = query(lambda: metrics.resolution_times(scope()))
    # Resolved in range: t1 600, t2 3000 (late), t5 1200, t8 120 -> 120 600 1200 3000.
    # Median: position ceil(0.5·4) = 2 -> 600 (the lower middle); 90th: ceil(0.9·4) = 4 -> 3000.
    assert (stats.count, stats.median, stats.p90, stats.breached) == (4, 600, 3000, 1)
    assert stats.compliance == 75.0


def test_backlog_by_status_and_category(practice):
    counts = query(lambda: metrics.backlog(scope()))
    # Unresolved today, whatever the range: t3 in progress, t4 open, t6 and t7 waiting.
    assert metrics.backlog_by_status(counts) == {Status.OPEN: 1, Status.IN_PROGRESS: 1, Status.WAITING: 2}
    # Ties (one each) in the categories' own order: Technical Issues & Bugs comes first.
    assert metrics.backlog_by_category(counts) == [(BILLING, 2), (TECH, 1), (CASES, 1)]


def test_escalations_by_level_staff_or_automatic(practice):
    steps = query(lambda: metrics.escalations(scope()))
    assert [(e.level, e.by_staff, e.automatic) for e in steps] == [(1, 1, 1), (2, 1, 0), (3, 0, 0)]


def test_scan_outcomes_and_defects(practice):
    outcomes = query(lambda: metrics.scan_outcomes(scope()))
    assert outcomes == {"uploaded": 5, "ready": 1, "repaired": 1, "check": 0, "needs_rescan": 1, "failed": 1,
                        "in_progress": 1}
    defects = query(lambda: metrics.scan_defects(scope()))
    # Checked scans in range: holes filled in two, one hole left open, duplicates in one; February's
    # debris is out of range.
    assert defects[:3] == [("holes_filled", 2), ("holes_left_open", 1), ("duplicates_removed", 1)]
    assert all(n == 0 for _, n in defects[3:]) and len(defects) == len(metrics.DEFECT_KINDS)


def test_cases_by_state_and_delivery_time(practice):
    assert query(lambda: metrics.cases_by_state(scope())) == {
        "in_production": 1, "in_transit": 1, "delivered": 2, "": 1}
    delivery = query(lambda: metrics.production_to_delivery(scope()))
    # Bob's C-5: 6.0 days, delivered in week 1; Ada's C-1: 10.0 days, week 2. Average 8.0.
    assert (delivery.shipments, delivery.average_days) == (2, 8.0)
    assert [(w.week, w.shipments, w.average_days) for w in delivery.weeks] == [(WEEK1, 1, 6.0), (WEEK2, 1, 10.0)]


def test_clinic_filter_narrows_every_metric(practice):
    north = scope(clinic_id=practice["north"].id)

    def read():
        return (metrics.tickets_per_week(north), metrics.first_response_times(north), metrics.resolution_times(north),
                metrics.backlog(north), metrics.escalations(north), metrics.scan_outcomes(north),
                metrics.cases_by_state(north), metrics.production_to_delivery(north))

    weeks, response, resolution, backlog, steps, scans, cases, delivery = query(read)
    assert [(w.opened, w.resolved) for w in weeks] == [(2, 2), (2, 1)]
    # Ada: answered 30, 90 (late), 10 -> median ceil(1.5) = 2nd = 30; 90th ceil(2.7) = 3rd = 90.
    assert (response.count, response.median, response.p90, response.breached) == (3, 30, 90, 1)
    # Resolved 600, 3000, 1200 -> 600 1200 3000: median 1200, 90th 3000.
    assert (resolution.count, resolution.median, resolution.p90) == (3, 1200, 3000)
    assert metrics.backlog_by_status(backlog) == {Status.OPEN: 1, Status.IN_PROGRESS: 1, Status.WAITING: 1}
    assert [(e.by_staff, e.automatic) for e in steps] == [(0, 1), (1, 0), (0, 0)]
    assert scans["uploaded"] == 4 and scans["ready"] == 0
    assert cases == {"in_production": 1, "in_transit": 0, "delivered": 1, "": 0}
    assert (delivery.shipments, delivery.average_days) == (1, 10.0)


def csv_rows(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_admin_csv_with_clinic_filter(practice, admin):
    rows = csv_rows(admin.get("/insights/tickets.csv", query_string={**RANGE, "clinic": practice["south"].id}))
    assert rows == [["Week starting", "Opened", "Resolved"], ["2026-03-02", "1", "0"], ["2026-03-09", "1", "1"]]
    rows = csv_rows(admin.get("/insights/times.csv", query_string=RANGE))
    assert rows[1:] == [["First response", "5", "60", "240"], ["Resolution", "4", "600", "3000"]]
    rows = csv_rows(admin.get("/insights/sla.csv", query_string=RANGE))
    assert rows[1:] == [["First response", "5", "3", "2", "60.0"], ["Resolution", "4", "3", "1", "75.0"]]
    rows = csv_rows(admin.get("/insights/delivery.csv", query_string=RANGE))
    assert rows[1:] == [["2026-03-02", "1", "6.0"], ["2026-03-09", "1", "10.0"]]


def test_clinician_sees_only_own_numbers(practice, browser_for):
    bob = browser_for("dr.bob.view@clinic.test")  # a clinician with nothing yet
    rows = csv_rows(bob.get("/insights/tickets.csv", query_string=RANGE))
    assert rows[1:] == [["2026-03-02", "0", "0"], ["2026-03-09", "0", "0"]]

    from .conftest import Browser
    own = Browser(bob.client.application)
    assert own.login("dr.bob@clinic.test").status_code == 303
    # A clinic sent in the query is ignored: a clinician's view is their own numbers, nothing else.
    rows = csv_rows(own.get("/insights/times.csv", query_string={**RANGE, "clinic": practice["north"].id}))
    # Bob: answered 60, 240 -> median ceil(1) = 1st = 60; 90th ceil(1.8) = 2nd = 240. Resolved: 120.
    assert rows[1:] == [["First response", "2", "60", "240"], ["Resolution", "1", "120", "120"]]
    page = own.get("/insights/", query_string=RANGE).get_data(as_text=True)
    assert "My insights" in page and 'name="clinic"' not in page and "North Smiles" not in page
    rows = csv_rows(own.get("/insights/cases.csv", query_string=RANGE))
    assert [r[1] for r in rows[1:]] == ["0", "1", "1", "1"]


def test_access(practice, client, browser_for, app):
    response = client.get("/insights/")
    assert response.status_code == 303 and "/auth/login" in response.headers["Location"]
    assert client.get("/insights/tickets.csv").status_code == 303
    support = browser_for("plain.support@smilepass.test", "support")
    assert support.get("/insights/").status_code == 404
    assert support.get("/insights/tickets.csv").status_code == 404
    assert "Insights</a>" not in support.get("/support/").get_data(as_text=True)

    from .conftest import Browser
    supervisor = Browser(app)
    supervisor.login("sue@smilepass.test")
    page = supervisor.get("/insights/", query_string=RANGE)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Practice Insights" in html and "North Smiles" in html and "South Smiles" in html
    assert supervisor.get("/insights/nonsense.csv").status_code == 404


def test_csv_neutralises_formulas(practice, admin):
    query(lambda: ticket(practice["ada"], D(2026, 3, 4), Status.OPEN, category="=HYPERLINK(\"http://x\",\"y\")"))
    query(lambda: ticket(practice["ada"], D(2026, 3, 4), Status.OPEN, category="@SUM(A1)"))
    query(lambda: ticket(practice["ada"], D(2026, 3, 4), Status.OPEN, category="\tTabbed"))
    rows = csv_rows(admin.get("/insights/backlog-category.csv", query_string=RANGE))
    labels = [r[0] for r in rows[1:]]
    assert "'=HYPERLINK(\"http://x\",\"y\")" in labels and "'@SUM(A1)" in labels and "'\tTabbed" in labels
    assert not any(label[:1] in "=+-@\t\r" for label in labels)
    assert rows[1] == [BILLING, "2"]


def test_page_charts_are_accessible_svg_and_escaped(practice, admin):
    query(lambda: Clinic.update(name="<b>North</b> & Co").where(Clinic.id == practice["north"].id).execute())
    html = admin.get("/insights/", query_string={**RANGE, "clinic": practice["north"].id}).get_data(as_text=True)
    assert html.count('role="img"') == 14
    assert '<title id="chart-tickets-t">Tickets opened and resolved per week</title>' in html
    assert "&lt;b&gt;North&lt;/b&gt; &amp; Co" in html and "<b>North</b>" not in html
    # The numbers as a table too, and a CSV link with the same filters.
    assert '<th scope="row">2026-03-02</th><td class="num">2</td><td class="num">2</td>' in html
    assert f'/insights/tickets.csv?from=2026-03-02&amp;to=2026-03-15&amp;clinic={practice["north"].id}' in html
    assert "style=" not in html.split("<main", 1)[1] and "<script>" not in html


def test_htmx_gets_the_block_only(practice, admin):
    response = admin.get("/insights/", query_string=RANGE, htmx=True)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in body and body.strip().startswith('<div id="insights"')
    assert "2026-03-02 to 2026-03-15" in body


def test_bad_dates_are_reported_and_kept(practice, admin):
    response = admin.get("/insights/", query_string={"from": "2026-02-30", "to": "2026-03-15"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Enter a date as YYYY-MM-DD" in html and 'value="2026-02-30"' in html
    response = admin.get("/insights/", query_string={"from": "2026-03-15", "to": "2026-03-02", "clinic": "999"})
    html = response.get_data(as_text=True)
    assert "The end date must be on or after the start date." in html and "Choose a clinic from the list." in html
    assert admin.get("/insights/tickets.csv", query_string={"from": "nope"}).status_code == 400


def test_default_range_is_the_last_twelve_weeks(practice, admin):
    html = admin.get("/insights/").get_data(as_text=True)
    assert html.count('class="chip active"') == 1
    assert '>12 weeks</a>' in html


def test_nice_ceiling():
    assert [charts.nice_ceiling(v) for v in (0, 1, 3, 7, 11, 240, 2344, 26000)] == [1, 1, 5, 10, 20, 250, 2500, 50000]

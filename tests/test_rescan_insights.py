"""Practice Insights on rescan requests (issue 18): the rate per clinic and per clinician, the top reasons,
and the nearest-rank median time from a request to the new scan, against a practice built row by row with
known timestamps (the expected numbers worked out by hand), and the wait a request gets through the web
with the clock fixed."""
import csv
import datetime as dt
import io

from smilepass.insights import metrics
from smilepass.models import Clinic, ClinicMember, RescanRequest, Scan, Ticket, User

from .conftest import Browser, query
from .scanfiles import arch_stl

D = dt.datetime
RANGE = {"from": "2026-03-02", "to": "2026-03-15"}
START, END = D(2026, 3, 2), D(2026, 3, 16)


def scan(uploader, created, ticket=None):
    scan.n = getattr(scan, "n", 0) + 1
    return Scan.create(uploader=uploader.id, ticket=ticket.id if ticket else None, original_name="arch.stl",
                       stored_name=f"seeded-{scan.n}", size=84, sha256="0" * 64, file_format="stl",
                       triangles=1000, state="done", verdict="repaired", report="{}", created_at=created)


def rescan(of, staff, asked, reasons, answered_after=None):
    """A request about a new scan of `of`'s, answered `answered_after` minutes later (or still open)."""
    ticket = Ticket.create(requester=of.id, title="Seeded", description="Seeded.", created_at=asked,
                           updated_at=asked)
    asked_about = scan(of, asked - dt.timedelta(hours=1), ticket)
    fulfilled = {}
    if answered_after is not None:
        at = asked + dt.timedelta(minutes=answered_after)
        fulfilled = {"fulfilled_by_scan": scan(of, at, ticket).id, "fulfilled_at": at, "wait_minutes": answered_after}
    return RescanRequest.create(scan=asked_about.id, ticket=ticket.id, clinician=of.id, reasons=reasons,
                                requested_by=staff.id, requested_at=asked, **fulfilled)


def practice(make_user):
    ada = make_user("dr.ada@clinic.test", name="Dr. Ada")    # clinic North
    bob = make_user("dr.bob@clinic.test", name="Dr. Bob")    # clinic South
    cy = make_user("dr.cy@clinic.test", name="Dr. Cy")       # no clinic
    sam = make_user("sam@smilepass.test", "support", name="Sam")

    def seed():
        north, south = Clinic.create(name="North Smiles"), Clinic.create(name="South Smiles")
        ClinicMember.create(user=ada.id, clinic=north.id)
        ClinicMember.create(user=bob.id, clinic=south.id)
        # Ada: 2 requests in range (answered after 30 and 90 minutes), scans uploaded in range: the 2 asked
        # about, the 2 answers and 4 more = 8. Rate 2/8 = 25 %.
        rescan(ada, sam, D(2026, 3, 3, 9), "occlusal_holes,bite_scan", answered_after=30)
        rescan(ada, sam, D(2026, 3, 10, 9), "occlusal_holes", answered_after=90)
        for day in (4, 5, 6, 11):
            scan(ada, D(2026, 3, day, 12))
        # Bob: 1 request in range (answered after 600 minutes) and 1 still open; scans: 2 asked about and
        # 1 answer = 3. Rate 2/3 = 66.7 %.
        rescan(bob, sam, D(2026, 3, 4, 9), "motion", answered_after=600)
        rescan(bob, sam, D(2026, 3, 12, 9), "motion,wrong_export")
        # Cy: asked on 28 February (before the range), answered 2 March 09:00 after 2,880 minutes: in the
        # median (answered in range), not in the requests. Scans in range: the answer. Rate 0/1.
        rescan(cy, sam, D(2026, 2, 28, 9), "gum_margin", answered_after=2880)
        # Staff uploads count for nobody; a request after the range counts nowhere.
        scan(sam, D(2026, 3, 5, 9))
        rescan(ada, sam, D(2026, 3, 16, 9), "wrong_patient", answered_after=5)
        return north, south

    north, south = query(seed)
    return {"ada": ada, "bob": bob, "cy": cy, "north": north, "south": south}


def scope(**kw):
    return metrics.Scope(START, END, **kw)


def rows_of(rates):
    return [(r.name, r.uploaded, r.requested, None if r.rate is None else round(r.rate, 1)) for r in rates]


def test_rescan_rate_per_clinic_and_clinician(make_user):
    p = practice(make_user)
    assert rows_of(query(lambda: metrics.rescan_rates(scope(), by_clinic=True))) == [
        ("South Smiles", 3, 2, 66.7), ("North Smiles", 8, 2, 25.0), ("", 1, 0, 0.0)]
    assert rows_of(query(lambda: metrics.rescan_rates(scope(), by_clinic=False))) == [
        ("Dr. Bob", 3, 2, 66.7), ("Dr. Ada", 8, 2, 25.0), ("Dr. Cy", 1, 0, 0.0)]
    north = scope(clinic_id=p["north"].id)
    assert rows_of(query(lambda: metrics.rescan_rates(north, by_clinic=False))) == [("Dr. Ada", 8, 2, 25.0)]


def test_top_reasons(make_user):
    practice(make_user)
    # In range: Ada occlusal_holes+bite_scan, occlusal_holes; Bob motion, motion+wrong_export.
    # Ties (1 each) in the reasons' own order: bite scan before wrong scan type or export.
    assert query(lambda: metrics.rescan_reasons(scope()))[:4] == [
        ("occlusal_holes", 2), ("motion", 2), ("bite_scan", 1), ("wrong_export", 1)]
    assert dict(query(lambda: metrics.rescan_reasons(scope())))["wrong_patient"] == 0


def test_median_time_to_the_new_scan_nearest_rank(make_user):
    p = practice(make_user)
    stats = query(lambda: metrics.rescan_wait(scope()))
    # Answered in range: 30, 90, 600, 2880 -> median at ceil(0.5·4) = 2 -> 90 (the lower middle); 90th
    # percentile at ceil(0.9·4) = 4 -> 2880. The request answered on 16 March is outside.
    assert (stats.count, stats.median, stats.p90, stats.breached) == (4, 90, 2880, 0)
    south = query(lambda: metrics.rescan_wait(scope(clinic_id=p["south"].id)))
    assert (south.count, south.median) == (1, 600)


def test_page_and_csv_for_the_practice_and_for_a_clinician(make_user, admin):
    practice(make_user)
    html = admin.get("/insights/", query_string=RANGE).get_data(as_text=True)
    assert "Rescan rate per clinic" in html and "Rescan rate per clinician" in html
    assert "Top rescan reasons" in html and "Median time to a new scan" in html
    assert "1.5 h" in html  # the median, 90 minutes
    rows = list(csv.reader(io.StringIO(admin.get("/insights/rescans-clinic.csv", query_string=RANGE)
                                       .get_data(as_text=True))))
    assert rows == [["Clinic", "Scans uploaded", "Rescan requests", "Rescan rate %"],
                    ["South Smiles", "3", "2", "66.7"], ["North Smiles", "8", "2", "25.0"],
                    ["No clinic", "1", "0", "0.0"]]
    rows = list(csv.reader(io.StringIO(admin.get("/insights/rescan-time.csv", query_string=RANGE)
                                       .get_data(as_text=True))))
    assert rows[1] == ["Request to new scan", "4", "90", "2880"]

    # A clinician sees their own numbers only, and no per-clinic figure.
    own = Browser(admin.client.application)
    assert own.login("dr.bob@clinic.test").status_code == 303
    html = own.get("/insights/", query_string=RANGE).get_data(as_text=True)
    assert "Rescan rate per clinician" in html and "Rescan rate per clinic<" not in html
    rows = list(csv.reader(io.StringIO(own.get("/insights/rescans-clinician.csv", query_string=RANGE)
                                       .get_data(as_text=True))))
    assert rows[1:] == [["Dr. Bob", "3", "2", "66.7"]]
    rows = list(csv.reader(io.StringIO(own.get("/insights/rescan-reasons.csv", query_string=RANGE)
                                       .get_data(as_text=True))))
    assert rows[1:3] == [["Motion distortion or artefacts", "2"], ["Wrong scan type or export", "1"]]


def test_the_wait_is_taken_from_the_clock_of_the_request_and_the_new_scan(app, browser_for, redis_conn, time_machine):
    # Signed in at the fixed time: a form's CSRF token from another time would not be valid then.
    time_machine.move_to(dt.datetime(2026, 3, 3, 9, 0, tzinfo=dt.UTC), tick=False)
    clinician, support = browser_for("dr.ada@clinic.test"), browser_for("sam@smilepass.test", "support")
    data = {"title": "Scan rejected by the lab", "description": "Holes.", "scan": (io.BytesIO(arch_stl()), "up.stl")}
    assert clinician.post("/support/tickets", data, content_type="multipart/form-data").status_code == 303
    first = query(lambda: Scan.get())
    query(lambda: Scan.update(state="done", verdict="repaired", report="{}").execute())
    assert support.post(f"/support/scans/{first.id}/rescan", {"reasons": ["motion"]}).status_code == 303
    time_machine.move_to(dt.datetime(2026, 3, 3, 11, 5, 40, tzinfo=dt.UTC), tick=False)
    assert clinician.login("dr.ada@clinic.test").status_code == 303  # back two hours later (the session idled out)
    response = clinician.post(f"/support/tickets/{first.ticket_id}/replies",
                              {"body": "New scan.", "scan": (io.BytesIO(arch_stl()), "again.stl")},
                              content_type="multipart/form-data")
    assert response.status_code == 303
    request = query(lambda: RescanRequest.get())
    assert request.requested_at == D(2026, 3, 3, 9, 0) and request.fulfilled_at == D(2026, 3, 3, 11, 5, 40)
    assert request.wait_minutes == 125  # whole minutes
    stats = query(lambda: metrics.rescan_wait(scope()))
    assert (stats.count, stats.median) == (1, 125)
    ada = query(lambda: User.get(User.email == "dr.ada@clinic.test"))
    assert rows_of(query(lambda: metrics.rescan_rates(scope(clinician_id=ada.id), by_clinic=False))) == [
        (ada.display_name, 2, 1, 50.0)]

"""Cases: the list (search, filters with counts, remembered sorting, pages), the form, the detail
page with its trackers, labels, and that nobody sees another clinician's cases."""
import datetime as dt
import re

from smilepass import db
from smilepass.models import AuditLog, Case, CaseLabel, Label, Shipment, UserPreference

from .case_helpers import ADA, BOB, SAM, in_db, make_case, make_shipment, reload, user
from .conftest import recorded_sql

SORTS = ("-date", "number", "-patient", "plan", "state")
ROWS = re.compile(r'<td class="title-cell"><a href="/cases/(\d+)">([^<]+)</a>')


def numbers(html):
    return [n for _, n in ROWS.findall(html)]


CASE_FORM = {"case_number": "AL-2041", "patient_name": "Mia Lopez", "patient_dob": "2009-05-14",
             "clinic_patient_id": "P-77", "treatment_plan": "Full case, 24 stages", "arches": "both",
             "notes": "Attachments on 13 and 23."}


def test_clinician_creates_a_case_without_js(clinician):
    assert clinician.get("/cases/new").status_code == 200
    response = clinician.post("/cases/new", CASE_FORM)
    assert response.status_code == 303
    case = in_db(lambda: Case.get(Case.case_number == "AL-2041"))
    assert response.headers["Location"].endswith(f"/cases/{case.id}")
    assert case.clinician_id == user(ADA).id and case.patient_dob == dt.date(2009, 5, 14)
    page = clinician.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "Mia Lopez" in page and "Full case, 24 stages" in page
    assert "css/cases.css" in page and "style=" not in page and "<script>" not in page


def test_case_form_errors_and_unique_number(clinician, other_clinician):
    bad = clinician.post("/cases/new", {**CASE_FORM, "patient_dob": "14/05/2009", "patient_name": ""})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert "Give the patient&#39;s name." in html and 'value="AL-2041"' in html
    assert clinician.post("/cases/new", CASE_FORM).status_code == 303
    again = other_clinician.post("/cases/new", CASE_FORM)
    assert again.status_code == 422 and "already in use" in again.get_data(as_text=True)


def test_other_clinicians_cases_are_404(clinician, other_clinician):
    case = make_case(BOB, number="B-1")
    for path in (f"/cases/{case.id}", f"/cases/{case.id}/edit", "/cases/999999"):
        assert clinician.get(path).status_code == 404
    assert clinician.post(f"/cases/{case.id}/edit", CASE_FORM).status_code == 404
    assert clinician.post(f"/cases/{case.id}/labels", {"label": "1"}).status_code == 404
    assert reload(Case, case.id).patient_name == "Jane Roe"
    assert numbers(clinician.get("/cases/").get_data(as_text=True)) == []
    assert numbers(other_clinician.get("/cases/").get_data(as_text=True)) == ["B-1"]


def test_other_clinicians_shipments_are_404(clinician, other_clinician, support):
    case = make_case(BOB, number="B-2")
    shipment = make_shipment(case)
    missing = shipment.id + 1000
    for sid in (shipment.id, missing):
        assert clinician.get(f"/cases/shipments/{sid}").status_code == 404
        assert clinician.post(f"/cases/shipments/{sid}/links").status_code == 404
        assert (
            clinician.post(f"/cases/shipments/{sid}/advance", {"carrier": "UPS", "tracking_number": "1"}).status_code
            == 404
        )
    assert "B-2" not in clinician.get("/shipments/?history=1").get_data(as_text=True)
    assert "B-2" in other_clinician.get("/shipments/").get_data(as_text=True)
    assert other_clinician.get(f"/cases/shipments/{shipment.id}").status_code == 200


def test_staff_see_all_cases_with_the_clinician(clinician, other_clinician, support):
    make_case(ADA, number="A-1")
    make_case(BOB, number="B-1")
    html = support.get("/cases/").get_data(as_text=True)
    # The column, not the role badge in the header (which says "Clinician" for clinicians).
    assert sorted(numbers(html)) == ["A-1", "B-1"] and '<th scope="col">Clinician<' in html and "Dr.Bob" in html
    assert '<th scope="col">Clinician<' not in clinician.get("/cases/").get_data(as_text=True)


def test_staff_create_a_case_for_a_clinician(clinician, support):
    ada = user(ADA)
    assert support.post("/cases/new", {**CASE_FORM, "clinician": str(ada.id)}).status_code == 303
    assert in_db(lambda: Case.get(Case.case_number == "AL-2041")).clinician_id == ada.id
    refused = support.post("/cases/new", {**CASE_FORM, "case_number": "X-2", "clinician": str(user(SAM).id)})
    assert refused.status_code == 422


def test_clinician_edits_own_case_and_cannot_reassign_it(clinician, other_clinician):
    case = make_case()
    bob = user(BOB)
    response = clinician.post(f"/cases/{case.id}/edit", {**CASE_FORM, "clinician": str(bob.id)})
    assert response.status_code == 303
    saved = reload(Case, case.id)
    assert saved.patient_name == "Mia Lopez" and saved.clinician_id == user(ADA).id
    assert in_db(lambda: AuditLog.select().where(AuditLog.action == "case_update").count()) == 1


def test_search_and_quick_filter_counts(clinician, support):
    a = make_case(number="AL-1", patient_name="Ana Silva")
    b = make_case(number="AL-2", patient_name="Bruno Costa")
    make_case(number="ZX-9", patient_name="Carla Silva")
    make_shipment(a)
    make_shipment(b)
    html = clinician.get("/cases/?q=silva").get_data(as_text=True)
    assert sorted(numbers(html)) == ["AL-1", "ZX-9"]
    assert sorted(numbers(clinician.get("/cases/?q=AL-").get_data(as_text=True))) == ["AL-1", "AL-2"]
    html = clinician.get("/cases/").get_data(as_text=True)
    assert re.search(r'>All <span class="count">3</span>', html)
    assert re.search(r'>In Production <span class="count">2</span>', html)
    assert re.search(r'>No shipment <span class="count">1</span>', html)
    assert numbers(clinician.get("/cases/?state=none").get_data(as_text=True)) == ["ZX-9"]
    assert numbers(clinician.get("/cases/?q=100%25").get_data(as_text=True)) == []


def test_sort_is_remembered_after_logout(clinician):
    make_case(number="B-2", patient_name="Zoe")
    make_case(number="A-1", patient_name="Adam")
    make_case(number="C-3", patient_name="Mona")
    assert numbers(clinician.get("/cases/?sort=patient").get_data(as_text=True)) == ["A-1", "C-3", "B-2"]
    clinician.logout()
    clinician.login(ADA)
    html = clinician.get("/cases/").get_data(as_text=True)
    assert numbers(html) == ["A-1", "C-3", "B-2"] and 'aria-sort="ascending"' in html
    assert numbers(clinician.get("/cases/?sort=-number").get_data(as_text=True)) == ["C-3", "B-2", "A-1"]
    assert in_db(lambda: UserPreference.get_value(user(ADA), "case_sort")) == "-number"
    # Nonsense in the URL is ignored, not stored.
    assert numbers(clinician.get("/cases/?sort=password_hash").get_data(as_text=True)) == ["C-3", "B-2", "A-1"]


def test_htmx_gets_only_the_table(clinician):
    make_case()
    response = clinician.get("/cases/?sort=number", htmx=True)
    html = response.get_data(as_text=True)
    assert "<html" not in html and html.lstrip().startswith('<div id="case-table"')
    assert "C-1001" in html


def test_pages_of_25(clinician):
    ada = user(ADA)
    in_db(lambda: Case.insert_many([
        {"case_number": f"P-{i:03d}", "patient_name": f"Patient {i}", "patient_dob": dt.date(2000, 1, 1),
         "clinician": ada.id} for i in range(30)]).execute())
    first = clinician.get("/cases/?sort=number").get_data(as_text=True)
    assert len(numbers(first)) == 25 and 'rel="next"' in first
    second = clinician.get("/cases/?sort=number&page=2").get_data(as_text=True)
    assert numbers(second) == [f"P-{i:03d}" for i in range(25, 30)] and 'rel="next"' not in second


def test_labels_create_rename_attach_filter_delete(clinician, other_clinician):
    a = make_case(number="L-1")
    make_case(number="L-2")
    assert clinician.post("/cases/labels", {"name": "Refinement", "color": "purple"}).status_code == 303
    assert clinician.post("/cases/labels", {"name": "Refinement", "color": "blue"}).status_code == 422
    assert clinician.post("/cases/labels", {"name": "Bad", "color": "chartreuse"}).status_code == 422
    label = in_db(lambda: Label.get(Label.name == "Refinement"))
    assert clinician.post(f"/cases/{a.id}/labels", {"label": str(label.id)}).status_code == 303
    html = clinician.get(f"/cases/?label={label.id}").get_data(as_text=True)
    assert numbers(html) == ["L-1"] and 'class="label label-purple">Refinement<' in html
    assert clinician.post(f"/cases/labels/{label.id}", {"name": "Refine 2", "color": "green"}).status_code == 303
    assert 'label-green">Refine 2<' in clinician.get("/cases/").get_data(as_text=True)
    # Another clinician can neither see, rename, delete nor attach it.
    b_case = make_case(BOB, number="B-1")
    assert other_clinician.post(f"/cases/labels/{label.id}", {"name": "x", "color": "red"}).status_code == 404
    assert other_clinician.post(f"/cases/labels/{label.id}/delete").status_code == 404
    assert other_clinician.post(f"/cases/{b_case.id}/labels", {"label": str(label.id)}).status_code == 404
    assert "Refine 2" not in other_clinician.get("/cases/labels").get_data(as_text=True)
    assert sorted(numbers(other_clinician.get(f"/cases/?label={label.id}").get_data(as_text=True))) == ["B-1"]
    assert clinician.post(f"/cases/{a.id}/labels/{label.id}/detach").status_code == 303
    assert in_db(lambda: CaseLabel.select().count()) == 0
    assert clinician.post(f"/cases/labels/{label.id}/delete").status_code == 303
    assert in_db(lambda: Label.select().count()) == 0


def test_staff_advance_a_tracker_with_and_without_htmx(clinician, support):
    case = make_case()
    shipment = make_shipment(case)
    page = support.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "Mark In Transit" in page and "2026-11-23 – 2026-11-26" in page
    assert "Mark In Transit" not in clinician.get(f"/cases/{case.id}").get_data(as_text=True)
    # Clinicians may not move shipments.
    assert clinician.post(f"/cases/shipments/{shipment.id}/advance",
                          {"to": "in_transit", "carrier": "UPS", "tracking_number": "1"}).status_code == 404
    missing = support.post(f"/cases/shipments/{shipment.id}/advance", {"to": "in_transit", "carrier": "UPS"}, htmx=True)
    assert missing.status_code == 422 and "carrier and the tracking number" in missing.get_data(as_text=True)
    ok = support.post(f"/cases/shipments/{shipment.id}/advance",
                      {"to": "in_transit", "carrier": "UPS", "tracking_number": "1Z999", "carrier_eta": "2026-11-25"},
                      htmx=True)
    html = ok.get_data(as_text=True)
    assert (
        ok.status_code == 200
        and "<html" not in html
        and html.lstrip().startswith(f'<article id="shipment-{shipment.id}"')
    )
    assert "Mark Delivered" in html and "Delivery (carrier's date)" in html and "2026-11-25" in html
    done = support.post(f"/cases/shipments/{shipment.id}/advance", {"to": "delivered"})
    assert done.status_code == 303
    assert reload(Shipment, shipment.id).state == "delivered"
    assert reload(Case, case.id).latest_state == "delivered"


def test_admin_reopens_with_reason_via_form(clinician, support, admin):
    case = make_case()
    shipment = make_shipment(case)
    support.post(
        f"/cases/shipments/{shipment.id}/advance", {"to": "in_transit", "carrier": "UPS", "tracking_number": "1"}
    )
    support.post(f"/cases/shipments/{shipment.id}/advance", {"to": "delivered"})
    assert support.post(f"/cases/shipments/{shipment.id}/reopen", {"reason": "Returned to sender"}).status_code == 403
    assert admin.post(f"/cases/shipments/{shipment.id}/reopen", {"reason": ""}).status_code == 422
    assert admin.post(f"/cases/shipments/{shipment.id}/reopen", {"reason": "Returned to sender"}).status_code == 303
    assert reload(Shipment, shipment.id).state == "in_transit"


def test_shipments_view_active_by_default_and_history(clinician, support):
    a = make_shipment(make_case(number="OLD-1"))
    make_shipment(make_case(number="NEW-1"))
    in_db(lambda: Shipment.update(state="delivered", delivered_at=dt.datetime(2026, 1, 1), carrier="UPS",
                                  tracking_number="1", in_transit_at=dt.datetime(2025, 12, 28))
          .where(Shipment.id == a.id).execute())
    html = clinician.get("/shipments/").get_data(as_text=True)
    assert "NEW-1" in html and "OLD-1" not in html
    assert re.search(r'>In Production <span class="count">1</span>', html)
    assert re.search(r'>Delivered <span class="count">0</span>', html)
    history = clinician.get("/shipments/?history=1").get_data(as_text=True)
    assert "NEW-1" in history and "OLD-1" in history
    assert re.search(r'>Delivered <span class="count">1</span>', history)
    only = clinician.get("/shipments/?history=1&state=delivered").get_data(as_text=True)
    assert "OLD-1" in only and "NEW-1" not in only
    assert "Patient" not in clinician.get("/shipments/", htmx=True).get_data(as_text=True)


def test_case_list_work_does_not_grow_with_the_cases(clinician, other_clinician):
    """What keeps the list fast at 20,000 cases (bench/web.py times it against /healthz): the database
    cuts the page (LIMIT/OFFSET, not Python), the filter counts come from the maintained CaseCount rows
    rather than a scan of every case, and a page costs the same few statements whatever the table holds."""
    ada, bob = user(ADA), user(BOB)

    def add_cases(first, count):
        rows = [{"case_number": f"N-{i:06d}", "patient_name": f"Patient {i % 977}", "patient_dob": dt.date(1990, 1, 1),
                 "clinician": (ada if i % 2 else bob).id, "treatment_plan": f"Plan {i % 13}",
                 "latest_state": ("", "in_production", "in_transit", "delivered")[i % 4]}
                for i in range(first, first + count)]
        for start in range(0, len(rows), 500):
            Case.insert_many(rows[start:start + 500]).execute()  # CaseCount follows by trigger

    def page_statements(sort):
        clinician.get(f"/cases/?sort={sort}")  # remembers the sort: the measured request only reads
        with recorded_sql() as statements:
            html = clinician.get(f"/cases/?sort={sort}&page=3&state=in-production").get_data(as_text=True)
        return html, [sql for sql, _ in statements]

    in_db(lambda: db.database.atomic()(add_cases)(0, 400))
    small = {sort: page_statements(sort)[1] for sort in SORTS}
    in_db(lambda: db.database.atomic()(add_cases)(400, 4000))
    for sort in SORTS:
        html, statements = page_statements(sort)
        assert len(numbers(html)) == 25
        assert statements == small[sort], sort  # the same statements at 400 and at 4,400 cases
        case_reads = [sql for sql in statements if re.search(r'FROM "case" AS', sql)]
        assert len(case_reads) == 1, case_reads  # the page of rows; the counts do not read "case"
        assert re.search(r"LIMIT \S+ OFFSET \S+$", case_reads[0].strip()), case_reads[0]
        assert any('FROM "case_count"' in sql for sql in statements), statements
        assert len(statements) <= 12, statements


def test_creating_a_case_confirms_it(clinician):
    response = clinician.post("/cases/new", CASE_FORM)
    assert response.status_code == 303
    page = clinician.get(response.headers["Location"]).get_data(as_text=True)
    assert '<p class="notice notice-success">Case AL-2041 created.</p>' in page

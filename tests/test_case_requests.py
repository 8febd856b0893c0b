"""Requests about a case: linking from the New Request form (own cases only), the structured case
fields, the ticket's case panel with the warranty window, the case column in the ticket table, the
case page's ticket list and the case-number suggestions."""
import datetime as dt
import re

import pytest

from smilepass import settings
from smilepass.models import AuditLog, Case, CaseDetails, Shipment, Ticket, utcnow
from smilepass.support import warranty

from .case_helpers import ADA, BOB, ROOT, SAM, in_db, make_case, make_shipment, reload, user

REQUEST = {"title": "Tray 7 cracked", "description": "Cracked on insertion this morning.", "priority": "2",
           "category": "Warranty & Replacement"}


def file_request(browser, htmx=False, **fields):
    return browser.post("/support/tickets", {**REQUEST, **fields}, htmx=htmx)


def created_id(response) -> int:
    assert response.status_code == 303, response.get_data(as_text=True)
    return int(response.headers["Location"].rsplit("created=", 1)[1])


def ticket_count() -> int:
    return in_db(lambda: Ticket.select().count())


def today() -> dt.date:
    return utcnow().date()


def deliver(shipment, when: dt.datetime) -> None:
    in_db(lambda: Shipment.update(state="delivered", delivered_at=when).where(Shipment.id == shipment.id).execute())


# Linking ---------------------------------------------------------------------------------------

def test_request_links_own_case_and_the_table_shows_its_handle(clinician):
    case = make_case(number="AL-2041")
    ticket_id = created_id(file_request(clinician, case_number=" AL-2041 "))
    ticket = reload(Ticket, ticket_id)
    assert ticket.case_id == case.id
    # Nothing was filled in the structured fields: no details row.
    assert in_db(lambda: CaseDetails.get_or_none(CaseDetails.ticket == ticket_id)) is None
    audit = in_db(lambda: AuditLog.get((AuditLog.action == "ticket_created") & (AuditLog.object_id == str(ticket_id))))
    assert audit.detail == f"case #{case.id}"  # the id: the case number names the patient
    page = clinician.get("/support/").get_data(as_text=True)
    assert ">Case</th>" in page
    assert f'<td class="case-cell"><a href="/cases/{case.id}">AL-2041</a></td>' in page


def test_request_without_case_has_an_empty_case_cell(clinician, support):
    created_id(file_request(clinician))
    for browser in (clinician, support):
        html = browser.get("/support/").get_data(as_text=True)
        assert '<td class="case-cell"></td>' in html


def test_another_clinicians_case_is_refused_like_a_missing_one(clinician, other_clinician):
    make_case(BOB, number="B-77")
    before = ticket_count()
    theirs = file_request(clinician, case_number="B-77")
    missing = file_request(clinician, case_number="B-78")
    assert theirs.status_code == missing.status_code == 422
    assert "No case B-77 among your cases." in theirs.get_data(as_text=True)
    assert "No case B-78 among your cases." in missing.get_data(as_text=True)
    # What was typed is kept, and nothing was filed.
    assert 'value="B-77"' in theirs.get_data(as_text=True)
    assert ticket_count() == before


def test_staff_may_link_any_case(clinician, support):
    case = make_case(ADA, number="AL-9")
    ticket_id = created_id(file_request(support, case_number="AL-9"))
    assert reload(Ticket, ticket_id).case_id == case.id


def test_case_link_from_the_case_page_prefills_the_form(clinician, other_clinician):
    own = make_case(number="AL-1")
    theirs = make_case(BOB, number="B-1")
    page = clinician.get(f"/cases/{own.id}").get_data(as_text=True)
    assert f'href="/support/?case={own.id}#new-request"' in page
    form = clinician.get(f"/support/?case={own.id}").get_data(as_text=True)
    assert re.search(r'id="case_number"[^>]*value="AL-1"', form)
    # Someone else's case id is ignored, not revealed.
    other = clinician.get(f"/support/?case={theirs.id}").get_data(as_text=True)
    assert "B-1" not in other and re.search(r'id="case_number"[^>]*value=""', other)


# Structured fields -------------------------------------------------------------------------------

def test_details_are_saved_with_the_ticket_and_shown(clinician):
    make_case(number="AL-2041")
    delivered = today() - dt.timedelta(days=10)
    ticket_id = created_id(file_request(
        clinician, case_number="AL-2041", teeth="21 11, 36", notation="fdi",
        last_aligner_delivered=delivered.isoformat(), aligner_step="7", tracking_number="1Z999AA10123456784",
        preferred_resolution="replacement"))
    details = in_db(lambda: CaseDetails.get(CaseDetails.ticket == ticket_id))
    assert details.teeth == "11,21,36"
    assert details.last_aligner_delivered == delivered and details.aligner_step == 7
    assert details.tracking_number == "1Z999AA10123456784" and details.preferred_resolution == "replacement"
    page = clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "<dt>Teeth (FDI)</dt><dd>11, 21, 36</dd>" in page
    assert "<dt>Aligner step</dt><dd>7</dd>" in page
    assert "1Z999AA10123456784" in page and "Replacement tray" in page
    assert f"Inside warranty: delivered {delivered.isoformat()}, 10 days ago (window 90 days, until " in page


def test_universal_input_is_stored_as_fdi_and_shown_in_the_clinic_notation(clinician, admin):
    make_case(number="AL-5")
    ticket_id = created_id(file_request(clinician, case_number="AL-5", teeth="8, 9, A", notation="universal"))
    assert in_db(lambda: CaseDetails.get(CaseDetails.ticket == ticket_id)).teeth == "11,21,55"
    page = clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "<dt>Teeth (FDI)</dt><dd>11, 21, 55</dd>" in page
    # An admin switches the clinic to Universal: the same request now reads in Universal.
    in_db(lambda: settings.set_value("tooth_notation", "universal", user(ROOT)))
    page = clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "<dt>Teeth (Universal)</dt><dd>8, 9, A</dd>" in page
    # And the New Request form now defaults to Universal.
    form = clinician.get("/support/").get_data(as_text=True)
    assert '<option selected value="universal">Universal</option>' in form


def test_details_without_a_case_are_refused_and_kept(clinician):
    before = ticket_count()
    response = file_request(clinician, teeth="11", tracking_number="TRK-1")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Enter the case these details are about." in html
    # Never silently dropped: what was typed is still in the form, and the fields stay visible.
    assert 'value="11"' in html and 'value="TRK-1"' in html and 'class="case-fields filled"' in html
    assert ticket_count() == before


@pytest.mark.parametrize("fields,message", [
    ({"teeth": "8, 9"}, "Choose Universal notation."),
    ({"teeth": "11, 11"}, "Tooth 11 is listed twice."),
    ({"teeth": "8, 9", "notation": "universal"}, None),
    ({"aligner_step": "0"}, "Enter a step from 1 to 100."),
    ({"aligner_step": "101"}, "Enter a step from 1 to 100."),
    ({"last_aligner_delivered": "2999-01-01"}, "The delivery date cannot be in the future."),
    ({"preferred_resolution": "free-money"}, "Not a valid choice."),
])
def test_structured_field_checks(clinician, fields, message):
    make_case(number="AL-7")
    response = file_request(clinician, case_number="AL-7", **fields)
    if message is None:
        assert response.status_code == 303
        return
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)


def test_htmx_filing_returns_the_fragment_plain_filing_a_303(clinician):
    make_case(number="AL-3")
    response = file_request(clinician, htmx=True, case_number="AL-3", teeth="11")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html and html.lstrip().startswith('<form id="new-request"')
    assert "received." in html and 'hx-swap-oob="true"' in html and ">AL-3</a></td>" in html
    # The fresh form is empty again.
    assert re.search(r'id="case_number"[^>]*value=""', html)
    refused = file_request(clinician, htmx=True, teeth="11")
    assert refused.status_code == 422 and "Enter the case these details are about." in refused.get_data(as_text=True)
    assert "<html" not in refused.get_data(as_text=True)
    assert file_request(clinician, case_number="AL-3").status_code == 303


def test_case_number_and_tracking_number_are_escaped(clinician, support):
    evil = "<script>alert(1)</script>"
    case = make_case(number=evil)
    ticket_id = created_id(file_request(clinician, case_number=evil, tracking_number=evil))
    for html in (clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True),
                 clinician.get("/support/").get_data(as_text=True),
                 support.get("/support/").get_data(as_text=True),
                 clinician.get("/support/case-suggestions?q=%3Cscr").get_data(as_text=True),
                 clinician.get(f"/cases/{case.id}").get_data(as_text=True)):
        assert evil not in html
    page = clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# Ticket page: case panel ----------------------------------------------------------------------

def test_case_panel_links_only_when_the_viewer_may_see_the_case(clinician, other_clinician, support):
    case = make_case(number="AL-8")
    ticket_id = created_id(file_request(clinician, case_number="AL-8"))
    link = f'<a href="/cases/{case.id}">AL-8</a>'
    assert link in clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert link in support.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    # Staff give the case to another clinician: the requester still sees the number, without a link.
    in_db(lambda: Case.update(clinician=user(BOB).id).where(Case.id == case.id).execute())
    page = clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "AL-8" in page and link not in page
    assert link not in clinician.get("/support/").get_data(as_text=True)
    assert other_clinician.get(f"/support/tickets/{ticket_id}").status_code == 404


def test_warranty_uses_the_last_delivered_shipment_when_the_request_has_no_date(clinician, support):
    case = make_case(number="AL-11")
    ticket_id = created_id(file_request(clinician, case_number="AL-11"))
    assert "No delivery date known" in clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    old, recent = make_shipment(case), make_shipment(case, phases="Aligners 13–24")
    now = utcnow()
    deliver(old, now - dt.timedelta(days=200))
    deliver(recent, now - dt.timedelta(days=95))
    page = clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    delivered = (now - dt.timedelta(days=95)).date()
    assert f"Outside warranty: delivered {delivered.isoformat()}, 95 days ago (window 90 days, ended " in page
    assert "From the case's most recent delivered shipment." in page
    # The clinic widens the window.
    in_db(lambda: settings.set_value("warranty_days", "120", user(SAM)))
    assert "Inside warranty" in clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)


def test_warranty_line_only_on_warranty_requests(clinician):
    make_case(number="AL-12")
    ticket_id = created_id(file_request(clinician, case_number="AL-12", category="Scan & File Validation",
                                        last_aligner_delivered=today().isoformat()))
    page = clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "warranty" not in page.lower().replace("warranty &amp; replacement", "")


DELIVERED = dt.date(2026, 10, 1)


@pytest.mark.parametrize("days,inside", [(0, True), (1, True), (89, True), (90, True), (91, False), (400, False)])
def test_warranty_window_edges(days, inside):
    check = warranty.check(DELIVERED, 90, DELIVERED + dt.timedelta(days=days))
    assert check.inside is inside and check.days_ago == days
    assert check.summary.startswith("Inside warranty" if inside else "Outside warranty")


def test_warranty_summaries():
    assert (warranty.check(DELIVERED, 90, dt.date(2026, 11, 22)).summary
            == "Inside warranty: delivered 2026-10-01, 52 days ago (window 90 days, until 2026-12-30)")
    assert (warranty.check(DELIVERED, 90, dt.date(2026, 12, 31)).summary
            == "Outside warranty: delivered 2026-10-01, 91 days ago (window 90 days, ended 2026-12-30)")
    assert warranty.check(DELIVERED, 90, DELIVERED).summary.endswith(", today (window 90 days, until 2026-12-30)")
    unknown = warranty.check(None, 90, DELIVERED)
    assert unknown.summary == "No delivery date known" and not unknown.inside


def test_request_date_wins_over_the_shipment(clinician):
    case = make_case(number="AL-13")
    shipment = make_shipment(case)
    deliver(shipment, dt.datetime(2026, 1, 5, 15, 0))
    assert in_db(lambda: warranty.delivery_date(None, case.id)) == (dt.date(2026, 1, 5), "shipment")
    assert in_db(lambda: warranty.delivery_date(DELIVERED, case.id)) == (DELIVERED, "request")
    assert in_db(lambda: warranty.delivery_date(None, None)) == (None, "")


# Case page ------------------------------------------------------------------------------------

def test_case_page_lists_only_the_tickets_the_viewer_may_see(clinician, other_clinician, support):
    case = make_case(number="AL-20")
    own = created_id(file_request(clinician, case_number="AL-20", title="Ada's own request"))
    staff_filed = created_id(file_request(support, case_number="AL-20", title="Filed by support"))
    created_id(file_request(clinician, title="Not about the case"))
    mine = clinician.get(f"/cases/{case.id}").get_data(as_text=True)
    assert f'href="/support/tickets/{own}"' in mine and "Ada&#39;s own request" in mine
    assert "Filed by support" not in mine and "Not about the case" not in mine
    staff = support.get(f"/cases/{case.id}").get_data(as_text=True)
    rows = re.findall(r'href="/support/tickets/(\d+)"', staff)
    assert rows == [str(staff_filed), str(own)]  # newest first
    assert other_clinician.get(f"/cases/{case.id}").status_code == 404


# Suggestions -----------------------------------------------------------------------------------

def test_suggestions_list_only_own_cases(clinician, other_clinician, support):
    make_case(number="AL-100", patient_name="Mia Lopez")
    make_case(number="AL-101", patient_name="Noah Berg")
    make_case(BOB, number="AL-102", patient_name="Olga Svensson")
    html = clinician.get("/support/case-suggestions?q=AL-1", htmx=True).get_data(as_text=True)
    assert re.findall(r'<option value="([^"]+)"', html) == ["AL-100", "AL-101"]
    assert "Mia Lopez" in html and "Olga" not in html
    # By patient name, and as htmx sends it (the input's own name).
    html = clinician.get("/support/case-suggestions?case_number=berg", htmx=True).get_data(as_text=True)
    assert re.findall(r'<option value="([^"]+)"', html) == ["AL-101"]
    assert "Olga" not in clinician.get("/support/case-suggestions?q=olga").get_data(as_text=True)
    # Nothing typed yet: the most recent own cases.
    assert len(re.findall("<option", clinician.get("/support/case-suggestions").get_data(as_text=True))) == 2
    # LIKE wildcards are text.
    assert "<option" not in clinician.get("/support/case-suggestions?q=%25").get_data(as_text=True)
    staff = support.get("/support/case-suggestions?q=AL-").get_data(as_text=True)
    assert re.findall(r'<option value="([^"]+)"', staff) == ["AL-100", "AL-101", "AL-102"]


def test_suggestions_need_a_sign_in(client):
    plain = client.get("/support/case-suggestions?q=AL")
    assert plain.status_code in (302, 303, 401) and "/auth/login" in plain.headers["Location"]
    htmx = client.get("/support/case-suggestions?q=AL", htmx=True)
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/auth/login")
    assert "<option" not in htmx.get_data(as_text=True)


def test_new_request_form_has_no_case_select(clinician):
    for n in range(30):
        make_case(number=f"AL-{n:03d}")
    html = clinician.get("/support/").get_data(as_text=True)
    assert '<datalist id="case-suggestions"></datalist>' in html
    assert "AL-001" not in html and 'hx-get="/support/case-suggestions"' in html


# In a browser ----------------------------------------------------------------------------------

@pytest.mark.browser
def test_case_field_suggests_own_cases_and_reveals_the_details(make_user, new_page):
    from playwright.sync_api import expect

    from .browser_support import artifact_path, sign_in
    from .conftest import PASSWORD

    make_user(ADA)
    make_user(BOB)
    make_case(number="AL-300", patient_name="Mia Lopez")
    make_case(number="AL-301", patient_name="Noah Berg")
    make_case(BOB, number="AL-302", patient_name="Olga Svensson")
    page = new_page()
    sign_in(page, ADA, PASSWORD)
    teeth_field = page.locator("#teeth")
    expect(teeth_field).to_be_hidden()  # no case yet: the structured fields stay out of the way
    options = page.locator("#case-suggestions option")
    with page.expect_response(re.compile(r"/support/case-suggestions\?case_number=AL-30$")):
        page.locator("#case_number").fill("AL-30")
    expect(options).to_have_count(2)  # htmx filled the datalist with Ada's cases only
    assert sorted(options.nth(i).get_attribute("value") for i in range(2)) == ["AL-300", "AL-301"]
    with page.expect_response(re.compile(r"/support/case-suggestions\?case_number=berg$")):
        page.locator("#case_number").fill("berg")
    expect(options).to_have_count(1)
    assert options.first.get_attribute("value") == "AL-301"
    page.locator("#case_number").fill("AL-301")
    expect(teeth_field).to_be_visible()
    page.locator("#title").fill("Tray 4 cracked")
    page.locator("#description").fill("Cracked on the lower left when inserting.")
    page.locator("#category").select_option("Warranty & Replacement")
    teeth_field.fill("36 37")
    page.locator("#aligner_step").fill("4")
    page.locator("#preferred_resolution").select_option("replacement")
    page.screenshot(path=str(artifact_path("new-request-case-fields.png")), full_page=True, caret="initial")
    page.get_by_role("button", name="Add").click()
    expect(page.locator(".confirmation")).to_be_visible()
    expect(page.locator("#ticket-table td.case-cell a", has_text="AL-301")).to_be_visible()
    expect(teeth_field).to_be_hidden()  # the fresh form has no case again
    page.locator(".confirmation strong a").click()
    expect(page.locator(".case-panel")).to_contain_text("36, 37")
    expect(page.locator(".case-panel .warranty")).to_contain_text("No delivery date known")
    page.screenshot(path=str(artifact_path("ticket-case-panel.png")), full_page=True, caret="initial")

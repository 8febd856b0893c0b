"""Cases in a real browser: support staff create a case, move a shipment through its steps and
hand out a patient status link, which a patient opens without signing in. Screenshots land in
test-artifacts/ at the repository root."""
import datetime as dt
import re

import pytest

from smilepass.models import Case, CaseLabel, Label, PatientLink, Shipment, ShipmentState

from .browser_support import TIMEOUT_MS, artifact_path, read_db, sign_in
from .conftest import PASSWORD
from .parts import import_part

sync_api = import_part("playwright.sync_api", "make setup installs the test extras")
expect = sync_api.expect
expect.set_options(timeout=TIMEOUT_MS)

pytestmark = pytest.mark.browser

CLINICIAN = "dr.ada@clinic.test"
CLINICIAN_NAME = "Dr. Ada Lovelace"
SUPPORT = "sam@smilepass.test"
CASE_NUMBER = "C-2026-0417"
PATIENT_NAME = "Maria Keller"
PATIENT_DOB = dt.date(1991, 3, 4)
PLAN = "Full case, 24 steps"
PHASES = "Aligners 1–12"
CARRIER = "DHL"
TRACKING = "JD0146000038"
MOBILE = {"width": 390, "height": 844}


def tracker_steps(tracker):
    return tracker.locator(".tracker-steps li.done .step-name")


def test_case_shipment_and_patient_link(app, make_user, new_page):
    # The patient page is rate-limited per client address, and every browser here is 127.0.0.1.
    app.config["PATIENT_PAGE_RATE_LIMIT"] = "1000 per minute"
    clinician = make_user(CLINICIAN, name=CLINICIAN_NAME)
    make_user(SUPPORT, "support")

    # 1. Support opens the case list and creates a case for the clinician.
    staff = new_page()
    sign_in(staff, SUPPORT, PASSWORD)
    staff.goto("/cases/")
    staff.get_by_role("link", name="New case").click()
    staff.wait_for_url(re.compile(r"/cases/new$"))
    expect(staff.get_by_role("heading", name="New case")).to_be_visible()
    form = staff.locator("form[method=post]", has=staff.get_by_role("button", name="Save case"))
    form.get_by_label("Case number").fill(CASE_NUMBER)
    form.get_by_label("Patient name").fill(PATIENT_NAME)
    form.get_by_label("Date of birth").fill(PATIENT_DOB.isoformat())
    form.get_by_label("Treatment plan").fill(PLAN)
    form.get_by_label("Arches").select_option(label="Both arches")
    form.get_by_label("Treating clinician").select_option(value=str(clinician.id))
    form.get_by_role("button", name="Save case").click()

    staff.wait_for_url(re.compile(r"/cases/\d+$"))
    case_url = staff.url
    expect(staff.get_by_role("heading", level=1)).to_have_text(f"Case {CASE_NUMBER}")
    facts = staff.locator(".case-facts")
    expect(facts).to_contain_text(PATIENT_NAME)
    expect(facts).to_contain_text(CLINICIAN_NAME)
    expect(facts).to_contain_text(PLAN)
    case = read_db(lambda: Case.get(Case.case_number == CASE_NUMBER))
    assert case.clinician_id == clinician.id
    assert case.patient_dob == PATIENT_DOB

    # 2. A shipment, then the one-click steps: In Production -> In Transit -> Delivered.
    target = dt.date.today() + dt.timedelta(days=7)
    expect(staff.locator("#shipments")).to_contain_text("No shipments yet.")
    new_shipment = staff.locator("form.new-shipment")
    new_shipment.get_by_label("Phases").fill(PHASES)
    new_shipment.get_by_label("Target shipping date").fill(target.isoformat())
    new_shipment.get_by_role("button", name="Add shipment").click()
    staff.wait_for_url(re.compile(r"/cases/\d+#shipments$"))

    tracker = staff.locator("article.tracker")
    expect(tracker).to_have_count(1)
    shipment_id = int(tracker.get_attribute("id").rsplit("-", 1)[1])
    tracker = staff.locator(f"#shipment-{shipment_id}")  # stays valid when htmx swaps the tracker
    badge = tracker.locator(".tracker-head .ship")
    expect(tracker.get_by_role("heading", name=PHASES)).to_be_visible()
    expect(badge).to_have_text("In Production")
    expect(tracker_steps(tracker)).to_have_text(["In Production"])
    expect(tracker.locator(".tracker-facts")).to_contain_text(target.isoformat())

    tracker.get_by_label("Carrier", exact=True).fill(CARRIER)
    tracker.get_by_label("Tracking number", exact=True).fill(TRACKING)
    tracker.get_by_role("button", name="Mark In Transit").click()
    expect(badge).to_have_text("In Transit")
    expect(tracker_steps(tracker)).to_have_text(["In Production", "In Transit"])
    expect(tracker.locator(".tracker-facts")).to_contain_text(CARRIER)
    expect(tracker.locator(".tracker-facts")).to_contain_text(TRACKING)

    tracker.get_by_role("button", name="Mark Delivered").click()
    expect(badge).to_have_text("Delivered")
    expect(tracker_steps(tracker)).to_have_text(["In Production", "In Transit", "Delivered"])
    expect(tracker.locator("form.advance")).to_have_count(0)  # nothing comes after Delivered
    expect(tracker).to_contain_text(TRACKING)
    shipment = read_db(lambda: Shipment.get_by_id(shipment_id))
    assert shipment.state == ShipmentState.DELIVERED.value
    assert (shipment.carrier, shipment.tracking_number) == (CARRIER, TRACKING)

    # 3. A patient link, shown once; a patient opens it in a browser of their own, not signed in.
    tracker.get_by_role("button", name="New patient link").click()
    shown = tracker.get_by_role("textbox", name="Patient link")
    expect(shown).to_have_value(re.compile(r"/p/[A-Za-z0-9_-]{20,}$"))
    patient_url = shown.input_value()
    expect(tracker.get_by_role("button", name="Revoke")).to_have_count(1)

    patient = new_page()
    patient.set_viewport_size(MOBILE)
    response = patient.goto(patient_url)
    assert response.status == 200
    expect(patient.get_by_role("heading", name="Your aligners")).to_be_visible()
    expect(patient.locator(".patient-clinic")).to_have_text(app.config["CLINIC_NAME"])
    expect(patient.locator(".patient-steps li.done .step-name")).to_have_text(
        ["In Production", "In Transit", "Delivered"])
    expect(patient.locator(".patient-facts")).to_contain_text(CARRIER)
    expect(patient.locator(".patient-facts")).to_contain_text(TRACKING)
    content = patient.content()
    for private in (PATIENT_NAME, PATIENT_DOB.isoformat(), PATIENT_DOB.strftime("%d %b %Y"), CASE_NUMBER,
                    CLINICIAN_NAME):
        assert private not in content, f"the patient page shows {private!r}"
    patient.screenshot(path=str(artifact_path("patient-status.png")), full_page=True)

    # 4. Support revokes the link; the patient's page is gone.
    tracker.get_by_role("button", name="Revoke").click()
    expect(tracker.get_by_role("button", name="Revoke")).to_have_count(0)
    expect(tracker.get_by_role("textbox", name="Patient link")).to_have_count(0)
    assert read_db(lambda: PatientLink.get(PatientLink.shipment == shipment_id).revoked_at) is not None

    response = patient.goto(patient_url)
    assert response.status == 404
    expect(patient.get_by_role("heading", name="Link not available")).to_be_visible()
    assert TRACKING not in patient.content()

    # 5. The case page as staff see it now.
    staff.goto(case_url)
    expect(staff.locator(f"#shipment-{shipment_id} .ship")).to_have_text("Delivered")
    expect(staff.locator(f"#shipment-{shipment_id}").get_by_role("button", name="Revoke")).to_have_count(0)
    staff.screenshot(path=str(artifact_path("case-detail.png")), full_page=True)


@pytest.mark.parametrize("javascript", [True, False], ids=["htmx", "no-js"])
def test_the_label_filter_applies_on_change_and_has_a_search_button_without_js(make_user, new_page, javascript):
    ada = make_user(CLINICIAN, name=CLINICIAN_NAME)

    def labelled_cases():
        refinement = Label.create(owner=ada.id, name="Refinement", color="purple")
        for number in ("L-1", "L-2"):
            case = Case.create(case_number=number, patient_name="Jane Roe", patient_dob=PATIENT_DOB,
                               clinician=ada.id)
            if number == "L-1":
                CaseLabel.create(case=case, label=refinement)
    read_db(labelled_cases)
    page = new_page(javascript=javascript)
    sign_in(page, CLINICIAN, PASSWORD)
    page.goto("/cases/")
    rows = page.locator("#case-table td.title-cell")
    expect(rows).to_have_count(2)
    page.get_by_label("Label", exact=True).select_option(label="Refinement")
    if javascript:
        # Choosing is enough: the table follows, and the address keeps the filter for Back and reload.
        expect(rows).to_have_count(1)
        expect(page).to_have_url(re.compile(r"label=\d+"))
    else:
        expect(rows).to_have_count(2)  # nothing happens until the plain form is sent
        page.get_by_role("button", name="Search", exact=True).click()
        page.wait_for_url(re.compile(r"label=\d+"))
        expect(rows).to_have_count(1)
    expect(rows).to_have_text(["L-1"])

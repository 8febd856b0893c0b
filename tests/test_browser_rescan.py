"""Requesting a rescan in a real browser (Playwright driving Debian's Chromium): with htmx the scan panel,
the thread and the status change in place; without JavaScript the same form posts and the page comes back."""
import json
import re

import pytest

from smilepass.models import Priority, RescanRequest, Scan, Status, Ticket

from .browser_support import TIMEOUT_MS, marker, read_db, seed_tickets, set_marker, sign_in
from .conftest import PASSWORD
from .parts import import_part

sync_api = import_part("playwright.sync_api", "make setup installs the test extras")
expect = sync_api.expect
expect.set_options(timeout=TIMEOUT_MS)

pytestmark = pytest.mark.browser

CLINICIAN = "dr.ada@clinic.test"
SUPPORT = "sam@smilepass.test"


def ticket_with_a_scan(make_user) -> tuple[Ticket, Scan]:
    """A request with a repaired scan whose report left a hole open (so "holes" is suggested)."""
    ada = make_user(CLINICIAN)
    make_user(SUPPORT, "support")
    [ticket] = seed_tickets(ada, [("Lab rejected the upper arch", Priority.NORMAL, "Scan & File Validation")])
    report = {"before": {"triangles": 48210}, "after": {"triangles": 48330}, "holes_filled": 2,
              "holes_left_open": 1, "margin_loops": 1, "similar_bodies": 1}
    scan = read_db(lambda: Scan.create(ticket=ticket.id, uploader=ada.id, original_name="upper_arch.stl",
                                       stored_name="browser-rescan", size=2_411_884, sha256="0" * 64,
                                       file_format="stl-binary", triangles=48210, state="done",
                                       verdict="needs_rescan", report=json.dumps(report)))
    return ticket, scan


def test_staff_request_a_rescan_in_place(make_user, new_page):
    ticket, scan = ticket_with_a_scan(make_user)
    page = new_page()
    sign_in(page, SUPPORT, PASSWORD)
    page.goto(f"/support/tickets/{ticket.id}")
    set_marker(page)
    panel = page.locator(f"#scan-{scan.id}")
    panel.locator("summary", has_text="Request a rescan").click()
    expect(panel.get_by_label(re.compile("Holes in occlusal surfaces"))).to_be_checked()  # the repair's suggestion
    panel.get_by_label("Missing bite scan").check()
    panel.get_by_label("Note for the clinician (optional)").fill("Please include the last molars.")
    panel.get_by_role("button", name="Request a rescan").click()

    expect(panel.locator(".rescan-open")).to_contain_text(
        "Rescan requested: Holes in occlusal surfaces, Missing bite scan")
    expect(panel.locator("details.rescan")).to_have_count(0)  # one open request per scan
    expect(page.locator("#status-panel .status-large")).to_have_text("Waiting on user")
    reply = page.locator("#thread .message.from-staff .body")
    expect(reply).to_contain_text("Rescan requested for upper_arch.stl: Holes in occlusal surfaces, Missing bite scan.")
    expect(reply).to_contain_text("Please include the last molars.")
    assert marker(page) == 1, "the request reloaded the page"
    assert read_db(lambda: RescanRequest.get().reason_codes) == ["occlusal_holes", "bite_scan"]


def test_without_javascript_the_form_posts_and_the_page_comes_back(make_user, new_page):
    ticket, scan = ticket_with_a_scan(make_user)
    page = new_page(javascript=False)
    sign_in(page, SUPPORT, PASSWORD)
    page.goto(f"/support/tickets/{ticket.id}")
    panel = page.locator(f"#scan-{scan.id}")
    panel.locator("summary", has_text="Request a rescan").click()
    panel.get_by_label(re.compile("Holes in occlusal surfaces")).uncheck()
    panel.get_by_role("button", name="Request a rescan").click()  # nothing ticked
    panel = page.locator(f"#scan-{scan.id}")
    expect(panel.locator(".field-error")).to_have_text("Choose at least one reason.")
    panel.get_by_label("Motion distortion or artefacts").check()
    panel.get_by_role("button", name="Request a rescan").click()
    page.wait_for_url(re.compile(rf"/support/tickets/{ticket.id}#scan-{scan.id}$"))
    expect(page.locator(f"#scan-{scan.id} .rescan-open")).to_contain_text(
        "Rescan requested: Motion distortion or artefacts")
    expect(page.locator("#status-panel .status-large")).to_have_text("Waiting on user")
    assert read_db(lambda: Ticket.get_by_id(ticket.id).status) == Status.WAITING

"""Search in a real browser: typing in the Support page's search box filters the ticket table in place
(htmx, after a pause), the URL says what was searched, filters keep it; without JavaScript the box is a
GET form; the header search lists matches with the words highlighted."""
import re

import pytest

from smilepass.models import Priority

from .browser_support import TIMEOUT_MS, marker, seed_tickets, set_marker, sign_in
from .conftest import PASSWORD
from .parts import import_part

sync_api = import_part("playwright.sync_api", "make setup installs the test extras")
expect = sync_api.expect
expect.set_options(timeout=TIMEOUT_MS)

pytestmark = pytest.mark.browser

CLINICIAN = "dr.ada@clinic.test"
OTHER = "dr.bob@clinic.test"


def seed(make_user):
    ada, bob = make_user(CLINICIAN), make_user(OTHER)
    seed_tickets(ada, [("Aligner tray cracked", Priority.HIGH.value, "Warranty & Replacement"),
                       ("Invoice shows the wrong plan", Priority.LOW.value, "Billing & Insurance"),
                       ("Upper arch scan rejected", Priority.NORMAL.value, "Scan & File Validation")])
    seed_tickets(bob, [("Tray for another practice", Priority.LOW.value, "Warranty & Replacement")])
    return ada


def test_typing_in_the_support_search_filters_the_table(make_user, new_page):
    seed(make_user)
    page = new_page()
    sign_in(page, CLINICIAN, PASSWORD)
    rows = page.locator("#ticket-table tbody tr")
    expect(rows).to_have_count(3)
    set_marker(page)
    box = page.get_by_role("searchbox", name="Search tickets", exact=True)
    box.press_sequentially("tra", delay=40)  # a prefix, as one types
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Aligner tray cracked")
    page.wait_for_url(re.compile(r"[?&]q=tra\b"))
    expect(box).to_be_focused()  # the box is outside the swapped table: typing goes on
    assert marker(page) == 1  # in place, no page load

    # A status filter keeps the search; so does the URL.
    box.fill("scan")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Upper arch scan rejected")
    page.locator(".quick-filters").get_by_role("link", name=re.compile("Resolved")).click()
    expect(page.locator("#ticket-table tbody")).to_contain_text("Nothing found for")
    page.wait_for_url(re.compile(r"status=resolved"))
    assert "q=scan" in page.url
    # A new search keeps the status filter (its hidden field joins the search form).
    box.fill("tray")
    page.wait_for_url(re.compile(r"q=tray"))
    assert "status=resolved" in page.url
    box.fill("scan")
    page.wait_for_url(re.compile(r"q=scan"))
    page.locator(".quick-filters").get_by_role("link", name=re.compile("All")).click()
    expect(rows).to_have_count(1)
    assert "q=scan" in page.url and marker(page) == 1

    # Emptying the box shows every ticket again; nothing of another clinician's ever shows.
    box.fill("")
    expect(rows).to_have_count(3)
    box.fill("another practice")
    expect(page.locator("#ticket-table tbody")).to_contain_text("Nothing found for")


def test_without_javascript_the_box_is_a_get_form(make_user, new_page):
    seed(make_user)
    page = new_page(javascript=False)
    sign_in(page, CLINICIAN, PASSWORD)
    page.get_by_role("searchbox", name="Search tickets", exact=True).fill("invoice")
    page.get_by_role("search").filter(has=page.get_by_role("searchbox", name="Search tickets", exact=True)).get_by_role(
        "button", name="Search").click()
    page.wait_for_url(re.compile(r"/support/\?q=invoice"))
    rows = page.locator("#ticket-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Invoice shows the wrong plan")


def test_header_search_lists_matches_with_highlights(make_user, new_page):
    seed(make_user)
    page = new_page()
    sign_in(page, CLINICIAN, PASSWORD)
    header = page.get_by_role("searchbox", name="Search tickets and cases")
    header.fill("cracked")
    header.press("Enter")
    page.wait_for_url(re.compile(r"/search\?q=cracked"))
    results = page.locator(".search-results li")
    expect(results).to_have_count(1)
    expect(results.first.locator("mark")).to_have_text(["cracked", "cracked"])  # in the title and the excerpt

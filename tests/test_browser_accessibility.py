"""Keyboard and screen-reader behaviour in a real browser: the skip link, the header's menu button on
phones, sort buttons with aria-sort, focus and a polite announcement after a table swaps in place, the
scan repair's progress bar and form errors tied to their fields."""
import re

import pytest

from smilepass.models import Priority, Scan

from .browser_support import TIMEOUT_MS, read_db, seed_tickets, sign_in, sort_link
from .conftest import PASSWORD

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
expect.set_options(timeout=TIMEOUT_MS)

pytestmark = pytest.mark.browser

CLINICIAN = "dr.ada@clinic.test"
PHONE = {"width": 390, "height": 844}
SEEDED = [
    ("Case upload stuck at 90 percent", Priority.LOW, "Case Submission"),
    ("Aligner tray cracked at step 7", Priority.URGENT, "Warranty & Replacement"),
    ("Shipping label missing from box", Priority.NORMAL, "Production & Shipping"),
]


def focused_id(page) -> str:
    return page.evaluate("() => document.activeElement && document.activeElement.id")


def test_skip_link_and_phone_menu(make_user, new_page):
    make_user(CLINICIAN)
    page = new_page()
    sign_in(page, CLINICIAN, PASSWORD)

    # The first Tab reaches "Skip to content"; following it puts the focus on the main content.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    assert focused_id(page) == "content"

    # Wide: the navigation is in the header and there is no menu button.
    menu_button = page.locator(".menu > summary")
    main_nav = page.get_by_role("navigation", name="Main")
    expect(menu_button).to_be_hidden()
    expect(main_nav.get_by_role("link", name="Cases")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    # A phone: one Menu button; the navigation opens under it.
    page.set_viewport_size(PHONE)
    expect(menu_button).to_be_visible()
    expect(menu_button).to_have_text("Menu")
    expect(main_nav.get_by_role("link", name="Cases")).to_be_hidden()
    menu_button.click()
    expect(main_nav.get_by_role("link", name="Cases")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_in_viewport()
    main_nav.get_by_role("link", name="Cases").click()
    page.wait_for_url(re.compile(r"/cases/$"))
    expect(main_nav.get_by_role("link", name="Cases")).to_be_hidden()  # a new page starts with the menu shut


def test_phone_menu_opens_without_javascript(make_user, new_page):
    make_user(CLINICIAN)
    page = new_page(javascript=False)
    page.set_viewport_size(PHONE)
    sign_in(page, CLINICIAN, PASSWORD)
    signs_out = page.get_by_role("button", name="Sign out")
    expect(signs_out).to_be_hidden()
    page.locator(".menu > summary").click()
    expect(signs_out).to_be_visible()


def test_sorting_and_filtering_announce_and_move_focus(make_user, new_page):
    ada = make_user(CLINICIAN)
    seed_tickets(ada, SEEDED)
    page = new_page()
    sign_in(page, CLINICIAN, PASSWORD)
    announcer = page.locator("#announcer")
    expect(announcer).to_have_attribute("aria-live", "polite")
    expect(announcer).to_have_text("")

    # Sort headers are buttons inside the column headers, which carry aria-sort.
    title = sort_link(page, "Title")
    expect(title).to_have_count(1)
    title.click()
    expect(page.get_by_role("columnheader", name="Title", exact=True)).to_have_attribute("aria-sort", "ascending")
    expect(announcer).to_have_text("Sorted by Title, ascending. 3 tickets.")
    expect(page.locator("#tickets-heading")).to_be_focused()

    sort_link(page, "Date").click()
    expect(page.get_by_role("columnheader", name="Date", exact=True)).to_have_attribute("aria-sort", "descending")
    expect(announcer).to_have_text("Sorted by Date, newest first. 3 tickets.")
    expect(page.locator("#tickets-heading")).to_be_focused()

    # A status filter says how many tickets are left.
    page.get_by_role("navigation", name="Filter by status").get_by_role("link", name=re.compile(r"^Open")).click()
    expect(announcer).to_have_text("Sorted by Date, newest first. 3 tickets.")
    page.get_by_role("navigation", name="Filter by status").get_by_role("link", name=re.compile(r"^Resolved")).click()
    expect(announcer).to_have_text("Sorted by Date, newest first. 0 tickets.")
    expect(page.locator("#tickets-heading")).to_be_focused()

    # Sending a new request also refreshes the table, but the confirmation is what matters: no focus jump.
    form = page.locator("#new-request")
    form.get_by_label("Title", exact=True).fill("Tray 12 does not seat")
    form.get_by_label("Description").fill("The upper tray lifts at 16 and 26 after two days.")
    form.get_by_role("button", name="Add").click()
    expect(form.locator(".confirmation")).to_contain_text("received")
    expect(page.locator("#tickets-heading")).not_to_be_focused()


def test_repair_progress_bar_and_form_errors(make_user, new_page):
    ada = make_user(CLINICIAN)
    [ticket] = seed_tickets(ada, SEEDED[:1])
    read_db(lambda: Scan.create(ticket=ticket.id, uploader=ada.id, original_name="upper.ply", stored_name="a11y-busy",
                                size=1024, sha256="0" * 64, file_format="ply", triangles=1000, state="processing",
                                stage="fill_holes", progress=0.4))
    page = new_page()
    sign_in(page, CLINICIAN, PASSWORD)
    page.goto(f"/support/tickets/{ticket.id}")
    bar = page.get_by_role("progressbar", name="Repair progress")
    expect(bar).to_have_attribute("aria-valuenow", "40")
    expect(bar).to_have_attribute("aria-valuemin", "0")
    expect(bar).to_have_attribute("aria-valuemax", "100")
    expect(bar).to_have_attribute("aria-valuetext", re.compile(r"40 %$"))

    # A refused form: each field with an error points at its message.
    page.goto("/auth/password")
    page.get_by_role("button", name="Change password").click()
    invalid = page.locator("[aria-invalid=true]")
    expect(invalid.first).to_be_visible()
    for field in invalid.all():
        described_by = (field.get_attribute("aria-describedby") or "").split()
        errors = [page.locator(f"#{ref}") for ref in described_by if ref.endswith("-error") or "-error-" in ref]
        assert errors, f"{field.get_attribute('id')} is not tied to its error"
        for message in errors:
            expect(message).to_be_visible()
            expect(message).to_have_class("field-error")
            expect(message).not_to_have_text("")

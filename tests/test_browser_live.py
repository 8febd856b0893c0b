"""A live ticket page in real Chromium (issue 15 §2): a clinician and a support user on the same ticket in
two browser contexts. The staff reply and status change appear on the clinician's open page without a
reload; the clinician's reply typed meanwhile is answered with the conflict prompt, keeps its text and goes
out with "Send anyway"; an internal note never reaches the clinician's page."""
import re

import pytest

from smilepass.models import User
from smilepass.support import tickets

from .browser_support import TIMEOUT_MS, artifact_path, marker, read_db, set_marker, sign_in
from .conftest import PASSWORD, free_port
from .parts import import_part

sync_api = import_part("playwright.sync_api", "make setup installs the test extras")
expect = sync_api.expect
expect.set_options(timeout=TIMEOUT_MS)

pytestmark = pytest.mark.browser

CLINICIAN = "dr.ada@clinic.test"
SUPPORT = "sam@smilepass.test"


def open_live(page, ticket_id):
    page.goto(f"/support/tickets/{ticket_id}")
    # The stream is open once the page has heard from it (app.js marks it).
    expect(page.locator("#live[data-live-opened]")).to_have_count(1)
    set_marker(page)


def test_a_staff_reply_appears_on_the_clinicians_open_page(make_user, new_page, redis_conn):
    ada = make_user(CLINICIAN, name="Dr. Ada")
    make_user(SUPPORT, "support", name="Sam Support")
    ticket_id = read_db(lambda: tickets.create_ticket(User.get_by_id(ada.id), "Tray 4 cracked",
                                                      "The upper tray cracked at 23.", 1, "Warranty & Replacement").id)
    clinician, staff = new_page(), new_page()
    sign_in(clinician, CLINICIAN, PASSWORD)
    sign_in(staff, SUPPORT, PASSWORD)
    open_live(clinician, ticket_id)
    open_live(staff, ticket_id)

    # Ada starts typing while Sam answers.
    typed = "It happened while taking it out."
    clinician.locator("#reply textarea[name=body]").fill(typed)
    staff.locator("#reply textarea[name=body]").fill("Between us: replace it free of charge.")
    staff.get_by_label("Internal note (staff only)").check()
    staff.get_by_role("button", name="Send reply").click()
    expect(staff.locator("#thread")).to_contain_text("replace it free of charge")
    staff.locator("#reply textarea[name=body]").fill("A new tray 4 is on its way.")
    staff.get_by_role("button", name="Send reply").click()

    # Ada's page shows the reply and the status it moved to, without a reload; never the note.
    expect(clinician.locator("#thread")).to_contain_text("A new tray 4 is on its way.")
    expect(clinician.locator("#status-panel .status-large")).to_have_text("In Progress")
    assert "free of charge" not in clinician.locator("#thread").inner_text()
    assert marker(clinician) == 1
    # Her typing is untouched.
    expect(clinician.locator("#reply textarea[name=body]")).to_have_value(typed)

    # Sam moves the ticket on: Ada's page follows.
    staff.get_by_role("button", name="Move to Waiting on user").click()
    expect(clinician.locator("#status-panel .status-large")).to_have_text("Waiting on user")

    # Her reply was typed before those arrived: she is shown them and asked, her text kept.
    clinician.get_by_role("button", name="Send reply").click()
    prompt = clinician.locator(".arrived")
    expect(prompt).to_contain_text("While you were writing, this arrived")
    expect(prompt).to_contain_text("A new tray 4 is on its way.")
    expect(clinician.locator("#reply textarea[name=body]")).to_have_value(typed)
    clinician.screenshot(path=str(artifact_path("live-conflict.png")), full_page=True, caret="initial")
    clinician.get_by_role("button", name="Send anyway").click()
    expect(clinician.locator("#thread")).to_contain_text(typed)
    expect(clinician.locator(".arrived")).to_have_count(0)
    assert marker(clinician) == 1

    # And Sam sees her reply arrive on his page, which also moved back to In Progress.
    expect(staff.locator("#thread")).to_contain_text(typed)
    expect(staff.locator("#status-panel .status-large")).to_have_text(re.compile("In Progress"))
    assert marker(staff) == 1


class TestWithoutRedis:
    """Redis down: no stream (204), the page says live updates are paused, and the poll shows the
    reload notice once the thread moved; the page itself and replies work as before."""

    @pytest.fixture
    def app_config(self):
        return {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "LIVE_POLL_SECONDS": 1}

    def test_the_page_polls_and_offers_a_reload(self, make_user, new_page):
        ada = make_user(CLINICIAN, name="Dr. Ada")
        make_user(SUPPORT, "support", name="Sam Support")
        ticket_id = read_db(lambda: tickets.create_ticket(User.get_by_id(ada.id), "Tray 4 cracked",
                                                          "The upper tray cracked.", 1, "Warranty & Replacement").id)
        clinician, staff = new_page(), new_page()
        sign_in(clinician, CLINICIAN, PASSWORD)
        sign_in(staff, SUPPORT, PASSWORD)
        clinician.goto(f"/support/tickets/{ticket_id}")
        expect(clinician.locator(".live-off")).to_be_visible()
        expect(clinician.locator("#live-poll .notice")).to_have_count(0)
        staff.goto(f"/support/tickets/{ticket_id}")
        staff.locator("#reply textarea[name=body]").fill("A new tray 4 is on its way.")
        staff.get_by_role("button", name="Send reply").click()
        expect(staff.locator("#thread")).to_contain_text("A new tray 4 is on its way.")
        notice = clinician.locator("#live-poll .notice")
        expect(notice).to_contain_text("New replies or changes on this ticket.")
        notice.get_by_role("link", name="Reload").click()
        expect(clinician.locator("#thread")).to_contain_text("A new tray 4 is on its way.")

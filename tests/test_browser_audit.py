"""Admin → Audit log in a real browser: the filter updates the page in place with JavaScript (the URL
follows, errors show beside the fields) and works as a plain form without it."""
import re

import pytest

from .browser_support import TIMEOUT_MS, artifact_path, marker, set_marker, sign_in
from .conftest import PASSWORD
from .parts import import_part

sync_api = import_part("playwright.sync_api", "make setup installs the test extras")
expect = sync_api.expect
expect.set_options(timeout=TIMEOUT_MS)

pytestmark = pytest.mark.browser

ADMIN = "root@smilepass.test"
CLINICIAN = "dr.ada@clinic.test"


def open_audit_log(page):
    page.get_by_role("navigation", name="Administration").get_by_role("link", name="Audit log").click()
    page.wait_for_url(re.compile(r"/admin/audit"))


def test_filter_in_place_with_javascript(make_user, new_page):
    make_user(ADMIN, "admin")
    make_user(CLINICIAN)
    clinician = new_page()
    sign_in(clinician, CLINICIAN, PASSWORD)
    page = new_page()
    sign_in(page, ADMIN, PASSWORD)
    open_audit_log(page)
    set_marker(page)

    page.get_by_label("Who (email)").fill(CLINICIAN)
    page.get_by_label("Action").select_option("login")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"action=login"))
    rows = page.locator(".audit-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(CLINICIAN)
    expect(rows.first).to_contain_text("Signed in")
    assert marker(page) == 1  # swapped in place, no page load
    expect(page.get_by_role("link", name="Export these entries (CSV)")).to_have_attribute(
        "href", re.compile(r"/admin/audit/export\.csv\?.*action=login"))

    page.get_by_label("Object id").fill("twelve")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("An object id is a number, e.g. 12.")).to_be_visible()
    expect(page.get_by_label("Object id")).to_have_value("twelve")
    expect(page.get_by_label("Who (email)")).to_have_value(CLINICIAN)
    assert marker(page) == 1
    page.screenshot(path=str(artifact_path("audit-log-filter.png")), full_page=True)


def test_filter_without_javascript(make_user, new_page):
    make_user(ADMIN, "admin")
    page = new_page(javascript=False)
    sign_in(page, ADMIN, PASSWORD)
    open_audit_log(page)
    page.get_by_label("Action").select_option("login")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"action=login"))
    expect(page.locator(".audit-table tbody tr")).to_have_count(1)
    expect(page.locator(".audit-table tbody tr").first).to_contain_text(ADMIN)

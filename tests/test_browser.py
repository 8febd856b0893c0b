"""The Support page in a real browser: Playwright driving Debian's Chromium against the test app
served on a local port. Screenshots land in test-artifacts/ at the repository root."""
import re
import time

import pytest

from smilepass.models import Attachment, Priority, Status, Ticket

from .browser_support import (
    PRIORITY_RANK,
    TICKET_NUMBER,
    TIMEOUT_MS,
    artifact_path,
    image_loaded,
    marker,
    read_db,
    seed_tickets,
    send_reply,
    set_marker,
    sign_in,
    sign_out,
    sort_link,
    sorted_header,
    table_priorities,
    table_titles,
    write_screenshot_png,
)
from .conftest import PASSWORD
from .parts import import_part

sync_api = import_part("playwright.sync_api", "make setup installs the test extras")
expect = sync_api.expect
expect.set_options(timeout=TIMEOUT_MS)

pytestmark = pytest.mark.browser

CLINICIAN = "dr.ada@clinic.test"
SUPPORT = "sam@smilepass.test"

# Titles start with distinct capitals, so SQLite's byte order and PostgreSQL's collation agree.
SEEDED = [
    ("Case upload stuck at 90 percent", Priority.LOW, "Case Submission"),
    ("Aligner tray cracked at step 7", Priority.URGENT, "Warranty & Replacement"),
    ("Shipping label missing from box", Priority.NORMAL, "Production & Shipping"),
]
NEW_TITLE = "Upper arch scan rejected on upload"
NEW_DESCRIPTION = "The STL upload stops at 80 percent with error STL-0417. Chrome on Windows 11."


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture
def screenshot_png(tmp_path):
    return write_screenshot_png(tmp_path / "scan-error.png")


def status_badge(page):
    return page.locator("#status-panel .status-large")


def column_header(page, label: str):
    return page.get_by_role("columnheader", name=label, exact=True)


def expect_sorted(page, label: str, direction: str) -> None:
    expect(sorted_header(page)).to_have_count(1)
    expect(column_header(page, label)).to_have_attribute("aria-sort", direction)


# --- tests ------------------------------------------------------------------------------------

def test_clinician_files_ticket_sorts_and_replies(make_user, new_page, screenshot_png):
    ada = make_user(CLINICIAN)
    seed_tickets(ada, SEEDED)
    all_titles = [title for title, _, _ in SEEDED] + [NEW_TITLE]

    page = new_page()
    sign_in(page, CLINICIAN, PASSWORD)
    expect(page.get_by_role("heading", name="Your tickets")).to_be_visible()
    rows = page.locator("#ticket-table tbody tr")
    expect(rows).to_have_count(len(SEEDED))
    assert page.evaluate("() => typeof window.htmx") == "object", "htmx did not load"

    # File a new request with a screenshot; htmx swaps the form and the table in place.
    set_marker(page)
    form = page.locator("#new-request")
    counter = page.locator("#description-count")
    expect(counter).to_have_text("0 / 500")
    form.get_by_label("Title", exact=True).fill(NEW_TITLE)
    form.get_by_label("Description").fill(NEW_DESCRIPTION)
    expect(counter).to_have_text(f"{len(NEW_DESCRIPTION)} / 500")
    form.get_by_label("Priority").select_option(label="High")
    form.get_by_label("Support Category").select_option(label="Scan & File Validation")
    form.get_by_label("Upload Image").set_input_files(screenshot_png)
    form.get_by_role("button", name="Add").click()

    confirmation = form.locator(".confirmation")
    expect(confirmation).to_contain_text(re.compile(r"Request SP-\d{6} received"))
    number = TICKET_NUMBER.search(confirmation.inner_text()).group(0)
    expect(rows).to_have_count(len(SEEDED) + 1)
    newest = rows.first  # the default sort is newest first
    expect(newest).to_contain_text(number)
    expect(newest).to_contain_text(NEW_TITLE)
    expect(newest).to_contain_text("High")
    expect(newest).to_contain_text("Scan & File Validation")
    expect(newest).to_contain_text("Open")
    assert marker(page) == 1, "filing the ticket reloaded the page"
    assert not re.search(r"created=", page.url)

    # The form is ready for the next request.
    expect(form.get_by_label("Title", exact=True)).to_have_value("")
    expect(form.get_by_label("Description")).to_have_value("")
    expect(form.get_by_label("Priority")).to_have_value(str(Priority.LOW.value))
    expect(form.get_by_label("Upload Image")).to_have_value("")
    expect(counter).to_have_text("0 / 500")

    ticket_id = int(number.split("-")[1])
    assert read_db(lambda: Attachment.select().where(Attachment.ticket == ticket_id).count()) == 1
    page.screenshot(path=artifact_path("support-page.png"), full_page=True)

    # Sort by title, both ways, then by priority: htmx swaps the table and pushes the URL.
    sort_link(page, "Title").click()
    expect(page).to_have_url(re.compile(r"[?&]sort=title(&|$)"))
    expect_sorted(page, "Title", "ascending")
    assert table_titles(page) == sorted(all_titles)

    sort_link(page, "Title").click()
    expect(page).to_have_url(re.compile(r"[?&]sort=-title(&|$)"))
    expect_sorted(page, "Title", "descending")
    assert table_titles(page) == sorted(all_titles, reverse=True)

    sort_link(page, "Priority").click()
    expect(page).to_have_url(re.compile(r"[?&]sort=-priority(&|$)"))
    expect_sorted(page, "Priority", "descending")
    assert table_priorities(page) == ["Urgent", "High", "Normal", "Low"]
    assert marker(page) == 1, "sorting reloaded the page"

    # The sort survives a reload, a visit without ?sort and signing out and in again.
    page.reload()
    expect_sorted(page, "Priority", "descending")
    assert table_priorities(page) == ["Urgent", "High", "Normal", "Low"]
    page.goto("/support/")
    expect_sorted(page, "Priority", "descending")
    sign_out(page)
    sign_in(page, CLINICIAN, PASSWORD)
    assert "sort=" not in page.url
    expect_sorted(page, "Priority", "descending")
    priorities = table_priorities(page)
    assert [PRIORITY_RANK[p] for p in priorities] == sorted((PRIORITY_RANK[p] for p in priorities), reverse=True)

    # The ticket: the screenshot's thumbnail loads; a reply joins the thread without a reload.
    page.get_by_role("link", name=re.compile(re.escape(NEW_TITLE))).click()
    page.wait_for_url(re.compile(rf"/support/tickets/{ticket_id}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(NEW_TITLE)
    thumbnail = page.get_by_role("img", name=re.compile(r"^Screenshot "))
    expect(thumbnail).to_be_visible()
    image_loaded(page, thumbnail)
    assert thumbnail.evaluate("img => img.naturalWidth") > 0

    set_marker(page)
    conversation = page.locator("#conversation")
    expect(conversation).to_contain_text("No replies yet.")
    reply_text = "Here is a second scan from the iTero, same error."
    send_reply(page, reply_text)
    expect(conversation.locator(".message")).to_have_count(1)
    expect(conversation.locator(".message .body")).to_have_text(reply_text)
    expect(conversation).not_to_contain_text("No replies yet.")
    expect(page.locator("#reply").get_by_label("Reply", exact=True)).to_have_value("")
    assert marker(page) == 1, "replying reloaded the page"
    page.screenshot(path=artifact_path("ticket-detail.png"), full_page=True)


def test_support_staff_changes_status(make_user, new_page):
    ada = make_user(CLINICIAN)
    make_user(SUPPORT, "support")
    [ticket] = seed_tickets(ada, [("Lower arch file too large to upload", Priority.NORMAL, "Scan & File Validation")])
    note = "Checked the logs: the file is 140 MB, over our limit. Ask for a decimated export."
    public = "Could you export the lower arch again with mesh decimation on and attach it?"

    staff = new_page()
    sign_in(staff, SUPPORT, PASSWORD)
    expect(staff.get_by_role("heading", name="All tickets")).to_be_visible()
    staff.get_by_role("link", name=re.compile("Lower arch file too large")).click()
    staff.wait_for_url(re.compile(rf"/support/tickets/{ticket.id}$"))
    set_marker(staff)
    conversation = staff.locator("#conversation")
    expect(status_badge(staff)).to_have_text("Open")

    send_reply(staff, note, internal=True)
    internal = conversation.locator(".message.internal")
    expect(internal).to_have_count(1)
    expect(internal.locator(".body")).to_have_text(note)
    expect(internal.locator(".tag-internal")).to_have_text("Internal note")
    expect(status_badge(staff)).to_have_text("Open")  # a note is no answer to the clinician

    send_reply(staff, public)
    answer = conversation.locator(".message.from-staff")
    expect(answer).to_have_count(1)
    expect(answer.locator(".body")).to_have_text(public)
    expect(status_badge(staff)).to_have_text("In Progress")  # the first public answer starts work

    staff.get_by_role("button", name="Move to Waiting on user").click()
    expect(status_badge(staff)).to_have_text("Waiting on user")
    expect(staff.locator("#status-panel .steps li.current")).to_have_text("Waiting on user")
    expect(conversation.locator("li.event").last).to_contain_text(re.compile(r"In Progress\s*→\s*Waiting on user"))
    expect(conversation.locator("li.event").last).to_contain_text("by Sam")
    assert marker(staff) == 1, "the staff actions reloaded the page"
    assert read_db(lambda: Ticket.get_by_id(ticket.id).status) == Status.WAITING

    # The clinician, in a browser of their own, sees the answer but not the note.
    clinician = new_page()
    sign_in(clinician, CLINICIAN, PASSWORD)
    clinician.goto(f"/support/tickets/{ticket.id}")
    thread = clinician.locator("#conversation")
    expect(thread.locator(".message .body")).to_have_text([public])
    expect(thread.locator(".message")).to_contain_text("Support team")
    expect(clinician.locator("body")).not_to_contain_text(note)
    assert note not in clinician.content()
    expect(status_badge(clinician)).to_have_text("Waiting on user")
    expect(clinician.locator("#status-panel button")).to_have_count(0)

    set_marker(clinician)
    send_reply(clinician, "Attached the decimated export, 38 MB now.")
    expect(thread.locator(".message .body")).to_have_count(2)
    expect(status_badge(clinician)).to_have_text("In Progress")
    expect(thread.locator("li.event").last).to_contain_text(re.compile(r"Waiting on user\s*→\s*In Progress"))
    assert marker(clinician) == 1, "the reply reloaded the page"
    assert read_db(lambda: Ticket.get_by_id(ticket.id).status) == Status.IN_PROGRESS


def test_session_expiry_htmx_redirects(app, make_user, new_page):
    ada = make_user(CLINICIAN)
    seed_tickets(ada, SEEDED)
    app.config["SESSION_IDLE_SECONDS"] = 1

    page = new_page()
    sign_in(page, CLINICIAN, PASSWORD)
    expect(page.locator("#ticket-table")).to_be_visible()
    time.sleep(2.5)  # idle for longer than the session may be
    sort_link(page, "Title").click()  # an htmx request, answered with HX-Redirect

    page.wait_for_url(re.compile(r"/auth/login"))
    expect(page.get_by_role("heading", name="Sign in to SmilePass")).to_be_visible()
    expect(page.locator(".notice")).to_contain_text("session ended")
    expect(page.locator("#ticket-table")).to_have_count(0)
    expect(page.locator("form:has(input[type=password])")).to_have_count(1)
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)

    # Signing in again goes back to what was asked for: the table sorted by title.
    app.config["SESSION_IDLE_SECONDS"] = 30 * 60
    page.get_by_label("Email").fill(CLINICIAN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/support/\?sort=title"))
    expect_sorted(page, "Title", "ascending")


def test_works_without_javascript(make_user, new_page, screenshot_png):
    ada = make_user(CLINICIAN)
    make_user(SUPPORT, "support")
    seed_tickets(ada, SEEDED[:2])
    titles = [title for title, _, _ in SEEDED[:2]] + [NEW_TITLE]

    page = new_page(javascript=False)
    sign_in(page, CLINICIAN, PASSWORD)
    assert page.evaluate("() => typeof window.htmx") == "undefined"

    # A plain multipart form post, then a 303 to the Support page with the confirmation.
    form = page.locator("#new-request")
    form.get_by_label("Title", exact=True).fill(NEW_TITLE)
    form.get_by_label("Description").fill(NEW_DESCRIPTION)
    form.get_by_label("Priority").select_option(label="High")
    form.get_by_label("Support Category").select_option(label="Scan & File Validation")
    form.get_by_label("Upload Image").set_input_files(screenshot_png)
    form.get_by_role("button", name="Add").click()
    page.wait_for_url(re.compile(r"/support/\?created=\d+$"))
    ticket_id = int(page.url.rsplit("=", 1)[1])
    number = f"SP-{ticket_id:06d}"
    expect(form.locator(".confirmation")).to_contain_text(f"Request {number} received")
    expect(page.locator("#ticket-table tbody tr").first).to_contain_text(NEW_TITLE)
    expect(form.get_by_label("Title", exact=True)).to_have_value("")
    page.screenshot(path=artifact_path("support-page-nojs.png"), full_page=True)

    # A sort header is an ordinary link.
    sort_link(page, "Title").click()
    page.wait_for_url(re.compile(r"/support/\?sort=title$"))
    expect_sorted(page, "Title", "ascending")
    assert table_titles(page) == sorted(titles)

    page.get_by_role("link", name=re.compile(re.escape(NEW_TITLE))).click()
    page.wait_for_url(re.compile(rf"/support/tickets/{ticket_id}$"))
    image_loaded(page, page.get_by_role("img", name=re.compile(r"^Screenshot ")))
    reply_text = "Same error again this morning, second scanner too."
    send_reply(page, reply_text)
    page.wait_for_url(re.compile(rf"/support/tickets/{ticket_id}#reply$"))
    expect(page.locator("#conversation .message .body")).to_have_text([reply_text])

    staff = new_page(javascript=False)
    sign_in(staff, SUPPORT, PASSWORD)
    staff.goto(f"/support/tickets/{ticket_id}")
    expect(status_badge(staff)).to_have_text("Open")
    staff.get_by_role("button", name="Move to Waiting on user").click()
    expect(staff.locator("#flash")).to_contain_text(f"{number} is now Waiting on user.")
    expect(status_badge(staff)).to_have_text("Waiting on user")
    expect(staff.locator("#conversation li.event")).to_contain_text(re.compile(r"Open\s*→\s*Waiting on user"))

    page.reload()
    expect(status_badge(page)).to_have_text("Waiting on user")
    send_reply(page, "Exported again with decimation, attached to the case.")
    expect(page.locator("#conversation .message .body")).to_have_count(2)
    expect(status_badge(page)).to_have_text("In Progress")


def test_scan_upload_shows_progress_then_report_and_previews(app, make_user, new_page, redis_conn, tmp_path):
    import subprocess
    import sys

    from .conftest import ROOT, stop_worker, worker_env
    from .scanfiles import arch_stl

    make_user(CLINICIAN)
    scan_file = tmp_path / "clinic7_patient42_2026-11-20.stl"
    scan_file.write_bytes(arch_stl(200, 500))
    page = new_page()
    sign_in(page, CLINICIAN, PASSWORD)
    page.get_by_label("Title").fill("Lower arch scan flagged by the lab")
    page.get_by_label("Description").fill("Lab says holes on 36 and 37. Please check the attached scan.")
    page.get_by_label("Intraoral scan (STL or PLY)").set_input_files(str(scan_file))
    page.get_by_role("button", name="Add").click()
    confirmation = page.locator(".confirmation")
    expect(confirmation).to_contain_text("received")
    confirmation.locator("strong a").click()
    panel = page.locator(".scan-panel")
    expect(panel.locator("progress")).to_be_visible()
    expect(panel).to_contain_text("Queued")
    # Only now a worker starts: the page polls and follows the job to its result.
    worker = subprocess.Popen([sys.executable, "-m", "workers.worker"], cwd=ROOT, env=worker_env(app),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        expect(panel.locator(".verdict")).to_contain_text("Repaired", timeout=90_000)
    finally:
        stop_worker(worker)
    expect(panel.locator("progress")).to_have_count(0)
    for image in panel.locator(".previews img").all():
        image_loaded(page, image)
    panel.locator("summary", has_text="What we found and fixed").click()
    expect(panel.locator(".report table")).to_contain_text("Holes filled")
    page.screenshot(path=str(artifact_path("scan-report.png")), full_page=True)


def test_drafts_are_saved_restored_and_discarded(make_user, new_page, screenshot_png):
    ada = make_user(CLINICIAN)
    [ticket] = seed_tickets(ada, SEEDED[:1])

    # With htmx: Save draft answers only its status box, even with a file chosen (files stay out).
    page = new_page()
    sign_in(page, CLINICIAN, PASSWORD)
    form = page.locator("#new-request")
    form.get_by_label("Title", exact=True).fill("Tray 12 does not seat")
    form.get_by_label("Description").fill("Half written: the upper tray lifts at")
    form.get_by_label("Upload Image").set_input_files(screenshot_png)
    form.get_by_role("button", name="Save draft").click()
    expect(form.locator(".draft-status")).to_contain_text("Draft saved")
    expect(form.get_by_label("Title", exact=True)).to_have_value("Tray 12 does not seat")
    page.reload()
    expect(form.locator(".draft-note")).to_contain_text("Draft restored from")
    expect(form.get_by_label("Description")).to_have_value("Half written: the upper tray lifts at")
    form.get_by_role("button", name="Discard draft").click()
    expect(form.locator(".draft-status")).to_have_text("Draft discarded.")
    expect(form.get_by_label("Title", exact=True)).to_have_value("")

    # The reply box saves itself two seconds after typing stops, and the sent reply ends the draft.
    page.goto(f"/support/tickets/{ticket.id}")
    reply = page.locator("#reply")
    reply.get_by_label("Reply", exact=True).fill("The tray still lifts at 16 and")
    expect(reply.locator(".draft-status")).to_contain_text("Draft saved")
    page.reload()
    expect(reply.get_by_label("Reply", exact=True)).to_have_value("The tray still lifts at 16 and")
    expect(reply.locator(".draft-note")).to_contain_text("Draft restored from")
    reply.get_by_role("button", name="Send reply").click()
    expect(page.locator("#conversation .message .body")).to_have_text(["The tray still lifts at 16 and"])
    page.reload()
    expect(page.locator("#reply").get_by_label("Reply", exact=True)).to_have_value("")
    expect(page.locator(".draft-note")).to_have_count(0)

    # Without JavaScript: a plain post, then the page comes back with the draft.
    plain = new_page(javascript=False)
    sign_in(plain, CLINICIAN, PASSWORD)
    form = plain.locator("#new-request")
    form.get_by_label("Title", exact=True).fill("Written without scripts")
    form.get_by_role("button", name="Save draft").click()
    plain.wait_for_url(re.compile(r"/support/$"))
    expect(plain.locator("#flash")).to_contain_text("Draft saved.")
    expect(form.get_by_label("Title", exact=True)).to_have_value("Written without scripts")
    form.get_by_role("button", name="Discard draft").click()
    expect(plain.locator("#flash")).to_contain_text("Draft discarded.")
    expect(form.get_by_label("Title", exact=True)).to_have_value("")

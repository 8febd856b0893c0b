"""The staff queue in a real browser: a support user opens the queue, takes the top ticket, inserts
a canned reply and sends it, then escalates the ticket. Screenshots land in test-artifacts/."""
import datetime as dt
import re

import pytest

from smilepass.models import AuditLog, CannedReply, Priority, Ticket, Tier, User, utcnow
from smilepass.support import tickets

from .browser_support import TIMEOUT_MS, artifact_path, marker, read_db, set_marker, sign_in
from .conftest import PASSWORD
from .parts import import_part

sync_api = import_part("playwright.sync_api", "make setup installs the test extras")
expect = sync_api.expect
expect.set_options(timeout=TIMEOUT_MS)

pytestmark = pytest.mark.browser

CLINICIAN = "dr.ada@clinic.test"
CLINICIAN_NAME = "Dr. Ada Lovelace"
SUPPORT = "sam@smilepass.test"
SUPERVISOR = "sue@smilepass.test"
CANNED_TITLE = "Scan received"
CANNED_BODY = "Hello {clinician_name}, thank you: we received the scan for {ticket_number} and are checking it now."
DRAFT = "Sorry for the wait."


def seed_queue(clinician: User, support: User) -> int:
    """Three open tickets; the Enterprise one with a breached response comes first. Returns its id."""
    def seed():
        now = utcnow()
        made = {}
        for title, priority, tier, breached in [
            ("Invoice shows the wrong plan", Priority.NORMAL, Tier.STANDARD, False),
            ("Upper arch scan rejected", Priority.URGENT, Tier.ENTERPRISE, True),
            ("Attachment tray cracked", Priority.HIGH, Tier.PRO, False),
        ]:
            ticket = tickets.create_ticket(clinician, title, f"Seeded: {title}.", priority.value, "Case Submission")
            Ticket.update(tier=tier.value, response_breached=breached,
                          next_due_at=now + dt.timedelta(hours=-1 if breached else 6)).where(
                Ticket.id == ticket.id).execute()
            made[title] = ticket.id
        CannedReply.create(title=CANNED_TITLE, body=CANNED_BODY, created_by=support.id)
        return made["Upper arch scan rejected"]
    return read_db(seed)


def test_support_works_the_queue(make_user, new_page, redis_conn):
    clinician = make_user(CLINICIAN, name=CLINICIAN_NAME)
    support = make_user(SUPPORT, "support", name="Sam Support")
    supervisor = make_user(SUPERVISOR, "support", name="Sue Supervisor")
    read_db(lambda: User.update(escalation_role="supervisor").where(User.id == supervisor.id).execute())
    top_id = seed_queue(clinician, support)
    number = f"SP-{top_id:06d}"

    # 1. The queue: the breached Enterprise ticket first, with its breach mark.
    page = new_page()
    sign_in(page, SUPPORT, PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Queue").click()
    page.wait_for_url(re.compile(r"/queue/"))
    rows = page.locator("#queue tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text(number)
    expect(rows.first).to_contain_text("Breached")
    expect(rows.first).to_contain_text("Enterprise")
    page.screenshot(path=str(artifact_path("queue.png")), full_page=True, caret="initial")

    # Tabs switch in place (htmx) and still have their own URLs.
    set_marker(page)
    page.locator(".queue-tabs").get_by_role("link", name=re.compile("Assigned to me")).click()
    expect(page.locator("#queue tbody")).to_contain_text("No open tickets are assigned to you.")
    page.wait_for_url(re.compile(r"tab=mine"))
    page.locator(".queue-tabs").get_by_role("link", name=re.compile("Unassigned")).click()
    expect(rows).to_have_count(3)
    assert marker(page) == 1

    # 2. The top ticket: take it.
    rows.first.get_by_role("link", name=re.compile(number)).click()
    page.wait_for_url(re.compile(rf"/support/tickets/{top_id}$"))
    panel = page.locator("#assign-panel")
    panel.get_by_role("button", name="Assign to me").click()
    expect(panel.locator(".assignee")).to_have_text("Sam Support (you)")

    # 3. A canned reply, added to what was typed, with its placeholders filled in; then send it.
    reply_box = page.locator("#reply").get_by_label("Reply", exact=True)
    reply_box.fill(DRAFT)
    # Another staff member opening the ticket now is told Sam is replying (Redis, 30 s).
    colleague = new_page()
    sign_in(colleague, SUPERVISOR, PASSWORD)
    colleague.goto(f"/support/tickets/{top_id}")
    expect(colleague.locator("#presence")).to_contain_text("Sam Support is replying to this ticket.")
    expect(page.locator("#presence")).not_to_contain_text("replying")
    page.locator(".canned-picker").get_by_label("Canned reply").select_option(label=CANNED_TITLE)
    page.locator(".canned-picker").get_by_role("button", name="Insert").click()
    expected = (f"{DRAFT}\n\nHello {CLINICIAN_NAME}, thank you: we received the scan for {number} "
                "and are checking it now.")
    reply_box = page.locator("#reply").get_by_label("Reply", exact=True)
    expect(reply_box).to_have_value(expected)
    page.screenshot(path=str(artifact_path("canned-reply.png")), full_page=True, caret="initial")
    page.locator("#reply").get_by_role("button", name="Send reply").click()
    expect(page.locator("#thread")).to_contain_text(f"Hello {CLINICIAN_NAME}, thank you")
    expect(page.locator("#reply").get_by_label("Reply", exact=True)).to_have_value("")

    # 4. Escalate with a reason.
    escalation = page.locator("#escalation")
    escalation.get_by_label("Reason").fill("Enterprise clinic, patient in treatment: needs a supervisor today.")
    escalation.get_by_role("button", name="Escalate").click()
    expect(escalation.locator(".escalated-mark")).to_be_visible()
    expect(escalation).to_contain_text("Sue Supervisor")
    page.screenshot(path=str(artifact_path("escalated.png")), full_page=True, caret="initial")

    ticket = read_db(lambda: Ticket.get_by_id(top_id))
    assert ticket.assignee_id == support.id and ticket.escalation_level == 1
    assert read_db(lambda: AuditLog.select().where(AuditLog.action == "ticket_assign").count()) == 1

"""The staff queue: order, tabs, staff only; assignment from the ticket page and bulk changes."""
import datetime as dt
import re

import pytest

from smilepass.models import AuditLog, Clinic, ClinicMember, Notification, Priority, Status, Ticket, Tier, User, utcnow
from smilepass.support import tickets

from .conftest import query

NUMBER = re.compile(r"SP-(\d{6})")


def queue_ids(html: str) -> list[int]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    ids = [int(n) for n in NUMBER.findall(body)]
    return list(dict.fromkeys(ids))  # a number appears once per row, in the link


def user(email):
    return query(lambda: User.get(User.email == email))


def seed(requester_email, title, **fields):
    """A ticket with its service-level fields set directly."""
    def make():
        ticket = tickets.create_ticket(User.get(User.email == requester_email), title, "Seeded.",
                                       fields.pop("priority", Priority.NORMAL.value), "Case Submission")
        if fields:
            Ticket.update(**fields).where(Ticket.id == ticket.id).execute()
        return ticket.id
    return query(make)


@pytest.fixture
def requester(clinician):
    return "dr.ada@clinic.test"


@pytest.fixture
def fixed_clock(time_machine):
    """Requested before the sign-in fixtures, so their sessions start at the same fixed moment."""
    time_machine.move_to(dt.datetime(2026, 12, 4, 16, 59, tzinfo=dt.UTC), tick=False)  # Friday, a minute to closing


def test_queue_orders_by_tier_breach_priority_and_due(fixed_clock, support, requester):
    now = utcnow()
    hours = lambda n: now + dt.timedelta(hours=n)  # noqa: E731
    urgent, high, low = Priority.URGENT.value, Priority.HIGH.value, Priority.LOW.value
    ent, pro, std = Tier.ENTERPRISE.value, Tier.PRO.value, Tier.STANDARD.value
    # Created in an order unlike the expected one, so nothing passes by creation order.
    j = seed(requester, "std low undated", tier=std, priority=low, next_due_at=None)
    h = seed(requester, "pro high soon", tier=pro, priority=high, next_due_at=hours(0.5))
    g = seed(requester, "pro urgent paused", tier=pro, priority=urgent, next_due_at=None, sla_paused_at=now)
    f = seed(requester, "pro urgent +2h", tier=pro, priority=urgent, next_due_at=hours(2))
    e = seed(requester, "pro urgent +1h", tier=pro, priority=urgent, next_due_at=hours(1))
    c = seed(requester, "pro urgent breached flag", tier=pro, priority=urgent, next_due_at=None,
             resolution_breached=True)
    d = seed(requester, "pro urgent overdue", tier=pro, priority=urgent, next_due_at=hours(-1))
    i = seed(requester, "std urgent breached", tier=std, priority=urgent, response_breached=True, next_due_at=hours(3))
    a = seed(requester, "ent low", tier=ent, priority=low, next_due_at=hours(5))
    b = seed(requester, "ent low breached", tier=ent, priority=low, response_breached=True, next_due_at=hours(9))
    seed(requester, "ent resolved", tier=ent, priority=urgent, status=Status.RESOLVED.value)
    seed(requester, "ent closed", tier=ent, priority=urgent, status=Status.CLOSED.value)

    response = support.get("/queue/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert queue_ids(html) == [b, a, d, c, e, f, g, h, i, j]
    assert "ent resolved" not in html and "ent closed" not in html
    # The breach mark, tier and paused state are shown.
    row_b = html.split(f"SP-{b:06d}", 1)[1].split("</tr>", 1)[0]
    assert "Breached" in row_b and "Enterprise" in row_b
    row_g = html.split(f"SP-{g:06d}", 1)[1].split("</tr>", 1)[0]
    assert "Paused" in row_g and "Breached" not in row_g


def test_tabs_counts_and_htmx_swap(support, requester, make_user):
    sam = user("sam@smilepass.test")
    other = make_user("kim@smilepass.test", "support")
    mine = seed(requester, "mine", assignee=sam.id)
    theirs = seed(requester, "theirs", assignee=other.id)
    free = seed(requester, "free")
    escalated = seed(requester, "escalated to sam", assignee=other.id, escalation_owner=sam.id, escalation_level=1)
    seed(requester, "mine but resolved", assignee=sam.id, status=Status.RESOLVED.value)

    html = support.get("/queue/").get_data(as_text=True)
    assert queue_ids(html) == [free]
    assert re.search(r"Unassigned <span class=\"count\">1</span>", html)
    assert re.search(r"Assigned to me <span class=\"count\">1</span>", html)
    assert re.search(r"Escalated to me <span class=\"count\">1</span>", html)

    fragment = support.get("/queue/?tab=mine", htmx=True)
    text = fragment.get_data(as_text=True)
    assert text.lstrip().startswith('<div id="queue"') and "<html" not in text
    assert queue_ids(text) == [mine]
    assert queue_ids(support.get("/queue/?tab=escalated").get_data(as_text=True)) == [escalated]
    assert theirs not in queue_ids(support.get("/queue/?tab=unassigned").get_data(as_text=True))
    # Requester and assignee columns.
    assert "Kim" in support.get("/queue/?tab=escalated").get_data(as_text=True)


def test_queue_pages(app, support, requester):
    app.config["PAGE_SIZE"] = 2
    ids = [seed(requester, f"t{n}", priority=Priority.URGENT.value) for n in range(3)]
    first = support.get("/queue/").get_data(as_text=True)
    assert queue_ids(first) == ids[:2] and "page=2" in first
    assert queue_ids(support.get("/queue/?tab=unassigned&page=2").get_data(as_text=True)) == ids[2:]


def test_clinic_shown_beside_requester(support, requester):
    def link():
        clinic = Clinic.create(name="Bright Smiles Dental", tier=Tier.PRO.value)
        ClinicMember.create(user=User.get(User.email == requester), clinic=clinic)
    query(link)
    seed(requester, "from a clinic")
    assert "Bright Smiles Dental" in support.get("/queue/").get_data(as_text=True)


def test_staff_only(clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    assert clinician.get("/queue/").status_code == 404
    assert clinician.post("/queue/bulk", {"ticket": ticket_id, "action": "status", "status": 3}).status_code == 404
    assert clinician.post(f"/queue/tickets/{ticket_id}/assign", {"assignee": "none"}).status_code == 404
    assert "Queue</a>" not in clinician.get("/support/").get_data(as_text=True)


def test_queue_link_for_staff(support):
    assert 'href="/queue/"' in support.get("/support/").get_data(as_text=True)


def test_assign_from_ticket_page(support, requester, make_user):
    sam = user("sam@smilepass.test")
    kim = make_user("kim@smilepass.test", "support")
    ticket_id = seed(requester, "needs an owner")
    page = support.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "Assign to me" in page and "Unassigned" in page

    response = support.post(f"/queue/tickets/{ticket_id}/assign", {"assignee": sam.id})
    assert response.status_code == 303
    assert query(lambda: Ticket.get_by_id(ticket_id).assignee_id) == sam.id
    assert "Sam (you)" in support.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)

    fragment = support.post(f"/queue/tickets/{ticket_id}/assign", {"assignee": kim.id}, htmx=True)
    assert fragment.status_code == 200
    assert fragment.get_data(as_text=True).lstrip().startswith('<section id="assign-panel"')
    assert query(lambda: Ticket.get_by_id(ticket_id).assignee_id) == kim.id
    # Kim is told; nobody is told about taking a ticket oneself.
    kinds = query(lambda: [(n.user_id, n.kind) for n in Notification.select().where(Notification.ticket == ticket_id)])
    assert (kim.id, "ticket_assigned") in kinds and (sam.id, "ticket_assigned") not in kinds

    assert support.post(f"/queue/tickets/{ticket_id}/assign", {"assignee": "none"}).status_code == 303
    assert query(lambda: Ticket.get_by_id(ticket_id).assignee_id) is None

    trail = query(lambda: [a.detail for a in AuditLog.select().where(
        (AuditLog.action == "ticket_assign") & (AuditLog.object_id == str(ticket_id))).order_by(AuditLog.id)])
    assert trail == ["Unassigned → Sam", "Sam → Kim", "Kim → Unassigned"]


def test_assign_refusals(support, requester):
    clinician = user(requester)
    ticket_id = seed(requester, "refusals")
    response = support.post(f"/queue/tickets/{ticket_id}/assign", {"assignee": clinician.id})
    assert response.status_code == 422
    assert "Choose an active staff member." in response.get_data(as_text=True)
    response = support.post(f"/queue/tickets/{ticket_id}/assign", {"assignee": "none"}, htmx=True)
    assert response.status_code == 422 and "is not assigned to anyone" in response.get_data(as_text=True)
    assert support.post("/queue/tickets/999999/assign", {"assignee": "none"}).status_code == 404
    assert query(lambda: AuditLog.select().where(AuditLog.action == "ticket_assign").count()) == 0


def test_assign_needs_csrf(support, requester):
    ticket_id = seed(requester, "csrf")
    response = support.post(f"/queue/tickets/{ticket_id}/assign", {"assignee": "none"}, csrf=False)
    assert response.status_code == 400


def test_bulk_assign(support, requester, make_user):
    kim = make_user("kim@smilepass.test", "support")
    one, two = seed(requester, "one"), seed(requester, "two")
    closed = seed(requester, "closed", status=Status.CLOSED.value)
    response = support.post("/queue/bulk", {"ticket": [one, two, closed], "action": "assign", "assignee": kim.id,
                                            "tab": "unassigned", "page": "1"})
    assert response.status_code == 303 and "/queue/?tab=unassigned" in response.headers["Location"]
    page = support.get(response.headers["Location"]).get_data(as_text=True)
    assert "2 changed, 1 left as they were" in page
    assert f"SP-{closed:06d} is closed." in page
    assert query(lambda: [Ticket.get_by_id(t).assignee_id for t in (one, two, closed)]) == [kim.id, kim.id, None]
    assert query(lambda: AuditLog.select().where(AuditLog.action == "ticket_assign").count()) == 2
    assert query(lambda: Notification.select().where((Notification.user == kim.id)
                                                     & (Notification.kind == "ticket_assigned")).count()) == 2


def test_bulk_status_reports_refusals(support, requester):
    open_one = seed(requester, "open one")
    waiting = seed(requester, "waiting", status=Status.WAITING.value)
    response = support.post("/queue/bulk", {"ticket": [open_one, waiting], "action": "status",
                                            "status": Status.CLOSED.value, "tab": "unassigned"}, htmx=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "0 changed, 2 left as they were" in html
    assert f"SP-{open_one:06d}: A ticket cannot move from Open to Closed." in html
    assert query(lambda: Ticket.get_by_id(open_one).status) == Status.OPEN.value

    response = support.post("/queue/bulk", {"ticket": [open_one, waiting], "action": "status",
                                            "status": Status.RESOLVED.value, "tab": "unassigned"}, htmx=True)
    html = response.get_data(as_text=True)
    assert "2 changed" in html and queue_ids(html) == []
    assert query(lambda: [Ticket.get_by_id(t).status for t in (open_one, waiting)]) == [Status.RESOLVED.value] * 2
    # Through the workflow: a status change row and an audit row per ticket.
    assert query(lambda: AuditLog.select().where(AuditLog.action == "ticket_status").count()) == 2


def test_bulk_status_mixed(support, requester):
    open_one = seed(requester, "open")
    in_progress = seed(requester, "in progress", status=Status.IN_PROGRESS.value)
    response = support.post("/queue/bulk", {"ticket": [open_one, in_progress], "action": "status",
                                            "status": Status.WAITING.value}, htmx=True)
    assert "2 changed" in response.get_data(as_text=True)
    response = support.post("/queue/bulk", {"ticket": [open_one, in_progress], "action": "status",
                                            "status": Status.IN_PROGRESS.value}, htmx=True)
    assert "2 changed" in response.get_data(as_text=True)
    resolved = seed(requester, "resolved", status=Status.RESOLVED.value)
    response = support.post("/queue/bulk", {"ticket": [open_one, resolved], "action": "status",
                                            "status": Status.CLOSED.value}, htmx=True)
    html = response.get_data(as_text=True)
    assert "1 changed, 1 left as they were" in html
    assert query(lambda: Ticket.get_by_id(resolved).status) == Status.CLOSED.value


def test_bulk_input_errors(support, requester):
    ticket_id = seed(requester, "x")
    response = support.post("/queue/bulk", {"action": "assign", "assignee": "none"}, htmx=True)
    assert response.status_code == 422 and "Select at least one ticket." in response.get_data(as_text=True)
    response = support.post("/queue/bulk", {"ticket": ticket_id, "action": "status", "status": "0"}, htmx=True)
    assert response.status_code == 422 and "Choose a status." in response.get_data(as_text=True)
    response = support.post("/queue/bulk", {"ticket": ticket_id, "action": "status", "status": "9"})
    assert response.status_code == 303
    assert "Choose a status." in support.get(response.headers["Location"]).get_data(as_text=True)

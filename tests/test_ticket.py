"""Ticket detail: the thread, replies and internal notes, the status workflow, and who may see what."""
import pytest

from smilepass.models import AuditLog, Message, Status, StatusChange, Ticket

from .conftest import query


def set_status(browser, ticket_id, status, htmx=False):
    return browser.post(f"/support/tickets/{ticket_id}/status", {"status": str(int(status))}, htmx=htmx)


def status_of(ticket_id):
    return query(lambda: Ticket.get_by_id(ticket_id).status_enum)


def test_detail_shows_request_and_thread(clinician, support, new_ticket):
    ticket_id = new_ticket(clinician, title="Scan rejected", description="The lab says holes on 36.")
    support.get(f"/support/tickets/{ticket_id}")
    support.post(f"/support/tickets/{ticket_id}/replies", {"body": "Please re-upload the lower arch."})
    page = clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "Scan rejected" in page and "The lab says holes on 36." in page
    assert "Please re-upload the lower arch." in page and "Support team" in page


def test_reply_with_htmx_returns_the_conversation_fragment(clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    response = clinician.post(f"/support/tickets/{ticket_id}/replies", {"body": "Any news?"}, htmx=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html
    assert html.lstrip().startswith('<section id="conversation"')
    assert "Any news?" in html
    assert 'id="status-panel"' in html and 'hx-swap-oob="true"' in html


def test_reply_without_htmx_redirects(clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    response = clinician.post(f"/support/tickets/{ticket_id}/replies", {"body": "Any news?"})
    assert response.status_code == 303
    assert response.headers["Location"].startswith(f"/support/tickets/{ticket_id}")


def test_empty_reply_is_refused(clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    response = clinician.post(f"/support/tickets/{ticket_id}/replies", {"body": "   "}, htmx=True)
    assert response.status_code == 422
    assert "Write a reply first." in response.get_data(as_text=True)


def test_internal_notes_are_for_staff_only(clinician, support, new_ticket):
    ticket_id = new_ticket(clinician)
    support.post(f"/support/tickets/{ticket_id}/replies", {"body": "Clinic owes two invoices", "internal": "y"})
    staff_view = support.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "Clinic owes two invoices" in staff_view and "Internal note" in staff_view
    for html in (
        clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True),
        clinician.get(f"/support/tickets/{ticket_id}", htmx=True).get_data(as_text=True),
        clinician.post(f"/support/tickets/{ticket_id}/replies", {"body": "hello"}, htmx=True).get_data(as_text=True),
    ):
        assert "Clinic owes two invoices" not in html
    # A note does not count as the first response, nor does it move the ticket.
    assert query(lambda: Ticket.get_by_id(ticket_id).first_response_at) is None


def test_clinician_cannot_write_internal_notes(clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    clinician.post(f"/support/tickets/{ticket_id}/replies", {"body": "secret?", "internal": "y"})
    assert query(lambda: Message.get().internal) is False


def test_first_staff_reply_moves_open_to_in_progress(clinician, support, new_ticket):
    ticket_id = new_ticket(clinician)
    support.post(f"/support/tickets/{ticket_id}/replies", {"body": "On it."})
    assert status_of(ticket_id) == Status.IN_PROGRESS
    assert query(lambda: Ticket.get_by_id(ticket_id).first_response_at) is not None


def test_full_workflow_with_timeline(clinician, support, new_ticket):
    ticket_id = new_ticket(clinician)
    for step in (Status.IN_PROGRESS, Status.WAITING):
        assert set_status(support, ticket_id, step).status_code == 303
    # The clinician's answer sends it back to the team.
    clinician.post(f"/support/tickets/{ticket_id}/replies", {"body": "Here is the photo."})
    assert status_of(ticket_id) == Status.IN_PROGRESS
    assert set_status(support, ticket_id, Status.RESOLVED).status_code == 303
    assert set_status(support, ticket_id, Status.CLOSED).status_code == 303
    changes = query(lambda: [(Status(c.from_status), Status(c.to_status)) for c in
                             StatusChange.select().order_by(StatusChange.id)])
    assert changes == [(Status.OPEN, Status.IN_PROGRESS), (Status.IN_PROGRESS, Status.WAITING),
                       (Status.WAITING, Status.IN_PROGRESS), (Status.IN_PROGRESS, Status.RESOLVED),
                       (Status.RESOLVED, Status.CLOSED)]
    page = clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert page.count('class="event"') == 5 and "This ticket is closed." in page
    audited = query(lambda: AuditLog.select().where(AuditLog.action == "ticket_status").count())
    assert audited == 5


@pytest.mark.parametrize("start, target", [
    (Status.OPEN, Status.CLOSED),
    (Status.CLOSED, Status.IN_PROGRESS),
    (Status.CLOSED, Status.OPEN),
    (Status.IN_PROGRESS, Status.OPEN),
])
def test_invalid_transitions_are_refused_with_a_message(clinician, support, new_ticket, start, target):
    ticket_id = new_ticket(clinician)
    query(lambda: Ticket.update(status=start).execute())
    response = set_status(support, ticket_id, target, htmx=True)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "cannot move from" in html or "is closed" in html
    assert status_of(ticket_id) == start


def test_clinician_reopens_resolved_but_not_closed(clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    query(lambda: Ticket.update(status=Status.RESOLVED).execute())
    page = clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "Reopen" in page
    assert set_status(clinician, ticket_id, Status.IN_PROGRESS).status_code == 303
    assert status_of(ticket_id) == Status.IN_PROGRESS
    query(lambda: Ticket.update(status=Status.CLOSED).execute())
    refused = set_status(clinician, ticket_id, Status.IN_PROGRESS)
    assert refused.status_code == 422 and status_of(ticket_id) == Status.CLOSED
    assert "Reopen" not in clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)


def test_clinician_cannot_move_statuses_like_staff(clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    assert set_status(clinician, ticket_id, Status.RESOLVED).status_code == 422
    assert status_of(ticket_id) == Status.OPEN


def test_closed_tickets_take_no_replies(clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    query(lambda: Ticket.update(status=Status.CLOSED).execute())
    response = clinician.post(f"/support/tickets/{ticket_id}/replies", {"body": "hello?"})
    assert response.status_code == 422
    assert query(lambda: Message.select().count()) == 0


def test_garbage_status_values(clinician, support, new_ticket):
    ticket_id = new_ticket(clinician)
    for value in ("", "abc", "99", "-1"):
        response = support.post(f"/support/tickets/{ticket_id}/status", {"status": value})
        assert response.status_code == 422


@pytest.mark.parametrize("method, path", [
    ("get", "/support/tickets/{id}"),
    ("get_htmx", "/support/tickets/{id}"),
    ("post", "/support/tickets/{id}/replies"),
    ("post", "/support/tickets/{id}/status"),
])
def test_another_clinicians_ticket_is_a_404_like_a_missing_one(clinician, other_clinician, new_ticket, method, path):
    theirs = new_ticket(other_clinician)
    for ticket_id in (theirs, 999999):
        url = path.format(id=ticket_id)
        if method == "get":
            response = clinician.get(url)
        elif method == "get_htmx":
            response = clinician.get(url, htmx=True)
        else:
            response = clinician.post(url, {"body": "sneaky", "status": "3"})
        assert response.status_code == 404
    assert query(lambda: Message.select().count()) == 0
    assert status_of(theirs) == Status.OPEN


def test_404_pages_look_the_same_for_foreign_and_missing(clinician, other_clinician, new_ticket):
    theirs = new_ticket(other_clinician, title="Bob private title")
    foreign = clinician.get(f"/support/tickets/{theirs}").get_data(as_text=True)
    missing = clinician.get("/support/tickets/999999").get_data(as_text=True)
    assert foreign == missing and "Bob private title" not in foreign


def test_status_change_fragment_leaves_the_reply_form_alone(clinician, support, new_ticket):
    ticket_id = new_ticket(clinician)
    response = set_status(support, ticket_id, Status.IN_PROGRESS, htmx=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert html.lstrip().startswith('<section id="status-panel"')
    # The timeline updates out of band; the reply form (and any draft in it) is not in the answer.
    assert '<ol id="thread" class="thread" hx-swap-oob="true">' in html
    assert 'id="reply"' not in html

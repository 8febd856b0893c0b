"""In-app notifications: the unread count in the header, the inbox page, marking read (one or all,
POST with CSRF, htmx or not), and nobody reaching another user's notifications."""
import re

from smilepass.models import AuditLog, Notification, Ticket
from smilepass.notifications import inbox

from .case_helpers import ADA, BOB, in_db, user


def notify(email, text="SP-000001 is now Resolved", ticket_id=None):
    return in_db(lambda: Notification.create(user=user(email).id, ticket=ticket_id, kind="ticket_status", text=text))


def badge(browser):
    html = browser.get("/support/").get_data(as_text=True)
    match = re.search(r'<span class="unread-count">(\d+)</span>', html)
    return int(match.group(1)) if match else 0


def test_header_shows_the_unread_count(clinician, other_clinician):
    assert badge(clinician) == 0
    notify(ADA)
    notify(ADA)
    notify(BOB)
    assert badge(clinician) == 2 and badge(other_clinician) == 1
    assert 'aria-label="Inbox, 2 unread"' in clinician.get("/cases/").get_data(as_text=True)


def test_unread_count_is_one_prepared_query(clinician):
    notify(ADA)
    ada = user(ADA)
    assert in_db(lambda: inbox.unread_count(ada)) == 1
    in_db(lambda: Notification.update(read_at=Notification.created_at).execute())
    assert in_db(lambda: inbox.unread_count(ada)) == 0
    from smilepass.db import _prepared
    assert any(key[1] == "unread-notifications" for key in _prepared)


def test_inbox_lists_newest_first_with_ticket_links(clinician, support, new_ticket):
    ticket_id = new_ticket(clinician)
    notify(ADA, "older <b>one</b>")
    notify(ADA, "newer one", ticket_id=ticket_id)
    page = clinician.get("/account/notifications/inbox")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert html.index("newer one") < html.index("older &lt;b&gt;one&lt;/b&gt;")  # escaped
    assert f'href="/support/tickets/{ticket_id}"' in html
    assert "Mark all read" in html


def test_inbox_needs_sign_in(client):
    response = client.get("/account/notifications/inbox")
    assert response.status_code in (302, 303) and "/auth/login" in response.headers["Location"]


def test_mark_one_read(clinician):
    note = notify(ADA)
    other = notify(ADA, "second")
    clinician.get("/account/notifications/inbox")
    response = clinician.post(f"/account/notifications/{note.id}/read")
    assert response.status_code == 303 and response.headers["Location"].endswith("/account/notifications/inbox")
    assert in_db(lambda: Notification.get_by_id(note.id).read_at) is not None
    assert in_db(lambda: Notification.get_by_id(other.id).read_at) is None
    assert badge(clinician) == 1
    assert in_db(lambda: AuditLog.select().where(AuditLog.action == "notification_read").count()) == 1


def test_mark_read_needs_csrf(clinician):
    note = notify(ADA)
    clinician.get("/account/notifications/inbox")
    response = clinician.post(f"/account/notifications/{note.id}/read", csrf=False)
    assert response.status_code == 400
    assert in_db(lambda: Notification.get_by_id(note.id).read_at) is None


def test_another_users_notification_is_404(clinician, other_clinician):
    bobs = notify(BOB)
    clinician.get("/account/notifications/inbox")
    assert clinician.post(f"/account/notifications/{bobs.id}/read").status_code == 404
    assert clinician.post("/account/notifications/999999/read").status_code == 404
    assert in_db(lambda: Notification.get_by_id(bobs.id).read_at) is None
    assert "SP-000001" not in clinician.get("/account/notifications/inbox").get_data(as_text=True)


def test_mark_all_read_only_touches_your_own(clinician, other_clinician):
    notify(ADA)
    notify(ADA)
    bobs = notify(BOB)
    clinician.get("/account/notifications/inbox")
    response = clinician.post("/account/notifications/read-all")
    assert response.status_code == 303
    assert "2 notifications marked read." in clinician.get("/account/notifications/inbox").get_data(as_text=True)
    assert badge(clinician) == 0 and badge(other_clinician) == 1
    assert in_db(lambda: Notification.get_by_id(bobs.id).read_at) is None


def test_htmx_mark_read_returns_the_list_and_the_new_count(clinician):
    note = notify(ADA)
    notify(ADA, "second")
    clinician.get("/account/notifications/inbox")
    response = clinician.post(f"/account/notifications/{note.id}/read", htmx=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<div id="inbox">' in html and "<html" not in html
    assert 'id="inbox-link"' in html and 'hx-swap-oob="true"' in html
    assert '<span class="unread-count">1</span>' in html
    response = clinician.post("/account/notifications/read-all", htmx=True)
    assert 'class="unread-count"' not in response.get_data(as_text=True)


def test_reply_notification_reaches_the_inbox(clinician, support, new_ticket):
    ticket_id = new_ticket(clinician)
    support.get(f"/support/tickets/{ticket_id}")
    support.post(f"/support/tickets/{ticket_id}/replies", {"body": "Done."}, content_type="multipart/form-data")
    number = in_db(lambda: Ticket.get_by_id(ticket_id).number)
    html = clinician.get("/account/notifications/inbox").get_data(as_text=True)
    assert f"replied on {number}" in html and badge(clinician) == 1

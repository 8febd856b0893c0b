"""The queue panel is rendered once per app for what it shows besides its rows and the session's CSRF
token (staff/views.py: _queue_html). Each test here changes one thing the stored panel depends on and
checks the next view shows it: a key that missed it would serve the old panel."""
import re

import pytest

from smilepass.models import Ticket, User
from smilepass.support import tickets

from .conftest import CSRF_META, PG_URL, query

PANEL_TOKEN = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]+)">')


def seed(requester_email, title):
    return query(lambda: tickets.create_ticket(User.get(User.email == requester_email), title, "Seeded.", 1,
                                               "Case Submission").id)


def panel(browser, path="/queue/"):
    response = browser.get(path, htmx=True)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def count(html, tab_label):
    return int(re.search(rf'{tab_label} <span class="count">(\d+)</span>', html).group(1))


def test_new_tickets_and_assignments_show_at_once(support, clinician):
    first = seed("dr.ada@clinic.test", "first")
    html = panel(support)
    assert count(html, "Unassigned") == 1 and "first" in html
    second = seed("dr.ada@clinic.test", "second")
    html = panel(support)
    assert count(html, "Unassigned") == 2 and "second" in html
    sam = query(lambda: User.get(User.email == "sam@smilepass.test"))
    query(lambda: Ticket.update(assignee=sam.id).where(Ticket.id == first).execute())
    html = panel(support)
    assert count(html, "Unassigned") == 1 and count(html, "Assigned to me") == 1
    assert f"SP-{second:06d}" in html and f"SP-{first:06d}" not in html
    assert f"SP-{first:06d}" in panel(support, "/queue/?tab=mine")


def test_a_new_staff_member_is_offered_at_once(support, make_user, clinician):
    seed("dr.ada@clinic.test", "needs an owner")
    assert "Kim" not in panel(support)
    make_user("kim@smilepass.test", "support", name="Kim")
    assert re.search(r'<option value="\d+">Kim</option>', panel(support))


def test_each_viewer_sees_themselves_selected_and_their_own_token(support, browser_for, clinician):
    seed("dr.ada@clinic.test", "shared")
    kim = browser_for("kim@smilepass.test", "support")
    ids = {email: query(lambda email=email: User.get(User.email == email).id)
           for email in ("sam@smilepass.test", "kim@smilepass.test")}
    viewers = [(support, "sam@smilepass.test"), (kim, "kim@smilepass.test"), (support, "sam@smilepass.test")]
    tokens = set()
    for browser, email in viewers:
        html = panel(browser)
        assert f'<option value="{ids[email]}" selected>' in html
        page_token = CSRF_META.search(browser.get("/queue/").get_data(as_text=True)).group(1)
        # The same session's token: the part before the signature's timestamp (a second later, that differs).
        assert [token.split(".")[0] for token in PANEL_TOKEN.findall(html)] == [page_token.split(".")[0]]
        tokens.add(page_token.split(".")[0])
    assert len(tokens) == 2  # Sam's and Kim's
    # The stored panel's token works: a bulk change sent with it is accepted, not refused as a forgery.
    token = PANEL_TOKEN.search(panel(kim)).group(1)
    ticket_id = query(lambda: Ticket.get().id)
    response = kim.post("/queue/bulk", {"ticket": ticket_id, "action": "assign", "assignee": ids["kim@smilepass.test"],
                                        "tab": "unassigned", "csrf_token": token}, htmx=True)
    assert response.status_code == 200 and "1 changed" in response.get_data(as_text=True)


def test_the_panel_follows_the_language(support, clinician):
    seed("dr.ada@clinic.test", "one")
    assert "Unassigned" in panel(support)
    support.get("/account/language")
    support.post("/account/language", {"language": "de"})
    html = panel(support)
    assert "Unassigned" not in html and "Nicht zugewiesen" in html


@pytest.mark.skipif(bool(PG_URL), reason="PostgreSQL text cannot hold the NUL characters the slot markers are made of")
def test_row_text_cannot_stand_in_for_a_slot(support, clinician):
    """A title holding the stored panel's slot markers is shown as typed, never filled with the token."""
    seed("dr.ada@clinic.test", "a \x00csrf\x00 b \x00rows\x00 c")
    html = panel(support)
    assert len(PANEL_TOKEN.findall(html)) == 1
    token = PANEL_TOKEN.search(html).group(1)
    assert html.count(token) == 1

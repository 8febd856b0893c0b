"""The Support page's speed work (issue 15 §3), checked without timing anything: the number of SQL
statements a page or table partial runs does not grow with the tickets it shows, and the shortcuts
(the stored empty New Request form, the ticket rows written in Python) give what the templates gave."""
import datetime as dt
import re

import pytest
from flask_login import login_user
from jinja2_fragments.flask import render_block
from markupsafe import Markup

from smilepass import db, settings
from smilepass.models import Status, Ticket, User
from smilepass.support import listing, tickets, views

from .conftest import query, recorded_sql

# Every view of the table a user has: sorts, a status filter, a second page, a search, a search with a filter.
PARTIALS = ["/support/", "/support/?sort=title", "/support/?sort=-priority&status=open", "/support/?sort=category",
            "/support/?sort=status&page=2", "/support/?q=tray", "/support/?q=tray&status=open&sort=date"]
# The most statements one view may run: the session's user, a draft, a setting or two, the page of rows, the
# filter counts, the header's unread count. A search adds its own counts; nothing may run per row.
MOST = {"page": 8, "partial": 4}
FORM_TOKEN = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]+)">')
META_TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def _file(email, count, start=0):
    with db.database.connection_context():
        user = User.get(User.email == email)
        for n in range(start, start + count):
            tickets.create_ticket(user, f"Tray {n} does not fit", f"Aligner tray {n} rocks on the molars.",
                                  n % 4, "Scan & File Validation")


def _statements(browser, path, htmx):
    browser.get(path, htmx=htmx)  # a ?sort= is stored on the user the first time: not what we count
    with recorded_sql() as statements:
        response = browser.get(path, htmx=htmx)
    assert response.status_code == 200
    assert 'id="ticket-table"' in response.get_data(as_text=True)
    return len(statements)


@pytest.mark.parametrize("role", ["clinician", "support"])
def test_statements_per_view_do_not_grow_with_the_tickets_shown(browser_for, role):
    email = f"{role}@speed.test"
    browser = browser_for(email, role)
    if role == "support":  # staff see everyone's tickets: file them as a clinician
        browser_for("dr.files@speed.test")
        email = "dr.files@speed.test"
    _file(email, 2)
    few = {(path, htmx): _statements(browser, path, htmx) for path in PARTIALS for htmx in (False, True)}
    _file(email, 60, start=2)  # more than two pages of 25
    many = {(path, htmx): _statements(browser, path, htmx) for path in PARTIALS for htmx in (False, True)}
    assert many == few
    for (path, htmx), count in many.items():
        assert count <= MOST["partial" if htmx else "page"] + ("q=" in path), (path, htmx, count)


def test_page_two_lists_the_next_tickets(clinician):
    """The rows written in Python still page and sort: 30 tickets, 25 on the first page, 5 on the second."""
    _file("dr.ada@clinic.test", 30)
    first = clinician.get("/support/?sort=title", htmx=True).get_data(as_text=True)
    second = clinician.get("/support/?sort=title&page=2", htmx=True).get_data(as_text=True)
    titles = re.compile(r'<span class="number">SP-\d+</span> (Tray \d+) does not fit</a>')
    assert len(titles.findall(first)) == 25 and len(titles.findall(second)) == 5
    assert titles.findall(first) + titles.findall(second) == sorted(f"Tray {n}" for n in range(30))


def test_rows_escape_what_users_typed(clinician, support):
    with db.database.connection_context():
        user = User.get(User.email == "dr.ada@clinic.test")
        user.name = "<b>Dr. Evil</b>"
        user.save()
        tickets.create_ticket(user, "<script>alert(1)</script> & more", "x", 1, "<i>Old category</i>")
    for browser in (clinician, support):
        html = browser.get("/support/", htmx=True).get_data(as_text=True)
        assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
        assert "<i>Old category" not in html and "&lt;i&gt;Old category&lt;/i&gt;" in html
    staff_html = support.get("/support/", htmx=True).get_data(as_text=True)
    assert "<td>&lt;b&gt;Dr. Evil&lt;/b&gt;</td>" in staff_html


def test_the_shared_empty_form_carries_each_sessions_own_token(browser_for):
    """The empty New Request form is rendered once and shared; the CSRF token in it is each session's own,
    and a request filed with it is accepted."""
    ada, bob = browser_for("dr.ada@clinic.test"), browser_for("dr.bob@clinic.test")
    pages = [browser.get("/support/").get_data(as_text=True) for browser in (ada, bob)]
    tokens = [FORM_TOKEN.search(page).group(1) for page in pages]
    assert tokens[0] != tokens[1]
    for page, token in zip(pages, tokens, strict=True):
        assert META_TOKEN.search(page).group(1) == token
        assert "\x00" not in page
    response = bob.post("/support/tickets", {"title": "Tray loose", "description": "It rocks.", "priority": "1",
                                             "category": "Scan & File Validation", "csrf_token": tokens[1]},
                        csrf=False)
    assert response.status_code == 303
    # Another session's token is refused as before.
    response = bob.post("/support/tickets", {"title": "Tray loose", "description": "It rocks.", "priority": "1",
                                             "category": "Scan & File Validation", "csrf_token": tokens[0]},
                        csrf=False)
    assert response.status_code == 400


def test_the_shared_empty_form_follows_notation_language_and_role(browser_for, make_user):
    ada = browser_for("dr.ada@clinic.test")
    selected = re.compile(r'<option selected value="(fdi|universal)">')
    assert selected.search(ada.get("/support/").get_data(as_text=True)).group(1) == "fdi"
    admin = query(lambda: make_user("root@speed.test", "admin"))
    with db.database.connection_context():
        settings.set_value("tooth_notation", "universal", admin)
    assert selected.search(ada.get("/support/").get_data(as_text=True)).group(1) == "universal"
    german = ada.get("/support/", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert "Neue Anfrage stellen" in german
    assert FORM_TOKEN.search(german) and "Open a new request" not in german
    staff = browser_for("sam@speed.test", "support").get("/support/").get_data(as_text=True)
    assert "pick one of the cases" in staff and "pick one of your cases" not in staff
    assert "pick one of your cases" in ada.get("/support/").get_data(as_text=True)


def test_a_draft_still_fills_the_form(clinician):
    response = clinician.post("/support/drafts/new-request", {"title": "Half written", "description": "So far"})
    assert response.status_code in (200, 303)
    page = clinician.get("/support/").get_data(as_text=True)
    assert 'value="Half written"' in page and "Draft restored" in page


@pytest.mark.parametrize("text", ["2026-12-04 09:30:00", "2026-12-04 09:30:00.123456", "2026-12-04T09:30:00"])
def test_the_date_cell_from_sqlite_text_matches_the_one_from_a_datetime(text):
    assert listing._created_cell(text) == listing._created_cell(dt.datetime.fromisoformat(text))
    assert isinstance(listing._created_cell(text), Markup)


def _template_table(app, email, path):
    """The ticket table as the template alone renders it (no stored table), for the user and URL given."""
    with app.test_request_context(path, headers={"HX-Request": "true"}), db.database.connection_context():
        login_user(User.get(User.email == email))
        return render_block(views.INDEX, "ticket_table", table=views._table(User.get(User.email == email)))


@pytest.mark.parametrize("role", ["clinician", "support"])
def test_the_stored_table_is_what_the_template_renders(app, browser_for, role):
    """The table's heading, filters, sort buttons and pager are stored per table state and filled with the
    rows: byte for byte what the template renders for every view, page and search, also when served a
    second time from the store."""
    email = f"{role}@speed.test"
    browser = browser_for(email, role)
    if role == "support":  # staff see everyone's tickets: file them as a clinician
        browser_for("dr.files@speed.test")
    _file("dr.files@speed.test" if role == "support" else email, 30)
    for path in [*PARTIALS, "/support/?sort=title&page=2", "/support/?q=nothing-like-this"]:
        served = [browser.get(path, htmx=True).get_data(as_text=True) for _ in range(2)]
        assert served[0] == served[1] == _template_table(app, email, path), path


def test_the_stored_table_follows_counts_language_and_role(app, browser_for):
    """A new ticket, a status change, the language and the role each give the table its own heading and
    counts: none is served from a table stored for another state."""
    ada = browser_for("dr.ada@clinic.test")
    sam = browser_for("sam@speed.test", "support")
    _file("dr.ada@clinic.test", 3)
    chip = re.compile(r'class="chip status-open[^"]*"[^>]*>Open <span class="count">(\d+)</span>')
    assert chip.search(ada.get("/support/", htmx=True).get_data(as_text=True)).group(1) == "3"
    _file("dr.ada@clinic.test", 1, start=3)
    html = ada.get("/support/", htmx=True).get_data(as_text=True)
    assert chip.search(html).group(1) == "4" and "Tray 3 does not fit" in html
    with app.test_request_context("/"), db.database.connection_context():
        staff = User.get(User.email == "sam@speed.test")
        tickets.change_status(Ticket.select().order_by(Ticket.id).first(), staff, Status.RESOLVED)
    assert chip.search(ada.get("/support/", htmx=True).get_data(as_text=True)).group(1) == "3"
    assert chip.search(ada.get("/support/").get_data(as_text=True)).group(1) == "3"
    german = ada.get("/support/", htmx=True, headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert "Ihre Tickets" in german and "Your tickets" not in german
    assert "Your tickets" in ada.get("/support/", htmx=True).get_data(as_text=True)
    staff_html = sam.get("/support/", htmx=True).get_data(as_text=True)
    assert "All tickets" in staff_html and "<th scope=\"col\">Requester</th>" in staff_html
    assert "All tickets" not in ada.get("/support/", htmx=True).get_data(as_text=True)

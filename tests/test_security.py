"""CSRF on every POST, escaped output in pages and partials, security headers."""
import re
from pathlib import Path

import pytest

from smilepass.models import Message, Ticket

from .conftest import PASSWORD, query

XSS_TITLE = '<script>alert("t")</script>'
XSS_BODY = '<img src=x onerror=alert("d")>'


def post_endpoints(ticket_id):
    return [
        ("/auth/login", {"email": "dr.ada@clinic.test", "password": PASSWORD}),
        ("/auth/logout", {}),
        ("/auth/forgot", {"email": "dr.ada@clinic.test"}),
        ("/auth/password", {"current": PASSWORD, "password": "x-New-Password-1", "confirm": "x-New-Password-1"}),
        ("/support/tickets", {"title": "t", "description": "d"}),
        (f"/support/tickets/{ticket_id}/replies", {"body": "hello"}),
        (f"/support/tickets/{ticket_id}/status", {"status": "1"}),
        ("/admin/users", {"email": "new@clinic.test", "role": "admin", "password": "x-New-Password-1"}),
        ("/admin/users/1/active", {}),
    ]


@pytest.mark.parametrize("htmx", [False, True])
def test_every_post_without_csrf_token_is_refused(app, admin, new_ticket, htmx):
    ticket_id = new_ticket(admin)
    before = query(lambda: (Ticket.select().count(), Message.select().count()))
    for path, data in post_endpoints(ticket_id):
        response = admin.post(path, data, csrf=False, htmx=htmx)
        assert response.status_code == 400, path
        assert "Your form expired or came from another site" in response.get_data(as_text=True)
        if htmx:
            assert response.headers["HX-Retarget"] == "#flash"
            assert "<html" not in response.get_data(as_text=True)
    assert query(lambda: (Ticket.select().count(), Message.select().count())) == before
    assert admin.get("/support/").status_code == 200  # still signed in: logout was refused too


def test_a_forged_token_is_refused(clinician):
    response = clinician.post("/support/tickets", {"title": "t", "description": "d", "csrf_token": "forged"})
    assert response.status_code == 400


def test_htmx_may_send_the_token_in_a_header(clinician):
    token = clinician.token
    response = clinician.post("/support/tickets", {"title": "From htmx", "description": "d"}, csrf=False, htmx=True,
                              headers={"X-CSRFToken": token})
    assert response.status_code == 200
    assert query(lambda: Ticket.select().count()) == 1


def test_user_text_is_escaped_in_page_partial_and_table(clinician, support, new_ticket):
    ticket_id = new_ticket(clinician, title=XSS_TITLE, description=XSS_BODY)
    support.post(f"/support/tickets/{ticket_id}/replies", {"body": XSS_BODY})
    views = [
        clinician.get("/support/").get_data(as_text=True),
        clinician.get("/support/?sort=title", htmx=True).get_data(as_text=True),
        support.get("/support/").get_data(as_text=True),
        clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True),
        clinician.get(f"/support/tickets/{ticket_id}", htmx=True).get_data(as_text=True),
        clinician.post(f"/support/tickets/{ticket_id}/replies", {"body": XSS_BODY}, htmx=True).get_data(as_text=True),
        clinician.post("/support/tickets", {"title": XSS_TITLE, "description": XSS_BODY}, htmx=True).get_data(
            as_text=True
        ),
    ]
    for html in views:
        assert XSS_TITLE not in html and XSS_BODY not in html
        assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt;" in views[0]
    assert "&lt;img src=x onerror=alert(&#34;d&#34;)&gt;" in views[3]


def test_xss_in_error_re_render_is_escaped(clinician):
    html = clinician.post("/support/tickets", {"title": XSS_TITLE, "description": "x" * 501}, htmx=True).get_data(
        as_text=True
    )
    assert XSS_TITLE not in html and "&lt;script&gt;" in html


def test_security_headers(clinician):
    response = clinician.get("/support/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


def test_templates_have_no_inline_script_or_handlers():
    for template in Path(__file__).resolve().parent.parent.joinpath("templates").rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template
        assert not re.search(r"\son[a-z]+=", text), template
        assert "|safe" not in text.replace(" ", ""), template


def test_staff_pages_are_hidden_from_others(clinician, support):
    for path in ("/admin/users", "/admin/outbox", "/admin/audit"):
        assert clinician.get(path).status_code == 404
        assert support.get(path).status_code == 404


def test_admin_creates_user_and_it_is_audited(admin):
    response = admin.post("/admin/users", {"email": "new.assistant@clinic.test", "name": "Nia", "role": "clinician",
                                           "password": "assistant-Pass-2026"})
    assert response.status_code == 303
    audit = admin.get("/admin/audit?action=user_created").get_data(as_text=True)
    assert "user_created" in audit

"""Server-side sessions (issue 12 §2): a session cookie copied before sign-out, the idle limit, a password
change, deactivation or an admin's "sign out everywhere" is refused afterwards; My Account → Security
lists the signed-in sessions and signs any one out; the cookie carries no patient-link token."""
import datetime as dt
import re
import time

import pytest
import time_machine
from flask import session

from smilepass import sessions
from smilepass.models import AuditLog, User, UserSession
from smilepass.sessions import describe_browser

from .case_helpers import make_case, make_shipment
from .conftest import PASSWORD, Browser, query

COOKIE = "smilepass_session"
ADA = "dr.ada@clinic.test"
START = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


def copy_of(app, browser) -> Browser:
    """Another browser holding the same session cookie, as someone who copied it would."""
    stolen = Browser(app)
    stolen.client.set_cookie(COOKIE, browser.client.get_cookie(COOKIE).value)
    return stolen


def replayed(app, value: str) -> Browser:
    """A client sending exactly this cookie value, whatever expiry the server gave it since."""
    browser = Browser(app)
    browser.client.set_cookie(COOKIE, value)
    return browser


def signed_in(response) -> bool:
    return response.status_code == 200


def cookie_contents(app, browser) -> dict:
    return app.session_interface.get_signing_serializer(app).loads(browser.client.get_cookie(COOKIE).value)


def rows(email=ADA):
    return query(lambda: list(UserSession.select().join(User).where(User.email == email)))


def second_browser(app, email=ADA, agent=FIREFOX, address="198.51.100.7") -> Browser:
    browser = Browser(app)
    browser.client.environ_base.update(REMOTE_ADDR=address, HTTP_USER_AGENT=agent)
    assert browser.login(email).status_code == 303
    return browser


def test_a_copied_cookie_is_refused_after_sign_out(app, clinician):
    stolen = copy_of(app, clinician)
    assert signed_in(stolen.get("/support/"))
    assert clinician.logout().status_code == 303
    assert stolen.get("/support/").status_code == 303
    assert stolen.post("/support/tickets", {"title": "x", "description": "y"}).status_code in (302, 303, 401)
    assert rows() == []


def test_a_copied_cookie_is_refused_after_the_idle_limit(app, make_user):
    make_user(ADA)
    with time_machine.travel(START, tick=False) as clock:
        browser = Browser(app)
        browser.login(ADA)
        stolen = copy_of(app, browser)
        clock.shift(dt.timedelta(minutes=29))
        assert signed_in(stolen.get("/support/"))  # in use: the limit counts from here
        value = stolen.client.get_cookie(COOKIE).value
        clock.shift(dt.timedelta(minutes=31))
        assert replayed(app, value).get("/support/").status_code == 303


def test_the_server_refuses_an_idle_session_whatever_the_cookie_says(app, make_user):
    """The cookie's own last-seen can be replayed fresh; the server's record decides."""
    make_user(ADA)
    with time_machine.travel(START, tick=False) as clock:
        browser = Browser(app)
        browser.login(ADA)
        contents = cookie_contents(app, browser)
        clock.shift(dt.timedelta(minutes=31))
        contents["seen"] = int(time.time())
        forged = replayed(app, app.session_interface.get_signing_serializer(app).dumps(contents))
        assert forged.get("/support/").status_code == 303
        assert rows() == []


def test_a_copied_cookie_is_refused_after_a_password_change(app, clinician):
    stolen = copy_of(app, clinician)
    elsewhere = second_browser(app)
    clinician.get("/auth/password")
    changed = clinician.post("/auth/password", {"current": PASSWORD, "password": "a-new-passphrase-2026",
                                                "confirm": "a-new-passphrase-2026"})
    assert changed.status_code == 303
    assert signed_in(clinician.get("/support/"))  # where it was changed goes on
    assert stolen.get("/support/").status_code == 303
    assert elsewhere.get("/support/").status_code == 303
    assert len(rows()) == 1


def test_a_copied_cookie_is_refused_after_deactivation_even_once_reactivated(app, clinician, admin):
    stolen = copy_of(app, clinician)
    ada = query(lambda: User.by_email(ADA).id)
    admin.get("/admin/users")
    assert admin.post(f"/admin/users/{ada}/active").status_code == 303
    assert stolen.get("/support/").status_code == 303
    assert admin.post(f"/admin/users/{ada}/active").status_code == 303  # active again
    assert stolen.get("/support/").status_code == 303
    assert clinician.get("/support/").status_code == 303
    assert rows() == []


def test_an_admin_signs_a_user_out_everywhere(app, clinician, admin):
    stolen = copy_of(app, clinician)
    elsewhere = second_browser(app)
    ada = query(lambda: User.by_email(ADA).id)
    page = admin.get("/admin/users").get_data(as_text=True)
    assert f'action="/admin/users/{ada}/sign-out"' in page
    assert admin.post(f"/admin/users/{ada}/sign-out", csrf=False).status_code == 400
    assert signed_in(stolen.get("/support/"))
    assert admin.post(f"/admin/users/{ada}/sign-out").status_code == 303
    for browser in (clinician, stolen, elsewhere):
        assert browser.get("/support/").status_code == 303
    assert signed_in(admin.get("/admin/users"))
    assert query(lambda: AuditLog.select().where(AuditLog.action == "sessions_ended").count()) == 1
    assert clinician.post(f"/admin/users/{ada}/sign-out").status_code in (303, 401)  # not an admin, not signed in


def test_only_admins_sign_others_out(app, clinician, other_clinician):
    ada = query(lambda: User.by_email(ADA).id)
    assert other_clinician.post(f"/admin/users/{ada}/sign-out").status_code == 404
    assert signed_in(clinician.get("/support/"))


def test_security_lists_sessions_and_signs_one_out(app, clinician, other_clinician):
    elsewhere = second_browser(app)
    stolen = copy_of(app, elsewhere)
    page = clinician.get("/account/security")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Firefox · Windows" in html and "198.51.100.7" in html and "This browser" in html
    other_id = next(r.id for r in rows() if r.address == "198.51.100.7")
    form = f'action="/account/security/{other_id}/sign-out"'
    assert form in html and 'name="csrf_token"' in html
    # Without CSRF nothing happens; someone else's session is not found.
    assert clinician.post(f"/account/security/{other_id}/sign-out", csrf=False).status_code == 400
    other_clinician.get("/account/security")
    assert other_clinician.post(f"/account/security/{other_id}/sign-out").status_code == 404
    assert signed_in(elsewhere.get("/support/"))
    response = clinician.post(f"/account/security/{other_id}/sign-out")
    assert response.status_code == 303 and response.headers["Location"] == "/account/security"
    assert elsewhere.get("/support/").status_code == 303
    assert stolen.get("/support/").status_code == 303
    assert signed_in(clinician.get("/support/"))
    assert form not in clinician.get("/account/security").get_data(as_text=True)


def test_sign_out_everywhere_else_keeps_this_browser(app, clinician):
    elsewhere = second_browser(app)
    clinician.get("/account/security")
    assert clinician.post("/account/security/sign-out-others").status_code == 303
    assert elsewhere.get("/support/").status_code == 303
    assert signed_in(clinician.get("/support/"))
    assert len(rows()) == 1


def test_last_seen_is_written_at_most_once_a_minute(app, make_user):
    make_user(ADA)
    with time_machine.travel(START, tick=False) as clock:
        browser = Browser(app)
        browser.login(ADA)
        [first] = rows()
        assert first.last_seen_at == START.replace(tzinfo=None)
        clock.shift(dt.timedelta(seconds=50))
        browser.get("/support/")
        assert rows()[0].last_seen_at == first.last_seen_at
        clock.shift(dt.timedelta(seconds=20))
        browser.get("/support/")
        assert rows()[0].last_seen_at == (START + dt.timedelta(seconds=70)).replace(tzinfo=None)


def test_the_cookie_carries_no_patient_link_token(app, clinician, support):
    shipment = make_shipment(make_case(number="AL-7001"))
    clinician.get(f"/cases/shipments/{shipment.id}")
    created = clinician.post(f"/cases/shipments/{shipment.id}/links")
    assert created.status_code == 303
    contents = cookie_contents(app, clinician)
    assert not {"qr_token", "new_link"} & set(contents)
    page = clinician.get(created.headers["Location"]).get_data(as_text=True)
    token = re.search(r'value="http://localhost/p/([A-Za-z0-9_-]{43})"', page).group(1)
    assert token not in repr(cookie_contents(app, clinician))
    qr = re.search(r'src="(/cases/links/\d+/qr\.svg)"', page).group(1)
    # The shown-once stash belongs to the session: a copy of the cookie after sign-out gets nothing.
    stolen = copy_of(app, clinician)
    clinician.logout()
    assert stolen.get(qr).status_code in (302, 303)


@pytest.mark.parametrize("agent, shown", [
    (FIREFOX, "Firefox · Windows"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
     "Safari/605.1.15", "Safari · macOS"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
     "Safari/537.36 Edg/131.0.0.0", "Edge · Windows"),
    ("curl/8.5.0", "curl"),
    ("", ""),
])
def test_browsers_are_named_for_people(agent, shown):
    assert describe_browser(agent) == shown


def test_the_signed_in_user_is_loaded_as_a_query_of_users_would(app, make_user):
    """load_user builds the User from the session query's plain row (sessions._user_of): every field has
    its value and type as User.get gives them, and nothing counts as changed (a save writes nothing)."""
    make_user(ADA)
    query(lambda: User.update(last_login_at=START.replace(tzinfo=None), language="de", ticket_sort="title")
          .where(User.email == ADA).execute())
    browser = Browser(app)
    assert browser.login(ADA).status_code == 303
    from_query = query(lambda: User.get(User.email == ADA))
    with app.test_request_context("/support/"):
        session[sessions.SESSION_KEY] = cookie_contents(app, browser)[sessions.SESSION_KEY]
        loaded = query(lambda: sessions.load_user(from_query.id, from_query.session_stamp))
    assert loaded is not None and not loaded.is_dirty()
    for field in User._meta.sorted_fields:
        expected, got = getattr(from_query, field.name), getattr(loaded, field.name)
        assert (got, type(got)) == (expected, type(expected)), field.name

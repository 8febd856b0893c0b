"""Sign-in, lockout, password rules, resets and session lifetime."""
import datetime as dt
import re

import pytest

from smilepass.auth.tokens import token_hash
from smilepass.models import AuditLog, LoginThrottle, OutboxMail, PasswordReset, Ticket, User

from .conftest import PASSWORD, Browser, query

FAILED = "That email and password do not match an account."


def sign_in(browser, email, password):
    browser.get("/auth/login")
    return browser.post("/auth/login", {"email": email, "password": password})


def actions():
    return query(lambda: [row.action for row in AuditLog.select().order_by(AuditLog.id)])


def test_sign_in_and_out_are_audited(client, make_user):
    make_user("dr.ada@clinic.test")
    response = sign_in(client, "Dr.Ada@Clinic.test ", PASSWORD)
    assert response.status_code == 303 and response.headers["Location"] == "/support/"
    assert client.get("/support/").status_code == 200
    assert client.logout().status_code == 303
    assert client.get("/support/").status_code == 303
    assert actions()[-2:] == ["login", "logout"]


def test_unknown_email_and_wrong_password_read_the_same(client, make_user):
    make_user("dr.ada@clinic.test")
    wrong = sign_in(client, "dr.ada@clinic.test", "not-the-password")
    unknown = sign_in(Browser(client.client.application), "nobody@clinic.test", "not-the-password")
    assert wrong.status_code == unknown.status_code == 422
    assert FAILED in wrong.get_data(as_text=True)
    assert FAILED in unknown.get_data(as_text=True)


@pytest.fixture
def fixed_clock(time_machine):
    time_machine.move_to(dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC), tick=False)
    return time_machine


def test_three_failures_lock_the_address_for_twenty_minutes(fixed_clock, client, make_user):
    make_user("dr.ada@clinic.test")
    for _ in range(2):
        assert sign_in(client, "dr.ada@clinic.test", "wrong-password-1").status_code == 422
    third = sign_in(client, "dr.ada@clinic.test", "wrong-password-1")
    assert third.status_code == 429
    page = third.get_data(as_text=True)
    assert "locked until" in page and "reset your password" in page
    # The right password does not get through while locked.
    locked = sign_in(client, "dr.ada@clinic.test", PASSWORD)
    assert locked.status_code == 429
    assert client.get("/support/").status_code == 303
    until = query(lambda: LoginThrottle.get(LoginThrottle.email == "dr.ada@clinic.test").locked_until)
    assert until == dt.datetime(2026, 12, 2, 10, 20)
    assert "account_locked" in actions()


def test_unknown_addresses_lock_the_same_way(client):
    for _ in range(3):
        response = sign_in(client, "ghost@clinic.test", "whatever-123")
    assert response.status_code == 429
    assert "locked until" in response.get_data(as_text=True)


def test_lock_ends_after_twenty_minutes(fixed_clock, client, make_user):
    make_user("dr.ada@clinic.test")
    for _ in range(3):
        sign_in(client, "dr.ada@clinic.test", "wrong-password-1")
    fixed_clock.shift(dt.timedelta(minutes=19, seconds=59))
    assert sign_in(client, "dr.ada@clinic.test", PASSWORD).status_code == 429
    fixed_clock.shift(dt.timedelta(seconds=1))
    assert sign_in(client, "dr.ada@clinic.test", PASSWORD).status_code == 303


def request_reset(client, email):
    client.get("/auth/forgot")
    return client.post("/auth/forgot", {"email": email})


def reset_link_from_outbox(email):
    mail = query(lambda: OutboxMail.select().where(OutboxMail.to_addr == email).order_by(OutboxMail.id.desc()).get())
    return re.search(r"https?://[^/\s]+(/auth/reset/\S+)", mail.body).group(1)


def test_reset_works_during_a_lock_and_ends_it(client, make_user):
    make_user("dr.ada@clinic.test")
    for _ in range(3):
        sign_in(client, "dr.ada@clinic.test", "wrong-password-1")
    response = request_reset(client, "dr.ada@clinic.test")
    assert response.status_code == 303
    link = reset_link_from_outbox("dr.ada@clinic.test")
    assert client.get(link).status_code == 200
    new_password = "a-brand-new-Password-77"
    assert client.post(link, {"password": new_password, "confirm": new_password}).status_code == 303
    assert sign_in(client, "dr.ada@clinic.test", new_password).status_code == 303
    assert {"password_reset_requested", "password_reset", "account_locked"} <= set(actions())


def test_reset_request_says_the_same_for_unknown_addresses(client, make_user):
    make_user("dr.ada@clinic.test")
    known = request_reset(client, "dr.ada@clinic.test")
    known_page = client.get("/auth/login").get_data(as_text=True)
    unknown = request_reset(client, "nobody@clinic.test")
    unknown_page = client.get("/auth/login").get_data(as_text=True)
    assert known.status_code == unknown.status_code == 303
    assert "If that address has an account" in known_page and "If that address has an account" in unknown_page
    assert query(lambda: OutboxMail.select().count()) == 1


def test_reset_link_works_once(client, make_user):
    make_user("dr.ada@clinic.test")
    request_reset(client, "dr.ada@clinic.test")
    link = reset_link_from_outbox("dr.ada@clinic.test")
    first = "first-new-Password-88"
    assert client.post(link, {"password": first, "confirm": first}).status_code == 303
    assert client.get(link).status_code == 404
    reused = client.post(link, {"password": "second-new-Password-99", "confirm": "second-new-Password-99"})
    assert reused.status_code == 404
    assert "does not work" in reused.get_data(as_text=True)
    assert sign_in(client, "dr.ada@clinic.test", first).status_code == 303


def test_expired_reset_link_is_refused(fixed_clock, client, make_user):
    make_user("dr.ada@clinic.test")
    request_reset(client, "dr.ada@clinic.test")
    link = reset_link_from_outbox("dr.ada@clinic.test")
    fixed_clock.shift(dt.timedelta(minutes=59, seconds=59))
    assert client.get(link).status_code == 200
    fixed_clock.shift(dt.timedelta(seconds=1))  # an hour after it was sent
    assert client.get(link).status_code == 404
    attempt = client.post(link, {"password": "late-new-Password-11", "confirm": "late-new-Password-11"})
    assert attempt.status_code == 404
    assert sign_in(client, "dr.ada@clinic.test", PASSWORD).status_code == 303


def test_reset_tokens_are_stored_hashed(client, make_user):
    make_user("dr.ada@clinic.test")
    request_reset(client, "dr.ada@clinic.test")
    token = reset_link_from_outbox("dr.ada@clinic.test").rsplit("/", 1)[1]
    stored = query(lambda: PasswordReset.get().token_hash)
    assert stored != token and stored == token_hash(token)


@pytest.mark.parametrize("password, problem", [
    ("short7!", "at least 8"),
    ("x" * 129, "at most 128"),
    ("password1", "common passwords"),
    ("Password1", "common passwords"),
])
def test_password_rules(clinician, password, problem):
    clinician.get("/auth/password")
    response = clinician.post("/auth/password", {"current": PASSWORD, "password": password, "confirm": password})
    assert response.status_code == 422
    assert problem in response.get_data(as_text=True)


def test_long_passwords_are_not_truncated_and_case_counts(client, make_user):
    make_user("dr.ada@clinic.test")
    browser = Browser(client.client.application)
    browser.login("dr.ada@clinic.test")
    long_password = "Ab1-" * 32  # 128 characters
    browser.get("/auth/password")
    changed = browser.post("/auth/password", {"current": PASSWORD, "password": long_password, "confirm": long_password})
    assert changed.status_code == 303
    assert sign_in(client, "dr.ada@clinic.test", long_password[:-1]).status_code == 422
    assert sign_in(client, "dr.ada@clinic.test", long_password.lower()).status_code == 422
    assert sign_in(client, "dr.ada@clinic.test", long_password).status_code == 303


def test_password_change_ends_other_sessions(app, make_user):
    make_user("dr.ada@clinic.test")
    here, elsewhere = Browser(app), Browser(app)
    here.login("dr.ada@clinic.test")
    elsewhere.login("dr.ada@clinic.test")
    assert elsewhere.get("/support/").status_code == 200
    new_password = "changed-Password-2026"
    here.get("/auth/password")
    assert (
        here.post(
            "/auth/password", {"current": PASSWORD, "password": new_password, "confirm": new_password}
        ).status_code
        == 303
    )
    assert here.get("/support/").status_code == 200
    assert elsewhere.get("/support/").status_code == 303
    assert "password_changed" in actions()


def test_reset_ends_existing_sessions(app, make_user):
    make_user("dr.ada@clinic.test")
    signed_in = Browser(app)
    signed_in.login("dr.ada@clinic.test")
    other = Browser(app)
    request_reset(other, "dr.ada@clinic.test")
    link = reset_link_from_outbox("dr.ada@clinic.test")
    other.post(link, {"password": "after-reset-Password-5", "confirm": "after-reset-Password-5"})
    assert signed_in.get("/support/").status_code == 303


def test_idle_session_ends(app, clinician):
    app.config["SESSION_IDLE_SECONDS"] = 60
    with clinician.client.session_transaction() as session:
        session["seen"] -= 61
    response = clinician.get("/support/")
    assert response.status_code == 303
    page = clinician.get(response.headers["Location"]).get_data(as_text=True)
    assert "session ended after a period of inactivity" in page


def test_expired_session_on_htmx_request_redirects_the_whole_page(app, clinician):
    app.config["SESSION_IDLE_SECONDS"] = 60
    with clinician.client.session_transaction() as session:
        session["seen"] -= 61
    response = clinician.get("/support/?sort=title", htmx=True)
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/auth/login")
    assert "<form" not in response.get_data(as_text=True)


def test_session_cookie_flags(client, make_user):
    make_user("dr.ada@clinic.test")
    response = sign_in(client, "dr.ada@clinic.test", PASSWORD)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_secure_cookie_over_https(app, make_user):
    app.config["SESSION_COOKIE_SECURE"] = True
    make_user("dr.ada@clinic.test")
    browser = Browser(app)
    response = browser.client.get("/auth/login", base_url="https://localhost")
    assert "Secure" in response.headers.get("Set-Cookie", "")


def test_next_only_goes_to_local_paths(client, make_user):
    make_user("dr.ada@clinic.test")
    client.get("/auth/login")
    response = client.post(
        "/auth/login?next=https://evil.example/phish", {"email": "dr.ada@clinic.test", "password": PASSWORD}
    )
    assert response.headers["Location"] == "/support/"


def test_deactivated_user_cannot_sign_in(client, make_user):
    make_user("dr.ada@clinic.test")
    query(lambda: User.update(is_active=False).execute())
    assert sign_in(client, "dr.ada@clinic.test", PASSWORD).status_code == 422


def test_form_sent_after_session_end_says_it_was_not_saved(app, clinician):
    app.config["SESSION_IDLE_SECONDS"] = 60
    clinician.get("/support/?sort=title")
    with clinician.client.session_transaction() as session:
        session["seen"] -= 61
    response = clinician.post("/support/tickets", {"title": "Lost?", "description": "typed"}, htmx=True,
                              headers={"HX-Current-URL": "http://localhost/support/?sort=title"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/auth/login?next=/support/?sort%3Dtitle"
    page = clinician.get(response.headers["HX-Redirect"]).get_data(as_text=True)
    assert "was not saved because you were signed out" in page


def test_a_temporary_password_set_by_an_admin_must_be_changed_at_first_sign_in(app, admin, client, make_user):
    temporary, own = "handed-over-Password-7", "my-own-Password-2026"
    admin.get("/admin/users")
    created = admin.post("/admin/users", {"email": "dr.new@clinic.test", "name": "Dr New", "role": "clinician",
                                          "password": temporary})
    assert created.status_code == 303
    assert query(lambda: User.by_email("dr.new@clinic.test").password_change_required) is True

    assert sign_in(client, "dr.new@clinic.test", temporary).status_code == 303
    # Every page leads to Password until the owner chose their own; htmx requests move the whole page.
    for path in ("/support/", "/cases/", "/contact"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["Location"].endswith("/auth/password"), path
    assert client.get("/support/?sort=status", htmx=True).headers["HX-Redirect"] == "/auth/password"
    page = client.get("/auth/password").get_data(as_text=True)
    assert "Your account has a temporary password. Choose your own to go on." in page
    refused = client.post("/support/tickets", {"title": "x", "description": "y", "priority": "1"})
    assert refused.status_code == 303 and refused.headers["Location"].endswith("/auth/password")
    assert query(lambda: Ticket.select().count()) == 0

    same = client.post("/auth/password", {"current": temporary, "password": temporary, "confirm": temporary})
    assert same.status_code == 422
    assert "Choose a password other than the temporary one." in same.get_data(as_text=True)
    changed = client.post("/auth/password", {"current": temporary, "password": own, "confirm": own})
    assert changed.status_code == 303
    assert client.get("/support/").status_code == 200
    assert query(lambda: User.by_email("dr.new@clinic.test").password_change_required) is False
    assert "password_changed" in actions()

    # People who chose their password themselves (here: created on the command line) go straight in.
    make_user("dr.cli@clinic.test")
    other = Browser(app)
    other.login("dr.cli@clinic.test")
    assert other.get("/support/").status_code == 200


def test_role_names_are_capitalised_wherever_shown(admin, clinician):
    page = admin.get("/admin/users").get_data(as_text=True)
    assert "<td>Clinician</td>" in page and "<td>Admin</td>" in page
    assert '<option value="clinician">Clinician</option>' in page
    assert '<span class="role">Clinician</span>' in clinician.get("/support/").get_data(as_text=True)

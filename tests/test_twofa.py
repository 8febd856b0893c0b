"""Two-factor sign-in (issue 17): TOTP with codes computed by pyotp at fixed clock times (previous,
current and next step accepted, others and replays refused), the gate between the two steps over every
route of the app, the second step's own lockout, recovery codes, the per-role policy, trusted browsers,
the admin's and the command line's reset."""
import datetime as dt
import html
import re

import pyotp
import pytest
import time_machine
from werkzeug.routing import IntegerConverter

from smilepass import create_app, settings, twofa
from smilepass.models import AuditLog, OutboxMail, RecoveryCode, SecurityKey, TrustedBrowser, TwoFactor, User
from smilepass.twofa.views import OPEN_BETWEEN_STEPS

from .conftest import PASSWORD, Browser, query

ADA = "dr.ada@clinic.test"
SAM = "sam@smilepass.test"
ROOT = "root@smilepass.test"
START = dt.datetime(2026, 12, 7, 9, 0, 10, tzinfo=dt.UTC)  # 10 s into a 30-second step
CHALLENGE = "/auth/two-factor"
SECRET_IN_PAGE = re.compile(r"data-totp-secret>([A-Z2-7 ]+)<")
CODE_IN_PAGE = re.compile(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>")


def code_at(secret: str, when: dt.datetime) -> str:
    return pyotp.TOTP(secret).at(when)


def enrol_app(browser) -> tuple[str, list[str]]:
    """Set up the authenticator app through the pages at the current (fixed) time: its key and the
    recovery codes shown once."""
    page = browser.get("/account/two-factor/app")
    assert page.status_code == 200
    secret = SECRET_IN_PAGE.search(page.get_data(as_text=True)).group(1).replace(" ", "")
    response = browser.post("/account/two-factor/app", {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 303, response.get_data(as_text=True)
    shown = browser.get(response.headers["Location"])
    codes = CODE_IN_PAGE.findall(shown.get_data(as_text=True))
    return secret, codes


def password_only(app, email=ADA) -> Browser:
    """A browser that has passed the password step only."""
    browser = Browser(app)
    browser.get("/auth/login")
    assert browser.post("/auth/login", {"email": email, "password": PASSWORD}).status_code == 303
    browser.get(CHALLENGE)  # the form's CSRF token of the new session
    return browser


def pending(response) -> bool:
    return response.status_code == 303 and response.headers["Location"].startswith(CHALLENGE)


def actions(email=ADA) -> list[str]:
    return query(lambda: [row.action for row in AuditLog.select().where(AuditLog.actor_email == email)
                          .order_by(AuditLog.id)])


def user(email=ADA) -> User:
    return query(lambda: User.by_email(email))


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def enrolled(app, clock, clinician):
    """Ada with an authenticator app; returns (key, recovery codes)."""
    return enrol_app(clinician)


def test_enrolment_shows_a_qr_code_and_the_key_and_the_first_code_must_be_right(app, clock, clinician):
    page = clinician.get("/account/two-factor/app").get_data(as_text=True)
    assert 'src="data:image/svg+xml' in page
    secret = SECRET_IN_PAGE.search(page).group(1).replace(" ", "")
    wrong = clinician.post("/account/two-factor/app", {"code": "000000"})
    assert wrong.status_code == 422
    assert "does not match" in wrong.get_data(as_text=True)
    assert not query(lambda: twofa.has_totp(user()))
    # The key is stored encrypted, not as it was shown.
    stored = query(lambda: TwoFactor.get(TwoFactor.user == user().id).totp_secret)
    assert secret not in stored
    right = clinician.post("/account/two-factor/app", {"code": code_at(secret, START)})
    assert right.status_code == 303 and right.headers["Location"].endswith("/account/two-factor/recovery-codes")
    assert query(lambda: twofa.has_totp(user()))
    codes = CODE_IN_PAGE.findall(clinician.get("/account/two-factor/recovery-codes").get_data(as_text=True))
    assert len(codes) == 10
    # Shown once: afterwards the page sends back to Security, and only hashes are stored.
    assert clinician.get("/account/two-factor/recovery-codes").status_code == 303
    hashes = query(lambda: [r.code_hash for r in RecoveryCode.select()])
    assert len(hashes) == 10 and not any(code.replace("-", "") in h for code in codes for h in hashes)
    assert "twofa_enrolled" in actions()
    # The session where it was set up goes on.
    assert clinician.get("/support/").status_code == 200


@pytest.mark.parametrize("offset", [-30, 0, 30])
def test_a_code_of_the_previous_current_or_next_step_signs_in(app, enrolled, clock, offset):
    secret, _ = enrolled
    clock.shift(dt.timedelta(minutes=5))  # past the step the enrolment used
    now = START + dt.timedelta(minutes=5)
    browser = password_only(app)
    assert pending(browser.get("/support/"))
    response = browser.post(CHALLENGE, {"code": code_at(secret, now + dt.timedelta(seconds=offset))})
    assert response.status_code == 303
    assert browser.get("/support/").status_code == 200
    assert "twofa_passed" in actions()


@pytest.mark.parametrize("offset", [-60, 60, 3600])
def test_a_code_two_steps_away_is_refused(app, enrolled, clock, offset):
    secret, _ = enrolled
    clock.shift(dt.timedelta(minutes=5))
    now = START + dt.timedelta(minutes=5)
    browser = password_only(app)
    response = browser.post(CHALLENGE, {"code": code_at(secret, now + dt.timedelta(seconds=offset))})
    assert response.status_code == 422
    assert pending(browser.get("/support/"))
    assert "twofa_failed" in actions()


def test_a_code_is_accepted_once(app, enrolled, clock):
    secret, _ = enrolled
    clock.shift(dt.timedelta(minutes=1))
    code = code_at(secret, START + dt.timedelta(minutes=1))
    first = password_only(app)
    assert first.post(CHALLENGE, {"code": code}).status_code == 303
    second = password_only(app)
    replay = second.post(CHALLENGE, {"code": code})
    assert replay.status_code == 422
    assert pending(second.get("/support/"))
    # An earlier step's code is no better once a later one was used.
    assert second.post(CHALLENGE, {"code": code_at(secret, START + dt.timedelta(seconds=30))}).status_code == 422
    clock.shift(dt.timedelta(seconds=30))
    assert second.post(CHALLENGE, {"code": code_at(secret, START + dt.timedelta(seconds=90))}).status_code == 303


def _route_url(app, rule) -> str:
    values = {}
    for name, converter in rule._converters.items():
        values[name] = 1 if isinstance(converter, IntegerConverter) else "x"
    with app.test_request_context():
        return app.url_map.bind("localhost").build(rule.endpoint, values)


def test_between_the_two_steps_every_route_redirects_to_the_second_step(app, enrolled, clock):
    browser = password_only(app)
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in OPEN_BETWEEN_STEPS:
            continue
        url = _route_url(app, rule)
        for method in sorted(rule.methods & {"GET", "POST"}):
            call = browser.get if method == "GET" else browser.post
            response = call(url)
            assert pending(response), (method, url, response.status_code)
            partial = call(url, htmx=True)
            assert partial.status_code == 200 and partial.headers["HX-Redirect"].startswith(CHALLENGE), (method, url)
            assert partial.get_data() == b""
            checked += 1
    assert checked > 60
    # The second step itself is open (and shows nothing of the account or the app), and signing out.
    step = browser.get(CHALLENGE)
    assert step.status_code == 200
    assert 'class="mainnav"' not in step.get_data(as_text=True) and "Dr.Ada" not in step.get_data(as_text=True)
    assert browser.post("/auth/logout").status_code == 303


def test_five_wrong_codes_lock_the_second_step_for_twenty_minutes_and_mail_the_user(app, enrolled, clock):
    secret, _ = enrolled
    browser = password_only(app)
    for _ in range(4):
        assert browser.post(CHALLENGE, {"code": "123456"}).status_code == 422
    locked = browser.post(CHALLENGE, {"code": "123456"})
    assert locked.status_code == 429
    assert "locked until" in locked.get_data(as_text=True)
    # The right code does nothing while locked.
    assert browser.post(CHALLENGE, {"code": code_at(secret, START)}).status_code == 429
    assert pending(browser.get("/support/"))
    mails = query(lambda: list(OutboxMail.select().where(OutboxMail.to_addr == ADA)))
    assert len(mails) == 1 and "locked" in mails[0].subject
    assert actions().count("twofa_failed") == 5 and "twofa_locked" in actions()
    clock.shift(dt.timedelta(minutes=20, seconds=1))
    later = START + dt.timedelta(minutes=20, seconds=1)
    assert browser.post(CHALLENGE, {"code": code_at(secret, later)}).status_code == 303
    assert browser.get("/support/").status_code == 200


def test_recovery_codes_work_once_and_new_ones_replace_them(app, enrolled, clock):
    _, codes = enrolled
    browser = password_only(app)
    assert browser.post(CHALLENGE, {"code": codes[0].upper().replace("-", " ")}).status_code == 303
    assert browser.get("/support/").status_code == 200
    assert "twofa_recovery_used" in actions()
    again = password_only(app)
    assert again.post(CHALLENGE, {"code": codes[0]}).status_code == 422
    assert query(lambda: twofa.recovery_codes_left(user())) == 9
    # Make new ones: the old ones die.
    made = browser.post("/account/two-factor/recovery-codes")
    fresh = CODE_IN_PAGE.findall(browser.get(made.headers["Location"]).get_data(as_text=True))
    assert len(fresh) == 10 and not set(fresh) & set(codes)
    assert again.post(CHALLENGE, {"code": codes[1]}).status_code == 422
    assert again.post(CHALLENGE, {"code": fresh[0]}).status_code == 303


def test_trusting_a_browser_skips_the_second_step_until_the_password_changes(app, enrolled, clock):
    secret, _ = enrolled
    browser = password_only(app)
    clock.shift(dt.timedelta(seconds=30))
    response = browser.post(CHALLENGE, {"code": code_at(secret, START + dt.timedelta(seconds=30)), "trust": "y"})
    assert response.status_code == 303
    cookie = browser.client.get_cookie(twofa.TRUST_COOKIE)
    assert cookie is not None and cookie.http_only
    assert query(lambda: TrustedBrowser.select().count()) == 1
    browser.logout()
    browser.login(ADA)
    assert browser.get("/support/").status_code == 200  # no second step in this browser
    # Another browser of Ada's still needs the code; a copy of the cookie for another user is useless.
    assert pending(password_only(app).get("/support/"))
    # A password change revokes every trusted browser.
    changed = browser.post("/auth/password", {"current": PASSWORD, "password": "a-new-and-long-one-2026",
                                              "confirm": "a-new-and-long-one-2026"})
    assert changed.status_code == 303
    assert query(lambda: TrustedBrowser.select().count()) == 0
    browser.logout()
    browser.get("/auth/login")
    browser.post("/auth/login", {"email": ADA, "password": "a-new-and-long-one-2026"})
    assert pending(browser.get("/support/"))


def test_the_trust_cookie_is_bound_to_its_user(app, enrolled, clock, make_user):
    secret, _ = enrolled
    browser = password_only(app)
    browser.post(CHALLENGE, {"code": code_at(secret, START + dt.timedelta(seconds=30)), "trust": "y"})
    value = browser.client.get_cookie(twofa.TRUST_COOKIE).value
    with app.app_context():
        other = query(lambda: User.by_email(ADA))
        with app.test_request_context():
            assert query(lambda: twofa.is_trusted(other, value))
            assert not query(lambda: twofa.is_trusted(other, value[:-2] + "xx"))
    make_user("dr.bob@clinic.test")
    bob = query(lambda: User.by_email("dr.bob@clinic.test"))
    with app.test_request_context():
        assert not query(lambda: twofa.is_trusted(bob, value))


@pytest.mark.parametrize("app_config", [{"TWOFA_POLICY_OFF": False}])
def test_policy_sends_support_and_admins_without_a_factor_to_enrol(app, clock, make_user, app_config):
    make_user(SAM, "support")
    make_user(ADA)
    staff = password_only(app, SAM)
    response = staff.get("/support/")
    assert response.status_code == 303 and response.headers["Location"].endswith("/account/two-factor/app")
    assert staff.get("/staff/queue", htmx=True).headers["HX-Redirect"].endswith("/account/two-factor/app")
    assert staff.get("/account/security").status_code == 303
    assert staff.get("/account/two-factor/keys").status_code == 200  # a security key instead of an app
    secret, codes = enrol_app(staff)
    assert len(codes) == 10
    assert staff.get("/support/").status_code == 200
    # Clinicians are optional by default: Ada goes straight in.
    assert password_only(app, ADA).get("/support/").status_code == 200


@pytest.mark.parametrize("app_config", [{"TWOFA_POLICY_OFF": False}])
def test_an_admin_can_require_clinicians_too(app, clock, make_user, app_config):
    make_user(ROOT, "admin")
    make_user(ADA)
    root = password_only(app, ROOT)
    enrol_app(root)
    form = root.get("/admin/settings").get_data(as_text=True)
    assert "Require two-factor sign-in for clinicians" in form
    values = query(lambda: {key: str(value) for key, value in settings.get_all().items()})
    values["twofa_clinician"] = "required"
    assert root.post("/admin/settings", values).status_code == 303
    assert "setting_change" in actions(ROOT)
    response = password_only(app, ADA).get("/support/")
    assert response.headers["Location"].endswith("/account/two-factor/app")


def test_the_fresh_install_default_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("SMILEPASS_2FA_DEFAULT_POLICY", raising=False)
    assert settings._default_twofa_roles() == {"support", "admin"}
    monkeypatch.setenv("SMILEPASS_2FA_DEFAULT_POLICY", "clinician, support,admin")
    assert settings._default_twofa_roles() == {"clinician", "support", "admin"}
    monkeypatch.setenv("SMILEPASS_2FA_DEFAULT_POLICY", "")
    assert settings._default_twofa_roles() == set()


def test_a_user_with_a_factor_is_asked_even_when_the_policy_is_off(app, enrolled, clock):
    assert app.config["TWOFA_POLICY_OFF"]
    assert pending(password_only(app).get("/support/"))


def test_a_password_reset_does_not_skip_the_second_factor(app, enrolled, clock):
    browser = Browser(app)
    browser.get("/auth/forgot")
    browser.post("/auth/forgot", {"email": ADA})
    body = query(lambda: OutboxMail.select().order_by(OutboxMail.id.desc()).get().body)
    link = re.search(r"http://[^\s]+/auth/reset/\S+", body).group(0)
    path = "/" + link.split("/", 3)[3]
    browser.get(path)
    new_password = {"password": "another-long-one-2026", "confirm": "another-long-one-2026"}
    assert browser.post(path, new_password).status_code == 303
    browser.get("/auth/login")
    browser.post("/auth/login", {"email": ADA, "password": "another-long-one-2026"})
    assert pending(browser.get("/support/"))


def test_the_security_page_shows_the_factors_and_each_sessions_factor(app, enrolled, clock, clinician):
    page = clinician.get("/account/security").get_data(as_text=True)
    assert "Authenticator app" in page and "Recovery codes left" in page
    assert re.search(r'id="factor-recovery">\s*<th scope="row">Recovery codes left</th>\s*<td>10</td>', page)
    secret, _ = enrolled
    other = password_only(app)
    other.post(CHALLENGE, {"code": code_at(secret, START + dt.timedelta(seconds=30))})
    page = html.unescape(clinician.get("/account/security").get_data(as_text=True))
    assert "<td>Authenticator app</td>" in page


def test_removing_the_app_is_audited_and_ends_the_second_step(app, enrolled, clock, clinician):
    assert clinician.post("/account/two-factor/app/remove").status_code == 303
    assert not query(lambda: twofa.has_totp(user()))
    assert "twofa_removed" in actions()
    assert query(lambda: RecoveryCode.select().count()) == 0  # no factor left: no way back needed
    assert password_only(app).get("/support/").status_code == 200  # no factor, policy off


@pytest.mark.parametrize("app_config", [{"TWOFA_POLICY_OFF": False}])
def test_a_required_user_cannot_remove_the_last_factor(app, clock, make_user, app_config):
    make_user(SAM, "support")
    staff = password_only(app, SAM)
    enrol_app(staff)
    staff.get("/account/security")
    refused = staff.post("/account/two-factor/app/remove")
    assert refused.status_code == 303
    assert query(lambda: twofa.has_totp(user(SAM)))
    assert "add another" in staff.get("/account/security").get_data(as_text=True)
    # With a second factor (a key) the app may go.
    query(lambda: SecurityKey.create(user=user(SAM).id, name="Blue", credential_id="abc", public_key="def"))
    assert staff.post("/account/two-factor/app/remove").status_code == 303
    assert not query(lambda: twofa.has_totp(user(SAM)))


def test_a_trusted_browser_is_asked_again_after_thirty_days(app, enrolled, clock):
    secret, _ = enrolled
    browser = password_only(app)
    browser.post(CHALLENGE, {"code": code_at(secret, START + dt.timedelta(seconds=30)), "trust": "y"})
    cookie = browser.client.get_cookie(twofa.TRUST_COOKIE).value
    clock.shift(dt.timedelta(days=30, minutes=1))
    later = Browser(app)
    later.client.set_cookie(twofa.TRUST_COOKIE, cookie)
    later.get("/auth/login")
    later.post("/auth/login", {"email": ADA, "password": PASSWORD})
    assert pending(later.get("/support/"))


def test_an_admin_resets_a_users_second_factors(app, enrolled, clock, admin):
    ada = user()
    assert admin.post(f"/admin/users/{ada.id}/reset-2fa").status_code == 303
    assert not query(lambda: twofa.has_factor(ada))
    assert query(lambda: RecoveryCode.select().count()) == 0
    reset = query(lambda: AuditLog.get(AuditLog.action == "twofa_reset"))
    assert reset.actor_email == ROOT and reset.object_id == str(ada.id)
    mails = query(lambda: [m.subject for m in OutboxMail.select().where(OutboxMail.to_addr == ADA)])
    assert any("reset" in subject for subject in mails)
    # A clinician cannot reset anyone (404, like a page they cannot see).
    other = Browser(app)
    other.login(ADA)
    assert other.post(f"/admin/users/{ada.id}/reset-2fa").status_code == 404


def test_reset_2fa_from_the_command_line(app, enrolled, clock):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "reset-2fa", ADA])
    assert result.exit_code == 0, result.output
    assert not query(lambda: twofa.has_factor(user()))
    assert query(lambda: AuditLog.get(AuditLog.action == "twofa_reset").detail) == "command line"
    missing = runner.invoke(args=["users", "reset-2fa", "nobody@clinic.test"])
    assert missing.exit_code != 0 and "no account" in missing.output


def test_another_users_security_key_cannot_be_removed(app, clock, clinician, make_user):
    make_user("dr.bob@clinic.test")
    bob = query(lambda: User.by_email("dr.bob@clinic.test"))
    key = query(lambda: SecurityKey.create(user=bob.id, name="Bob's key", credential_id="abc", public_key="def"))
    assert clinician.post(f"/account/two-factor/keys/{key.id}/remove").status_code == 404
    assert query(lambda: SecurityKey.select().count()) == 1


def test_the_totp_key_cannot_be_read_with_another_secret_key(app, enrolled, tmp_path, database_url, redis_url):
    other = create_app({"TESTING": True, "SECRET_KEY": "another-key", "DATABASE_URL": database_url,
                        "REDIS_URL": redis_url, "INSTANCE_PATH": str(tmp_path / "other"),
                        "UPLOAD_DIR": str(tmp_path / "up2")})
    with other.app_context():
        assert not query(lambda: twofa.check_totp(user(), code_at(enrolled[0], START)))


def test_a_refused_security_key_answer_counts_towards_the_lock(app, clock, clinician):
    key = query(lambda: SecurityKey.create(user=user().id, name="Blue", credential_id="abc", public_key="def"))
    browser = password_only(app)
    assert pending(browser.get("/support/"))
    headers = {"X-CSRFToken": browser.token}
    options = browser.client.post("/auth/two-factor/key/options", headers=headers)
    assert options.status_code == 200 and options.get_json()["allowCredentials"][0]["id"] == key.credential_id
    forged = {"credential": {"id": "abc", "rawId": "abc", "type": "public-key",
                             "response": {"clientDataJSON": "e30", "authenticatorData": "AA", "signature": "AA"}}}
    refused = browser.client.post("/auth/two-factor/key", json=forged, headers=headers)
    assert refused.status_code == 422 and "error" in refused.get_json()
    assert query(lambda: TwoFactor.get(TwoFactor.user == user().id).failures) == 1
    # The challenge was taken: answering again without new options is refused too.
    assert browser.client.post("/auth/two-factor/key", json=forged, headers=headers).status_code == 422
    assert pending(browser.get("/support/"))


def test_the_second_step_comes_before_a_temporary_password_is_replaced(app, clock, admin, make_user):
    admin.get("/admin/users")
    created = admin.post("/admin/users", {"email": SAM, "name": "Sam", "role": "support",
                                          "password": "temporary-long-pass-2026"})
    assert created.status_code == 303
    query(lambda: SecurityKey.create(user=user(SAM).id, name="Blue", credential_id="xyz", public_key="def"))
    browser = Browser(app)
    browser.get("/auth/login")
    browser.post("/auth/login", {"email": SAM, "password": "temporary-long-pass-2026"})
    assert pending(browser.get("/auth/password"))
    assert pending(browser.get("/support/"))

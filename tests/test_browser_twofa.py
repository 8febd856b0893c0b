"""Two-factor sign-in in real Chromium (issue 17): an authenticator app set up from the QR page's key and
used at the next sign-in (codes computed by pyotp); a security key registered and used through the
DevTools virtual authenticator (WebAuthn.enable / addVirtualAuthenticator over a CDP session), then
removed; a second browser without the credential cannot pass the second step with it.

WebAuthn needs a domain as relying party id, so these pages are opened on localhost, not 127.0.0.1."""
import datetime as dt
import re

import pyotp
import pytest
import time_machine

from smilepass.models import AuditLog, SecurityKey, User, UserSession

from .browser_support import TIMEOUT_MS, read_db
from .conftest import PASSWORD
from .parts import import_part

sync_api = import_part("playwright.sync_api", "make setup installs the test extras")
expect = sync_api.expect
expect.set_options(timeout=TIMEOUT_MS)

pytestmark = pytest.mark.browser

ADA = "dr.ada@clinic.test"
START = dt.datetime(2026, 12, 7, 9, 0, 5, tzinfo=dt.UTC)


@pytest.fixture
def local_page(new_page, live_server, app):
    """A page in a fresh context on http://localhost:<port> (the app's BASE_URL, so its RP id)."""
    base = live_server.url.replace("127.0.0.1", "localhost")
    app.config["BASE_URL"] = base
    return lambda: new_page(base_url=base)


def password_step(page, email=ADA):
    page.goto("/auth/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def sign_out(page):
    page.get_by_role("button", name="Sign out").first.click()
    page.wait_for_url(re.compile(r"/auth/login"))


def virtual_authenticator(page) -> tuple:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    made = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "usb", "hasResidentKey": False, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    return cdp, made["authenticatorId"]


def test_an_authenticator_app_is_set_up_and_asked_for_at_the_next_sign_in(local_page, make_user):
    make_user(ADA)
    with time_machine.travel(START, tick=True) as clock:
        page = local_page()
        password_step(page)
        page.wait_for_url(re.compile(r":\d+/support/$"))
        page.goto("/account/security")
        page.locator("#factor-app").get_by_role("link", name="Set up").click()
        page.wait_for_url(re.compile(r"/account/two-factor/app"))
        expect(page.get_by_role("img", name="QR code of your authenticator key")).to_be_visible()
        secret = page.locator("[data-totp-secret]").inner_text().replace(" ", "")
        page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
        page.get_by_role("button", name="Switch on").click()
        page.wait_for_url(re.compile(r"/account/two-factor/recovery-codes"))
        expect(page.locator(".recovery-codes li")).to_have_count(10)
        page.get_by_role("link", name="I have kept them").click()
        expect(page.locator("#factor-app")).to_contain_text("On")
        sign_out(page)

        clock.shift(dt.timedelta(seconds=30))  # the enrolment's code was used: the next step's
        password_step(page)
        page.wait_for_url(re.compile(r"/auth/two-factor"))
        page.goto("/support/")
        page.wait_for_url(re.compile(r"/auth/two-factor"))  # nothing else is reachable
        page.get_by_label("Code from your authenticator app, or a recovery code").fill("000000")
        page.get_by_role("button", name="Verify").click()
        expect(page.locator(".field-error")).to_contain_text("not right")
        page.get_by_label("Code from your authenticator app, or a recovery code").fill(pyotp.TOTP(secret).now())
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(re.compile(r":\d+/support/$"))
        # Read while the clock is still at START: a request the open page makes after the travel ends
        # (the clock then jumps hours ahead) finds the session idled out and deletes it.
        factors = read_db(lambda: [s.second_factor for s in UserSession.select()])
    assert factors == ["totp"]


def test_a_security_key_registers_signs_in_and_is_removed(local_page, make_user):
    make_user(ADA)
    with time_machine.travel(START, tick=True):
        page = local_page()
        virtual_authenticator(page)
        password_step(page)
        page.wait_for_url(re.compile(r":\d+/support/$"))
        page.goto("/account/two-factor/keys")
        page.get_by_label("Name of the key").fill("Blue key")
        page.get_by_role("button", name="Add security key").click()
        page.wait_for_url(re.compile(r"/account/two-factor/recovery-codes"))
        page.get_by_role("link", name="I have kept them").click()
        expect(page.locator("#factor-keys")).to_contain_text("1")
        keys = read_db(lambda: list(SecurityKey.select()))
        assert [key.name for key in keys] == ["Blue key"]
        sign_out(page)

        password_step(page)
        page.wait_for_url(re.compile(r"/auth/two-factor"))
        page.get_by_label("Trust this browser for 30 days").check()
        page.get_by_role("button", name="Use security key").click()
        page.wait_for_url(re.compile(r":\d+/support/$"))
        assert read_db(lambda: [s.second_factor for s in UserSession.select()]) == ["key"]
        assert read_db(lambda: SecurityKey.get().last_used_at) is not None
        assert any(cookie["name"] == "smilepass_trusted" for cookie in page.context.cookies())
        # Trusted: the next sign-in in this browser needs the password only.
        sign_out(page)
        password_step(page)
        page.wait_for_url(re.compile(r":\d+/support/$"))

        # Another browser, with an authenticator of its own but not this credential, cannot pass.
        other = local_page()
        virtual_authenticator(other)
        password_step(other)
        other.wait_for_url(re.compile(r"/auth/two-factor"))
        other.get_by_role("button", name="Use security key").click()
        expect(other.locator("[data-webauthn-error]")).to_be_visible()
        other.goto("/support/")
        other.wait_for_url(re.compile(r"/auth/two-factor"))

        page.goto("/account/two-factor/keys")
        page.locator("tr", has_text="Blue key").get_by_role("button", name="Remove").click()
        expect(page.get_by_text("No security key is registered yet.")).to_be_visible()
    assert read_db(lambda: SecurityKey.select().count()) == 0
    ada = read_db(lambda: User.by_email(ADA))
    trail = read_db(lambda: [(r.action, r.detail) for r in AuditLog.select().where(AuditLog.object_id == str(ada.id))
                             .where(AuditLog.action.startswith("twofa_"))])
    assert ("twofa_enrolled", f"security key #{keys[0].id}") in trail
    assert ("twofa_removed", f"security key #{keys[0].id}") in trail
    assert ("twofa_passed", "key") in trail

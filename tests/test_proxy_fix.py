"""SMILEPASS_TRUSTED_PROXIES in process: with 0 (make run) a client's own X-Forwarded-* headers change
nothing; with 1 (behind the install's Caddy) the audit log, the sessions and the per-address rate limits
see the client's address from X-Forwarded-For, and external links get the proxy's scheme and host.
The live pass through a real Caddy and gunicorn is tests/test_browser_proxy.py."""
import datetime as dt

import pytest
from flask import request, url_for
from werkzeug.middleware.proxy_fix import ProxyFix

from smilepass import config
from smilepass.models import AuditLog, UserSession

from .conftest import PASSWORD, Browser, query

CLIENT = "127.0.0.1"
FORGED = "203.0.113.9"
FORWARDED = {"X-Forwarded-For": FORGED, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "portal.clinic.example"}


@pytest.fixture
def mid_window(time_machine):
    """The login limit counts per clock-aligned window: a test crossing a boundary (say 05:00:00) would see
    its count start again. The clock stands still in the middle of one."""
    time_machine.move_to(dt.datetime(2026, 12, 2, 10, 5, tzinfo=dt.UTC), tick=False)


def where_am_i(app):
    """A route that tells what the app makes of the request; added before the app serves anything."""
    app.add_url_rule("/_test/where", "where", lambda: {"addr": request.remote_addr,
                                                        "login": url_for("auth.login", _external=True)})


def sign_in_forwarded(app, email, forwarded_for=FORGED):
    browser = Browser(app)
    headers = {**FORWARDED, "X-Forwarded-For": forwarded_for}
    browser.get("/auth/login", headers=headers)
    # As a browser sends it: over https Flask-WTF wants a same-origin Referer with each form.
    headers["Referer"] = "https://portal.clinic.example/auth/login"
    return browser.post("/auth/login", {"email": email, "password": PASSWORD}, headers=headers)


def last_login_address(email):
    return query(lambda: AuditLog.select(AuditLog.ip).where(AuditLog.action == "login", AuditLog.actor_email == email)
                 .order_by(AuditLog.id.desc()).scalar())


def session_addresses():
    return query(lambda: sorted(UserSession.select(UserSession.address).tuples()))


def test_the_setting_defaults_to_no_trusted_proxy(tmp_path, monkeypatch):
    monkeypatch.delenv("SMILEPASS_TRUSTED_PROXIES", raising=False)
    assert config.load(str(tmp_path))["TRUSTED_PROXIES"] == 0
    monkeypatch.setenv("SMILEPASS_TRUSTED_PROXIES", "1")
    assert config.load(str(tmp_path))["TRUSTED_PROXIES"] == 1


class TestNoTrustedProxy:
    def test_forged_headers_change_nothing(self, app, make_user):
        assert not isinstance(app.wsgi_app, ProxyFix)
        where_am_i(app)
        make_user("dr.ada@clinic.test")
        response = sign_in_forwarded(app, "dr.ada@clinic.test")
        assert response.status_code == 303
        assert last_login_address("dr.ada@clinic.test") == CLIENT
        assert session_addresses() == [(CLIENT,)]
        where = app.test_client().get("/_test/where", headers=FORWARDED).get_json()
        assert where == {"addr": CLIENT, "login": "http://localhost/auth/login"}

    @pytest.mark.parametrize("app_config", [{"LOGIN_RATE_LIMIT": "2 per 10 minutes"}])
    def test_forged_addresses_share_the_senders_rate_limit(self, app, mid_window):
        # Failed sign-ins with a new invented address each time: all count against the one real address.
        statuses = [sign_in_forwarded(app, f"nobody{n}@clinic.test", forwarded_for=f"198.51.100.{n}").status_code
                    for n in range(3)]
        assert statuses == [422, 422, 429]


class TestOneTrustedProxy:
    @pytest.fixture
    def app_config(self):
        return {"TRUSTED_PROXIES": 1, "LOGIN_RATE_LIMIT": "2 per 10 minutes"}

    def test_the_client_address_scheme_and_host_come_from_the_proxy(self, app, make_user):
        where_am_i(app)
        make_user("dr.ada@clinic.test")
        response = sign_in_forwarded(app, "dr.ada@clinic.test")
        assert response.status_code == 303
        assert last_login_address("dr.ada@clinic.test") == FORGED
        assert session_addresses() == [(FORGED,)]
        where = app.test_client().get("/_test/where", headers=FORWARDED).get_json()
        assert where == {"addr": FORGED, "login": "https://portal.clinic.example/auth/login"}

    def test_only_the_address_the_proxy_added_counts(self, app):
        where_am_i(app)
        # A client's own X-Forwarded-For arrives first in the list; one trusted proxy means the last entry.
        where = app.test_client().get("/_test/where", headers={"X-Forwarded-For": f"10.6.6.6, {FORGED}"}).get_json()
        assert where["addr"] == FORGED

    def test_each_client_address_has_its_own_rate_limit(self, app, mid_window):
        def attempt(n, address):
            return sign_in_forwarded(app, f"nobody{n}@clinic.test", forwarded_for=address).status_code

        assert [attempt(0, "198.51.100.1"), attempt(1, "198.51.100.1")] == [422, 422]
        assert attempt(2, "198.51.100.2") == 422  # another client behind the same proxy
        assert attempt(3, "198.51.100.1") == 429

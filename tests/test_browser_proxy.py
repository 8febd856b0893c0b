"""The production path end to end: Debian's Caddy (the Caddyfile the installer writes, on high ports with
`tls internal`) in front of a real gunicorn with SMILEPASS_TRUSTED_PROXIES=1 and SMILEPASS_HTTPS=1.

- Chromium signs in over HTTPS: the session cookie is Secure and HttpOnly, the page has Caddy's HSTS.
- A plain HTTPS client that trusts only Caddy's own root signs in from another loopback address
  (127.0.0.7), with forged X-Forwarded-For/-Host/-Proto: the audit row and the session have 127.0.0.7,
  neither Caddy's 127.0.0.1 nor the forged address; a form without a same-origin Referer is refused, so
  the app knows it is served over https at the proxy's host, and a patient link it makes is
  https://localhost:<port>/p/….
- Straight to a second gunicorn as `make run` starts it (no trusted proxy), a forged X-Forwarded-For is
  ignored; the same request to the gunicorn that trusts one proxy is believed, which is why the install
  binds gunicorn to loopback only.
- A body announced over the app's upload limit is refused by Caddy with the 413 notice (in each language),
  also for a browser sending all of it, instead of the bare 502 of a race between gunicorn and the upload.

The in-process checks of both settings are tests/test_proxy_fix.py."""
import http.client
import os
import re
import shutil
import signal
import ssl
import subprocess
import time
import urllib.parse
from http.cookies import SimpleCookie
from pathlib import Path

import pytest

from smilepass import config
from smilepass.install.caddy import render_caddyfile
from smilepass.models import AuditLog, User, UserSession

from .browser_support import TIMEOUT_MS, sign_in
from .case_helpers import SAM, make_case, make_shipment
from .conftest import CSRF_META, PASSWORD, ROOT, free_port, query, worker_env
from .parts import import_part, part_missing

sync_api = import_part("playwright.sync_api", "make setup installs the test extras")

pytestmark = pytest.mark.browser

CLIENT_ADDRESS = "127.0.0.7"
FORGED = "203.0.113.9"
# Only there so that a hang fails the test.
START_SECONDS = 60
HTTP_TIMEOUT = 30
UPLOAD_LIMITS = {"SMILEPASS_MAX_SCAN_MB": "2", "SMILEPASS_MAX_IMAGE_MB": "1"}


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the process group (gunicorn's workers too), SIGKILL if it does not end."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until(ready, process: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{what} exited: {log.read_text()[-3000:]}"
        try:
            if ready():
                return
        except (OSError, ssl.SSLError, http.client.HTTPException):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what} did not come up in {START_SECONDS}s: {log.read_text()[-3000:]}")


class Client:
    """One person's HTTP(S) client: keeps the session cookie, reads the CSRF token of the last page."""

    def __init__(self, connect):
        self.connect, self.cookie, self.token, self.set_cookies = connect, "", None, []

    def send(self, method, path, form=None, headers=None):
        conn = self.connect()
        headers = dict(headers or {})
        if self.cookie:
            headers["Cookie"] = self.cookie
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode(errors="replace")
        finally:
            conn.close()
        self.set_cookies += response.headers.get_all("Set-Cookie") or []
        jar = SimpleCookie(response.getheader("Set-Cookie", ""))
        if "smilepass_session" in jar:
            self.cookie = f"smilepass_session={jar['smilepass_session'].value}"
        match = CSRF_META.search(text)
        if match:
            self.token = match.group(1)
        return response, text

    def sign_in(self, email, headers=None, referer=None):
        response, _ = self.send("GET", "/auth/login", headers=headers)
        assert response.status == 200, response.status
        headers = {**(headers or {}), **({"Referer": referer} if referer else {})}
        return self.send("POST", "/auth/login", {"email": email, "password": PASSWORD, "csrf_token": self.token},
                         headers=headers)[0]


@pytest.fixture
def processes():
    """Every process a test starts, stopped at its end whatever happened."""
    started: list[subprocess.Popen] = []
    yield started
    for process in reversed(started):
        stop(process)


@pytest.fixture
def start_gunicorn(app, processes, tmp_path):
    def start(**settings) -> int:
        port = free_port()
        log = tmp_path / f"gunicorn-{port}.log"
        env = {**worker_env(app), **settings}
        with open(log, "wb") as out:
            process = subprocess.Popen([str(ROOT / ".venv" / "bin" / "gunicorn"), "--no-control-socket",
                                        "--workers", "1", "--bind", f"127.0.0.1:{port}", "app:app"],
                                       cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True)
        processes.append(process)

        def answers():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
            try:
                conn.request("GET", "/healthz")
                return conn.getresponse().status == 200
            finally:
                conn.close()

        wait_until(answers, process, log, f"gunicorn on 127.0.0.1:{port}")
        return port
    return start


class Caddy:
    def __init__(self, http_port: int, https_port: int, root_cert: Path, body_limit: int):
        self.http_port, self.https_port, self.root_cert, self.body_limit = http_port, https_port, root_cert, body_limit
        self.url = f"https://localhost:{https_port}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.root_cert))

    def connection(self, source_address=None):
        return http.client.HTTPSConnection("localhost", self.https_port, context=self.ssl_context(),
                                           source_address=source_address, timeout=HTTP_TIMEOUT)


@pytest.fixture
def caddy(app, start_gunicorn, processes, tmp_path, monkeypatch):
    """Caddy with the installer's Caddyfile for `localhost` in front of gunicorn that trusts one proxy."""
    executable = shutil.which("caddy")
    if executable is None:
        part_missing("caddy is not installed (`make test` installs Debian's caddy package)")
    # Small upload limits, so that a test can send a body over them.
    for name, value in UPLOAD_LIMITS.items():
        monkeypatch.setenv(name, value)
    body_limit = config.load(app.instance_path)["MAX_CONTENT_LENGTH"]
    upstream = start_gunicorn(SMILEPASS_TRUSTED_PROXIES="1", SMILEPASS_HTTPS="1", **UPLOAD_LIMITS)
    http_port, https_port, data = free_port(), free_port(), tmp_path / "caddy-data"
    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_text(render_caddyfile("localhost", upstream=f"127.0.0.1:{upstream}", max_body_bytes=body_limit,
                                          http_port=http_port, https_port=https_port, data_dir=str(data),
                                          admin="off"))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path / "home"),
           "XDG_DATA_HOME": str(tmp_path / "xdg-data"), "XDG_CONFIG_HOME": str(tmp_path / "xdg-config")}
    log = tmp_path / "caddy.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([executable, "run", "--adapter", "caddyfile", "--config", str(caddyfile)],
                                   cwd=tmp_path, env=env, stdout=out, stderr=out, start_new_session=True)
    processes.append(process)
    server = Caddy(http_port, https_port, data / "pki" / "authorities" / "local" / "root.crt", body_limit)

    def proxies():
        if not server.root_cert.exists():
            return False
        conn = server.connection()
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        finally:
            conn.close()

    wait_until(proxies, process, log, f"caddy on https://localhost:{https_port}")
    return server


def last_sign_in(email):
    return query(lambda: AuditLog.select(AuditLog.ip).where(AuditLog.action == "login", AuditLog.actor_email == email)
                 .order_by(AuditLog.id.desc()).scalar())


def session_address(email):
    return query(lambda: UserSession.select(UserSession.address).join(User).where(User.email == email)
                 .order_by(UserSession.id.desc()).scalar())


def test_signing_in_through_caddy_over_https(caddy, chromium, make_user):
    make_user("dr.ada@clinic.test")
    context = chromium.new_context(base_url=caddy.url, ignore_https_errors=True)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        response = page.goto("/auth/login")
        assert response.url.startswith("https://localhost:")
        headers = response.headers
        # Caddy's value for a LAN name, in place of the app's own (one header, not two).
        assert headers["strict-transport-security"] == "max-age=31536000"
        assert "server" not in headers
        sign_in(page, "dr.ada@clinic.test", PASSWORD)
        assert page.url.startswith(f"{caddy.url}/support/")
        cookies = {cookie["name"]: cookie for cookie in context.cookies()}
        session_cookie = cookies["smilepass_session"]
        assert session_cookie["secure"] and session_cookie["httpOnly"]
    finally:
        context.close()


def test_plain_http_is_sent_to_https(caddy):
    conn = http.client.HTTPConnection("127.0.0.1", caddy.http_port, timeout=HTTP_TIMEOUT)
    try:
        conn.request("GET", "/auth/login?next=/support/", headers={"Host": f"localhost:{caddy.http_port}"})
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    assert response.status == 308
    # Caddy 2.6 leaves out the https port when it is its own https_port (443 on a real install).
    location = urllib.parse.urlsplit(response.getheader("Location"))
    assert (location.scheme, location.hostname, location.path, location.query) == (
        "https", "localhost", "/auth/login", "next=/support/")


def test_the_audit_log_has_the_clients_address_not_caddys(caddy, make_user):
    make_user("dr.bea@clinic.test")
    make_user(SAM, "support")
    assert caddy.root_cert.read_text().startswith("-----BEGIN CERTIFICATE-----")
    client = Client(lambda: caddy.connection(source_address=(CLIENT_ADDRESS, 0)))
    # What a client may claim about itself; Caddy replaces all of it with what it saw.
    forged = {"X-Forwarded-For": FORGED, "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"}
    # Served over https at Caddy's host: a form without a same-origin Referer is refused (Flask-WTF checks
    # it only on https requests: the scheme and the host came through).
    assert client.sign_in("dr.bea@clinic.test", headers=forged).status == 400
    assert client.sign_in("dr.bea@clinic.test", headers=forged, referer="http://localhost/auth/login").status == 400
    response = client.sign_in("dr.bea@clinic.test", headers=forged, referer=f"{caddy.url}/auth/login")
    assert response.status == 303
    session_cookie = next(c for c in client.set_cookies if c.startswith("smilepass_session="))
    assert "Secure" in session_cookie and "HttpOnly" in session_cookie
    assert response.getheader("Strict-Transport-Security") == "max-age=31536000"
    # Caddy replaces the client's own X-Forwarded-For; the app takes the one address Caddy added.
    assert last_sign_in("dr.bea@clinic.test") == CLIENT_ADDRESS
    assert session_address("dr.bea@clinic.test") == CLIENT_ADDRESS
    signed_in, _ = client.send("GET", "/support/")
    assert signed_in.status == 200

    # A link made for a patient (url_for(_external=True)) points at the portal over https, not at gunicorn.
    shipment = make_shipment(make_case(owner_email="dr.bea@clinic.test"))
    made, _ = client.send("POST", f"/cases/shipments/{shipment.id}/links", {"csrf_token": client.token},
                          headers={**forged, "Referer": f"{caddy.url}/cases/shipments/{shipment.id}"})
    assert made.status == 303, made.status
    shown, html = client.send("GET", urllib.parse.urlsplit(made.getheader("Location")).path, headers=forged)
    assert shown.status == 200
    assert re.search(rf'value="{re.escape(caddy.url)}/p/[A-Za-z0-9_-]{{43}}"', html), html


def announce_body(caddy, size, send=64 * 1024):
    """A POST whose headers announce `size` bytes, of which only the first `send` are sent before the answer
    is read: what Caddy decides from the Content-Length alone."""
    conn = caddy.connection()
    try:
        conn.putrequest("POST", "/auth/login")
        conn.putheader("Content-Type", "application/x-www-form-urlencoded")
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        conn.send(b"x" * min(send, size))
        response = conn.getresponse()
        return response, response.read().decode()
    finally:
        conn.close()


def test_a_body_over_the_limit_is_refused_by_caddy_with_a_notice(caddy, chromium):
    assert caddy.body_limit == 4 * 1024 * 1024
    for size in (caddy.body_limit + 1, caddy.body_limit * 50):
        response, page = announce_body(caddy, size)
        assert response.status == 413, (size, response.status, page[:300])
        assert "The upload is too large: at most 4 MB can be sent at once." in page
        assert "Der Upload ist zu groß: Höchstens 4 MB" in page
        # An htmx form shows it where it shows the app's own errors.
        assert response.getheader("HX-Retarget") == "#flash"
        assert response.getheader("Strict-Transport-Security") == "max-age=31536000"
    # At the limit the body reaches the app (which refuses the form for want of a CSRF token).
    response, page = announce_body(caddy, caddy.body_limit, send=caddy.body_limit)
    assert response.status == 400 and "Your form expired or came from another site." in page

    # A browser sending the whole body gets the notice too, not a proxy error.
    context = chromium.new_context(base_url=caddy.url, ignore_https_errors=True)
    try:
        page = context.new_page()
        page.goto("/auth/login")
        status, text = page.evaluate("""async (size) => {
            const response = await fetch("/auth/login", {method: "POST", body: new Uint8Array(size)});
            return [response.status, await response.text()];
        }""", caddy.body_limit + 1)
        assert status == 413 and "at most 4 MB can be sent at once" in text
    finally:
        context.close()


def test_a_forged_forwarded_for_straight_to_gunicorn(start_gunicorn, make_user):
    make_user("dr.cy@clinic.test")
    make_user("dr.dee@clinic.test")
    forged = {"X-Forwarded-For": FORGED}
    as_make_run = start_gunicorn(SMILEPASS_TRUSTED_PROXIES="0")
    client = Client(lambda: http.client.HTTPConnection("127.0.0.1", as_make_run, timeout=HTTP_TIMEOUT))
    assert client.sign_in("dr.cy@clinic.test", headers=forged).status == 303
    assert last_sign_in("dr.cy@clinic.test") == "127.0.0.1"
    assert session_address("dr.cy@clinic.test") == "127.0.0.1"
    # The control: a gunicorn that trusts one proxy believes whoever reaches it directly.
    behind_proxy = start_gunicorn(SMILEPASS_TRUSTED_PROXIES="1")
    client = Client(lambda: http.client.HTTPConnection("127.0.0.1", behind_proxy, timeout=HTTP_TIMEOUT))
    assert client.sign_in("dr.dee@clinic.test", headers=forged).status == 303
    assert last_sign_in("dr.dee@clinic.test") == FORGED

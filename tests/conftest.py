"""Fixtures in the style of Flask's tutorial: `app`, `client`, signed-in clients per role, a fresh
database per test. SQLite by default (a temp file per test); PostgreSQL when
SMILEPASS_TEST_DATABASE_URL is set (migrated once, emptied between tests)."""
import contextlib
import datetime as dt
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import peewee
import pytest
import time_machine
from argon2 import PasswordHasher
from playhouse.migrations import Runner

from smilepass import create_app, db
from smilepass.auth import security
from smilepass.auth.users import create_user
from smilepass.cases import patient
from smilepass.models import ALL_MODELS
from smilepass.storage import for_config

from . import s3_server as s3_server_module
from .parts import part_missing, require

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-staple"
PG_URL = os.environ.get("SMILEPASS_TEST_DATABASE_URL", "")
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


# Argon2 with its production cost takes about half a second per hash or check on this machine, and
# almost every test signs people in (a hash to create each user, a check to sign in). Tests keep the
# real argon2id algorithm with the cheapest parameters; a hash records its own parameters, so checking
# works the same. Production cost is a property of argon2-cffi's defaults, not of SmilePass's code.
FAST_PASSWORD_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(autouse=True, scope="session")
def fast_password_hashing():
    real = security._hasher
    security._hasher = FAST_PASSWORD_HASHER
    yield
    security._hasher = real


@pytest.fixture(scope="session")
def pg_ready():
    """A PostgreSQL database of this run's own (so parallel runs cannot collide), migrated once and
    dropped at the end."""
    if not PG_URL:
        yield None
        return
    import psycopg2

    name = f"smilepass_test_{os.getpid()}"
    admin = psycopg2.connect(PG_URL)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
        cur.execute(f"CREATE DATABASE {name}")
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    db.bind(url)
    db.migrate()
    yield url
    db.database.close_all() if hasattr(db.database.obj, "close_all") else None
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


def _empty_postgres(url):
    database = db.bind(url)
    tables = ", ".join(f'"{m._meta.table_name}"' for m in ALL_MODELS)
    with database.connection_context():
        database.execute_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory):
    """A SQLite file migrated once per test process: each test starts from a copy of it instead of
    running every migration again (a dozen commits, each an fsync, per test)."""
    if PG_URL:
        return None
    path = tmp_path_factory.mktemp("migrated") / "smilepass.db"
    database = db.bind(f"sqlite:///{path}")
    db.migrate()
    with database.connection_context():
        database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    database.close()
    return path


@pytest.fixture
def database_url(tmp_path, pg_ready, migrated_sqlite):
    if pg_ready:
        _empty_postgres(pg_ready)
        return pg_ready
    path = tmp_path / "smilepass.db"
    shutil.copyfile(migrated_sqlite, path)
    return f"sqlite:///{path}"


# Redis database numbers for tests: never 0 (`make run` keeps its queues there). Each pytest-xdist
# worker (gw0, gw1 ...) gets one of its own, so parallel workers never flush or work each other's queues;
# a run without xdist uses the last one. scripts/test.sh caps the worker count at MAX_XDIST_WORKERS.
FIRST_WORKER_REDIS_DB = 1
MAX_XDIST_WORKERS = 13
SERIAL_REDIS_DB = 14


def redis_db_number(xdist_worker: str) -> int:
    """The Redis database for this pytest process: PYTEST_XDIST_WORKER "gw0" → 1, "gw1" → 2 ..."""
    if not xdist_worker:
        return SERIAL_REDIS_DB
    index = int(xdist_worker.removeprefix("gw"))
    if index >= MAX_XDIST_WORKERS:
        raise RuntimeError(f"xdist worker {xdist_worker}: at most {MAX_XDIST_WORKERS} workers have a Redis "
                           "database of their own (pass --maxprocesses)")
    return FIRST_WORKER_REDIS_DB + index


@pytest.fixture
def redis_url():
    # A database number of its own, so tests never touch a running instance's queues or another worker's.
    base = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    number = redis_db_number(os.environ.get("PYTEST_XDIST_WORKER", ""))
    return re.sub(r"/\d*$", "", base.rstrip("/")) + f"/{number}"


@pytest.fixture
def app_config(request):
    """Settings the app fixture starts with on top of the test defaults (a module overrides this when
    a setting must be there from the start, e.g. one the database is opened with). A test that takes the
    `storage_settings` fixture runs twice: on the upload folder and on a bucket of a real S3 server."""
    if "storage_settings" in request.fixturenames:
        return dict(request.getfixturevalue("storage_settings"))
    return {}


@pytest.fixture
def app(tmp_path, database_url, redis_url, app_config):
    instance = tmp_path / "instance"
    app = create_app({
        "TESTING": True,
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": "test-secret-key",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "UPLOAD_DIR": str(tmp_path / "uploads"),
        # Rate-limit counts of this test alone: every test signs in (and asks for resets) from 127.0.0.1,
        # and counts kept in Redis for an hour would otherwise carry from one test into the next.
        "RATELIMIT_KEY_PREFIX": f"smilepass-patient-test-{uuid.uuid4().hex}",
        # The two-factor policy (support and admins must enrol) is off unless a test turns it on
        # (app_config {"TWOFA_POLICY_OFF": False}): every other test signs staff in with a password alone.
        "TWOFA_POLICY_OFF": True,
        **app_config,
    })
    # The limiter is one object per process and keeps the first app's prefix (flask-limiter reads the
    # setting only while it has none); a process runs many apps only in tests.
    patient.limiter._key_prefix = app.config["RATELIMIT_KEY_PREFIX"]
    if database_url.startswith("sqlite"):  # PostgreSQL's test database is migrated once per run
        db.migrate()
    yield app
    if not db.database.is_closed():
        db.database.close()


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 server (SeaweedFS) for this pytest process, started on first use."""
    server, missing = s3_server_module.start()
    if server is None:
        part_missing(missing)
    yield server
    server.stop()


@pytest.fixture
def s3_settings(s3_server):
    """App settings for a fresh place in the S3 server's bucket: a prefix of this test's own (SeaweedFS
    gives each bucket volumes of its own, so a bucket per test would soon run out of them)."""
    return s3_server.settings(s3_server.bucket, f"t{uuid.uuid4().hex[:16]}")


@pytest.fixture(params=["local", "s3"])
def storage_backend(request):
    """Parametrises a test over both storages: "local" (the upload folder) and "s3" (a bucket of a real
    SeaweedFS). A test module that uses it overrides app_config with `**storage_settings`."""
    return request.param


@pytest.fixture
def storage_settings(request, storage_backend):
    if storage_backend == "local":
        return {}
    return request.getfixturevalue("s3_settings")


def stored_keys(app, prefix: str = "") -> list[str]:
    """The keys of every stored file, from whichever storage the app has (a folder or a bucket)."""
    return [found.key for found in for_config(app.config).list(prefix)]


def stored_bytes(app, key: str) -> bytes:
    return for_config(app.config).read_bytes(key)


class Browser:
    """A test client that behaves like a browser: it reads the CSRF token from the page it is on
    and sends it with every form, as a real form (or htmx, in a header) would."""

    def __init__(self, app):
        self.client = app.test_client()
        self.token = None

    def get(self, path, htmx=False, **kwargs):
        headers = kwargs.pop("headers", {})
        if htmx:
            headers["HX-Request"] = "true"
        response = self.client.get(path, headers=headers, **kwargs)
        match = response.mimetype == "text/html" and CSRF_META.search(response.get_data(as_text=True))
        if match:
            self.token = match.group(1)
        return response

    def post(self, path, data=None, htmx=False, csrf=True, **kwargs):
        data = dict(data or {})
        headers = kwargs.pop("headers", {})
        if csrf:
            if self.token is None:
                self.get("/auth/login")
            data.setdefault("csrf_token", self.token)
        if htmx:
            headers["HX-Request"] = "true"
        return self.client.post(path, data=data, headers=headers, **kwargs)

    def login(self, email, password=PASSWORD):
        self.get("/auth/login")
        response = self.post("/auth/login", {"email": email, "password": password})
        self.get("/support/")
        return response

    def logout(self):
        return self.post("/auth/logout")


@pytest.fixture
def make_user(app):
    def make(email, role="clinician", password=PASSWORD, name=""):
        with db.database.connection_context():
            return create_user(email, password, role, name or email.split("@")[0].title())
    return make


@pytest.fixture
def client(app):
    return Browser(app)


@pytest.fixture
def browser_for(app, make_user):
    """A signed-in Browser for a new user of the given role."""
    def signed_in(email, role="clinician"):
        make_user(email, role)
        browser = Browser(app)
        response = browser.login(email)
        assert response.status_code == 303, response.get_data(as_text=True)
        return browser
    return signed_in


@pytest.fixture
def clinician(browser_for):
    return browser_for("dr.ada@clinic.test")


@pytest.fixture
def other_clinician(browser_for):
    return browser_for("dr.bob@clinic.test")


@pytest.fixture
def support(browser_for):
    return browser_for("sam@smilepass.test", "support")


@pytest.fixture
def admin(browser_for):
    return browser_for("root@smilepass.test", "admin")


@pytest.fixture
def new_ticket():
    """File a ticket through the Support page form; returns its id."""
    def file(browser, title="Upper arch scan rejected", description="Uploading the STL fails. Chrome on Windows.",
             priority="1", category="Scan & File Validation", **extra):
        data = {"title": title, "description": description, "priority": priority, "category": category, **extra}
        response = browser.post("/support/tickets", data, content_type="multipart/form-data")
        assert response.status_code == 303, response.get_data(as_text=True)
        return int(response.headers["Location"].rsplit("created=", 1)[1])
    return file


def legacy_database(path, tickets=()):
    """A SQLite database at the first migration holding one clinician and these tickets, each a
    (title, description, status), with the Runner that takes it further: for migrations that must
    carry existing rows over (backfills, search index)."""
    database = peewee.SqliteDatabase(str(path), pragmas={"foreign_keys": 1})
    runner = Runner(database, str(db.MIGRATIONS_DIR))
    runner.up("0001_initial")
    database.execute_sql(
        "INSERT INTO user (email, name, role, password_hash, session_stamp, is_active, ticket_sort, created_at) "
        "VALUES ('a@x.test', '', 'clinician', 'h', 's', 1, '-date', '2026-01-01')")
    for title, description, status in tickets:
        database.execute_sql(
            "INSERT INTO ticket (requester_id, title, description, priority, category, status, created_at, updated_at) "
            "VALUES (1, ?, ?, 0, 'c', ?, '2026-01-01', '2026-01-01')", (title, description, status))
    return database, runner


def query(fn):
    """Run a database read inside a connection (tests call models directly)."""
    with db.database.connection_context():
        return fn()


@contextlib.contextmanager
def recorded_sql():
    """Every SQL statement the app runs inside the block, as (sql, params): a structural measure of
    work (how many statements, which tables, whether LIMIT cuts the page) that does not depend on how
    busy the machine is."""
    statements = []
    target = db.database.obj
    run = target.execute_sql

    def recording(sql, params=None, *args, **kwargs):
        statements.append((sql, params))
        return run(sql, params, *args, **kwargs)

    target.execute_sql = recording
    try:
        yield statements
    finally:
        del target.execute_sql


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpSink:
    """A local SMTP server (aiosmtpd) that keeps every message it receives."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages = []
        self._controller = Controller(self, hostname="127.0.0.1", port=free_port())
        self.port = self._controller.port

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_sink():
    sink = SmtpSink()
    sink._controller.start()
    yield sink
    sink._controller.stop()


def worker_env(app):
    """The environment a worker process needs to see the same database, files and Redis."""
    return {
        **os.environ,
        "REDIS_URL": app.config["REDIS_URL"],
        "DATABASE_URL": app.config["DATABASE_URL"],
        "SMILEPASS_INSTANCE": app.instance_path,
        "SMILEPASS_UPLOAD_DIR": app.config["UPLOAD_DIR"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "SMTP_HOST": app.config["SMTP_HOST"],
        "SMTP_PORT": str(app.config["SMTP_PORT"]),
        # The file storage (empty: the upload folder above; else a bucket of the test's S3 server).
        "SMILEPASS_STORAGE_URL": app.config.get("STORAGE_URL", ""),
        "SMILEPASS_S3_ENDPOINT": app.config.get("S3_ENDPOINT_URL", ""),
        "SMILEPASS_S3_REGION": app.config.get("S3_REGION", ""),
        "SMILEPASS_S3_ACCESS_KEY_ID": app.config.get("S3_ACCESS_KEY_ID", ""),
        "SMILEPASS_S3_SECRET_ACCESS_KEY": app.config.get("S3_SECRET_ACCESS_KEY", ""),
        # A web server or worker started by a test follows the test's two-factor policy: off unless the
        # test turned it on (app_config {"TWOFA_POLICY_OFF": False}).
        **({"SMILEPASS_2FA_DEFAULT_POLICY": "none"} if app.config.get("TWOFA_POLICY_OFF") else {}),
    }


def run_worker(app, timeout=120):
    """One real RQ worker process in burst mode: it works what is queued, then exits. When the test
    fixed the clock (time-machine), the worker starts at the test's "now" as well."""
    command = ["-m", "workers.worker", "--burst"]
    if time_machine.escape_hatch.is_travelling():
        command = ["-m", "tests.worker_at", dt.datetime.now(dt.UTC).isoformat(), "--burst"]
    return subprocess.run([sys.executable, *command], cwd=ROOT, env=worker_env(app),
                          capture_output=True, text=True, timeout=timeout)


def stop_worker(process, timeout=120) -> None:
    """SIGTERM, as systemd or Ctrl-C stops a worker: rq finishes the job in hand, then exits. The wait is
    generous because a loaded 2-core machine can take tens of seconds for that; a worker that still
    does not stop is killed, so it cannot take the next test's jobs."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@pytest.fixture
def pg_client_tools():
    """The PostgreSQL pass of a backup or restore test needs pg_dump and pg_restore on PATH."""
    if PG_URL and not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        part_missing("pg_dump/pg_restore are not installed (make test installs postgresql-client)")


@pytest.fixture
def redis_conn(redis_url):
    from redis import Redis

    conn = Redis.from_url(redis_url)
    try:
        conn.ping()
    except Exception as exc:  # make test starts Redis; a bare pytest run may not have one
        part_missing(f"Redis is not reachable at {redis_url}: {exc}")
    conn.flushdb()
    yield conn
    conn.flushdb()


# Browser fixtures (Playwright driving Debian's Chromium), shared by every browser test module.
from .browser_support import (  # noqa: E402
    TIMEOUT_MS,
    VIEWPORT,
    LiveServer,
    PageProblems,
    chromium_missing_reason,
    htmx_missing_reason,
    launch_chromium,
)


@pytest.fixture(scope="session")
def playwright_driver():
    """One Playwright per process: a second sync_playwright() in the same process fails ("Sync API inside
    the asyncio loop"), so browsers of other settings (test_browser_viewer.py) launch from this one too."""
    require(chromium_missing_reason())
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    yield playwright
    playwright.stop()


@pytest.fixture(scope="session")
def chromium(playwright_driver):
    browser = launch_chromium(playwright_driver)
    yield browser
    browser.close()


@pytest.fixture
def live_server(app):
    require(htmx_missing_reason())
    server = LiveServer(app).start()
    yield server
    server.stop()


@pytest.fixture
def new_page(chromium, live_server):
    """Open a page in a fresh browser context (its own cookies: one signed-in person each).
    At the end, fails the test on script errors, CSP refusals or exceptions in the app."""
    contexts, watchers = [], []

    def open_page(javascript: bool = True, locale: str = "en-US", base_url: str | None = None):
        # English whatever the machine's locale (the assertions read the source language), unless a test
        # asks for another language through the browser's Accept-Language. base_url: another name for
        # the live server (WebAuthn needs a domain, not an address).
        context = chromium.new_context(viewport=VIEWPORT, java_script_enabled=javascript,
                                       base_url=base_url or live_server.url, locale=locale)
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        watchers.append(PageProblems(page))
        return page

    yield open_page
    for context in contexts:
        context.close()
    problems = [item for watcher in watchers for item in watcher.items]
    assert not problems, "the browser reported problems:\n" + "\n".join(problems)
    assert not live_server.errors, f"the app raised: {live_server.errors!r}"

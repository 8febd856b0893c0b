"""A busy database never loses a request: writes wait for SQLite's lock (BEGIN IMMEDIATE, up to the busy
timeout) instead of failing at once, and a lock held past the timeout answers 503 with Retry-After and
everything typed kept, never a 500. The load test with gunicorn is in test_write_load.py."""
import datetime as dt
import io
import sqlite3
import threading
from pathlib import Path

import peewee
import pytest
from PIL import Image

from smilepass import db
from smilepass.db import database
from smilepass.models import ContactRequest, Holiday, Message, Ticket

from .conftest import PASSWORD, _empty_postgres, query

# How long the other writer holds the lock in the "waits" test: well inside the default 5 s timeout.
HOLD_SECONDS = 3


@pytest.fixture
def database_url(request, tmp_path, pg_ready):
    """The run's database, or SQLite whatever the run, for tests parametrized with "sqlite": SQLite's
    lock and busy timeout are what they test."""
    if getattr(request, "param", None) == "sqlite" or not pg_ready:
        return f"sqlite:///{tmp_path / 'smilepass.db'}"
    _empty_postgres(pg_ready)
    return pg_ready


@pytest.fixture
def app_config(request):
    # Short, so that the "held past the timeout" tests wait little (the default is 5 s).
    return getattr(request, "param", {"SQLITE_BUSY_TIMEOUT_MS": 300})


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 90, 200)).save(out, "PNG")
    return out.getvalue()


def new_request(browser, htmx=False, **fields):
    data = {"title": "Aligner tray cracked", "description": "Upper tray 7 cracked at the molar.", "priority": "1",
            "category": "Scan & File Validation", "image": (io.BytesIO(png()), "tray.png"), **fields}
    return browser.post("/support/tickets", data, htmx=htmx, content_type="multipart/form-data")


class LockHolder(threading.Thread):
    """Another connection that takes the write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: an exclusive
    lock on the ticket table, which new requests insert into) and holds it until `release` is set."""

    def __init__(self, url: str, release: threading.Event):
        super().__init__(daemon=True)
        self.url, self.release, self.holding, self.error = url, release, threading.Event(), None

    def run(self):
        try:
            if self.url.startswith("sqlite"):
                conn = sqlite3.connect(self.url.split("sqlite:///", 1)[1], isolation_level=None)
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO holiday (date, name) VALUES ('2001-01-01', 'lock holder')")
                self.holding.set()
                self.release.wait(60)
                conn.execute("COMMIT")
                conn.close()
            else:
                import psycopg2

                conn = psycopg2.connect(self.url)
                with conn.cursor() as cursor:
                    cursor.execute(f'LOCK TABLE "{Ticket._meta.table_name}" IN EXCLUSIVE MODE')
                    cursor.execute("INSERT INTO holiday (date, name) VALUES ('2001-01-01', 'lock holder')")
                    self.holding.set()
                    self.release.wait(60)
                conn.commit()
                conn.close()
        except Exception as exc:  # reported by the test
            self.error = exc
            self.holding.set()


def hold_lock(url: str, seconds: float | None):
    """Start a LockHolder; it lets go after `seconds`, or when the returned event is set."""
    release = threading.Event()
    holder = LockHolder(url, release)
    holder.start()
    assert holder.holding.wait(30) and holder.error is None, holder.error
    if seconds is not None:
        threading.Timer(seconds, release.set).start()
    return holder, release


@pytest.mark.parametrize("app_config", [{}], indirect=True)  # the default busy timeout (5 s)
def test_a_held_write_lock_delays_a_new_request_instead_of_failing_it(app, clinician):
    holder, _ = hold_lock(app.config["DATABASE_URL"], HOLD_SECONDS)
    # Sent while the other writer holds the lock: it waits for the lock and is stored.
    response = new_request(clinician)
    holder.join(30)
    assert response.status_code == 303, response.get_data(as_text=True)[-2000:]
    assert query(lambda: Ticket.select().where(Ticket.title == "Aligner tray cracked").count()) == 1
    # The holder's transaction committed too, before the request's (which waited for it).
    assert query(lambda: Holiday.select().where(Holiday.date == dt.date(2001, 1, 1)).count()) == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_lock_held_past_the_busy_timeout_answers_503_with_the_typed_form(app, clinician):
    holder, release = hold_lock(app.config["DATABASE_URL"], None)
    try:
        response = new_request(clinician, tried="Exported the scan again")
    finally:
        release.set()
        holder.join(30)
    html = response.get_data(as_text=True)
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert "The server is busy and could not save this just now" in html
    # Everything typed is in the form again; the file could not be kept, and the page says so.
    assert 'value="Aligner tray cracked"' in html and "Upper tray 7 cracked at the molar.</textarea>" in html
    assert "Exported the scan again</textarea>" in html
    assert "Attached files cannot be kept" in html
    assert query(lambda: Ticket.select().count()) == 0
    # The screenshot stored before the transaction went with it.
    assert not [path for path in Path(app.config["UPLOAD_DIR"]).iterdir() if path.is_file()]
    # Sent again once the lock is free, it is stored (once).
    assert new_request(clinician).status_code == 303
    assert query(lambda: Ticket.select().count()) == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_htmx_gets_the_busy_message_and_keeps_its_form(app, clinician):
    holder, release = hold_lock(app.config["DATABASE_URL"], None)
    try:
        response = new_request(clinician, htmx=True)
    finally:
        release.set()
        holder.join(30)
    html = response.get_data(as_text=True)
    assert response.status_code == 503 and response.headers["Retry-After"].isdigit()
    # Into the page's message area: the form in the page still holds what was typed, files included.
    assert response.headers["HX-Retarget"] == "#flash"
    assert "Your entries are still in the form" in html and "<html" not in html
    assert query(lambda: Ticket.select().count()) == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_busy_reply_comes_back_with_its_text(app, clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    holder, release = hold_lock(app.config["DATABASE_URL"], None)
    try:
        response = clinician.post(f"/support/tickets/{ticket_id}/replies", {"body": "Tray 8 is cracked as well."},
                                  content_type="multipart/form-data")
    finally:
        release.set()
        holder.join(30)
    html = response.get_data(as_text=True)
    assert response.status_code == 503 and "Tray 8 is cracked as well.</textarea>" in html
    assert "The server is busy" in html
    assert query(lambda: Message.select().where(Message.body == "Tray 8 is cracked as well.").count()) == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_any_other_form_gets_a_page_that_sends_it_again(app, client):
    client.get("/contact")
    fields = {"name": "Ada Lovelace", "email": "ada@clinic.test", "topic": "billing",
              "message": "Invoice 4411 charged twice.\nPlease check."}
    holder, release = hold_lock(app.config["DATABASE_URL"], None)
    try:
        response = client.post("/contact", fields)
    finally:
        release.set()
        holder.join(30)
    html = response.get_data(as_text=True)
    assert response.status_code == 503 and response.headers["Retry-After"].isdigit()
    assert "The server is busy" in html and "Send again" in html
    # What was typed, shown and in hidden fields that go back to the same address (escaped, as typed).
    assert 'action="/contact"' in html
    assert 'name="message" value="Invoice 4411 charged twice.\nPlease check."' in html
    assert "<dd>Ada Lovelace</dd>" in html
    assert "Attached files" not in html
    assert query(lambda: ContactRequest.select().count()) == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_busy_is_told_apart_from_other_database_errors(app):
    """Only "database is locked" becomes DatabaseBusy; any other error stays what it is."""
    with database.connection_context():
        with pytest.raises(peewee.OperationalError) as raised:
            database.execute_sql("SELECT * FROM no_such_table")
        assert not isinstance(raised.value, db.DatabaseBusy)
        holder, release = hold_lock(app.config["DATABASE_URL"], None)
        try:
            with pytest.raises(db.DatabaseBusy):
                with database.atomic():
                    Holiday.create(date=dt.date(2002, 2, 2), name="never")
        finally:
            release.set()
            holder.join(30)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_busy_sign_in_keeps_the_address_but_never_echoes_the_password(app, client, make_user):
    make_user("dr.eve@clinic.test")
    client.get("/auth/login")
    holder, release = hold_lock(app.config["DATABASE_URL"], None)
    try:
        response = client.post("/auth/login", {"email": "dr.eve@clinic.test", "password": PASSWORD})
    finally:
        release.set()
        holder.join(30)
    html = response.get_data(as_text=True)
    assert response.status_code == 503
    assert 'name="email" value="dr.eve@clinic.test"' in html
    assert PASSWORD not in html and 'type="password"' in html and 'name="password"' in html


@pytest.mark.parametrize("app_config", [{"DB_POOL_SIZE": 2, "DB_POOL_WAIT_SECONDS": 0.3}], indirect=True)
def test_every_pooled_connection_taken_answers_busy_not_500(app, clinician, pg_ready):
    """PostgreSQL: a process's pool has DB_POOL_SIZE connections; a request that finds them all in use
    (gthread runs many requests at once) waits up to DB_POOL_WAIT_SECONDS, then gets the busy answer."""
    if not pg_ready:
        pytest.skip("the connection pool is PostgreSQL's (this test runs in the PostgreSQL pass)")
    database.close()  # the test thread's own connection back to the pool
    release, taken = threading.Event(), []

    def hold():
        database.connect(reuse_if_open=True)
        taken.append(1)
        release.wait(30)
        database.close()

    holders = [threading.Thread(target=hold, daemon=True) for _ in range(2)]
    for holder in holders:
        holder.start()
    try:
        while len(taken) < 2:
            release.wait(0.01)
        response = new_request(clinician, tried="Exported the scan again")
    finally:
        release.set()
        for holder in holders:
            holder.join(30)
    html = response.get_data(as_text=True)
    assert response.status_code == 503, html[-2000:]
    assert "The server is busy and could not save this just now" in html
    # Before any view ran: the page that sends what was typed again with one button.
    assert 'name="tried" value="Exported the scan again"' in html and "Send again" in html
    # With a connection free again, the same request is stored.
    assert new_request(clinician).status_code == 303
    assert query(lambda: Ticket.select().count()) == 1

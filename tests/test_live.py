"""Live ticket pages (issue 15 §2): what changed is published on Redis once committed, heard through the
SSE stream with the viewer's rights, fetched as page parts; replies and status changes sent after
something else arrived are answered 409 with what arrived; two status changes at once never lose one
silently. Real Redis pub/sub, the real stream generator over the app, a real gunicorn (gthread) where
a stream must not hold the worker."""
import datetime as dt
import http.client
import signal
import subprocess
import time
import urllib.parse

import pytest
import time_machine

from smilepass.live import events, stream
from smilepass.models import Message, Scan, Status, StatusChange, Ticket, User
from smilepass.scans import repair
from smilepass.staff import assignment
from smilepass.support import tickets

from .conftest import ROOT, Browser, free_port, query, worker_env
from .test_write_load import Client

# Only there so that a broken stream fails instead of hanging: a stream in these tests ends on its own.
STREAM_SECONDS = 3


@pytest.fixture
def app_config():
    return {"LIVE_STREAM_SECONDS": STREAM_SECONDS, "LIVE_PING_SECONDS": 1}


def listen(redis_conn, app, ticket_id, staff):
    pubsub = redis_conn.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(events.ticket_channel(app.config["REDIS_URL"], ticket_id, staff=staff))
    return pubsub


def heard(pubsub, wait=1.0) -> list[str]:
    """Every message published so far (listens until `wait` seconds passed without one)."""
    kinds = []
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < wait:
        message = pubsub.get_message(timeout=0.1)
        if message and message["type"] == "message":
            kinds.append(message["data"].decode())
            quiet_since = time.monotonic()
    return kinds


def stream_events(browser, ticket_id) -> tuple[int, list[str]]:
    """Open the stream (subscribed when this returns), then read it to its end: the event names."""
    response = browser.client.get(f"/live/tickets/{ticket_id}/events")
    return response.status_code, response


def read_events(response) -> list[str]:
    text = b"".join(response.response).decode()
    return [line.removeprefix("event: ") for line in text.splitlines() if line.startswith("event: ")]


def reply(browser, ticket_id, body, **extra):
    return browser.post(f"/support/tickets/{ticket_id}/replies", {"body": body, **extra},
                        content_type="multipart/form-data")


def test_a_reply_is_published_to_both_channels_after_it_is_committed(app, redis_conn, clinician, support,
                                                                    new_ticket):
    ticket_id = new_ticket(clinician)
    public, staff = listen(redis_conn, app, ticket_id, False), listen(redis_conn, app, ticket_id, True)
    assert reply(support, ticket_id, "We are looking at it.").status_code == 303
    # The first staff reply also moves Open → In Progress.
    assert sorted(heard(public)) == ["status", "thread"]
    assert sorted(heard(staff)) == ["status", "thread"]
    # A refused reply (empty) changed nothing and says nothing.
    assert reply(support, ticket_id, "").status_code == 422
    assert heard(public, 0.5) == [] and heard(staff, 0.5) == []


def test_an_internal_note_goes_to_the_staff_channel_only(app, redis_conn, clinician, support, new_ticket):
    ticket_id = new_ticket(clinician)
    public, staff = listen(redis_conn, app, ticket_id, False), listen(redis_conn, app, ticket_id, True)
    assert reply(support, ticket_id, "Patient's scan looks cropped.", internal="y").status_code == 303
    assert heard(staff) == ["thread"]
    assert heard(public, 0.5) == []


def test_the_stream_tells_the_clinician_of_a_staff_reply(app, redis_conn, clinician, support, new_ticket):
    ticket_id = new_ticket(clinician)
    status, response = stream_events(clinician, ticket_id)
    assert status == 200 and response.mimetype == "text/event-stream"
    assert reply(support, ticket_id, "We are looking at it.").status_code == 303
    names = read_events(response)
    assert "thread" in names and "status" in names and "ping" in names


def test_the_clinicians_stream_never_mentions_an_internal_note(app, redis_conn, clinician, support, new_ticket):
    ticket_id = new_ticket(clinician)
    _, clinician_stream = stream_events(clinician, ticket_id)
    _, staff_stream = stream_events(support, ticket_id)
    assert reply(support, ticket_id, "Between us: refund likely.", internal="y").status_code == 303
    assert "thread" not in read_events(clinician_stream)
    assert "thread" in read_events(staff_stream)
    # Nor do the parts the page fetches show its text.
    part = clinician.get(f"/support/tickets/{ticket_id}/parts?kind=thread", htmx=True).get_data(as_text=True)
    assert 'id="thread"' in part and "refund likely" not in part
    assert "refund likely" in support.get(f"/support/tickets/{ticket_id}/parts?kind=thread",
                                          htmx=True).get_data(as_text=True)


def test_another_users_ticket_has_no_stream_and_no_parts(app, redis_conn, clinician, other_clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    assert other_clinician.get(f"/live/tickets/{ticket_id}/events").status_code == 404
    assert other_clinician.get(f"/support/tickets/{ticket_id}/parts?kind=thread", htmx=True).status_code == 404
    assert other_clinician.get(f"/support/tickets/{ticket_id}/parts?kind=poll&seen=0.0",
                               htmx=True).status_code == 404
    assert clinician.get(f"/support/tickets/{ticket_id}/parts?kind=nonsense", htmx=True).status_code == 404


def test_a_signed_out_stream_is_sent_to_sign_in(app, client, clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    response = client.get(f"/live/tickets/{ticket_id}/events", htmx=True)
    assert response.status_code == 401 and "/auth/login" in response.headers["HX-Redirect"]


def test_the_poll_shows_the_reload_notice_only_when_the_thread_moved(app, redis_conn, clinician, support,
                                                                     new_ticket):
    ticket_id = new_ticket(clinician)
    page = clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "kind=poll&amp;seen=0.0" in page
    poll = f"/support/tickets/{ticket_id}/parts?kind=poll&seen=0.0"
    assert "Reload" not in clinician.get(poll, htmx=True).get_data(as_text=True)
    reply(support, ticket_id, "Internal only.", internal="y")
    assert "Reload" not in clinician.get(poll, htmx=True).get_data(as_text=True)  # a note is no news to her
    reply(support, ticket_id, "Public answer.")
    assert "Reload" in clinician.get(poll, htmx=True).get_data(as_text=True)
    # Parts fetched through the stream move the poll's version along.
    parts = clinician.get(f"/support/tickets/{ticket_id}/parts?kind=thread", htmx=True).get_data(as_text=True)
    assert 'id="live-poll"' in parts and "Public answer." in parts and "seen=0.0" not in parts


class TestRedisDown:
    @pytest.fixture
    def app_config(self):
        return {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}

    def test_no_stream_but_the_page_and_replies_still_work(self, app, clinician, support, new_ticket):
        ticket_id = new_ticket(clinician)
        assert clinician.get(f"/live/tickets/{ticket_id}/events").status_code == 204
        assert reply(support, ticket_id, "Saved even without Redis.").status_code == 303
        page = clinician.get(f"/support/tickets/{ticket_id}")
        assert page.status_code == 200 and "Saved even without Redis." in page.get_data(as_text=True)


class TestStreamCap:
    @pytest.fixture
    def app_config(self):
        return {"LIVE_STREAM_SECONDS": 1, "LIVE_PING_SECONDS": 1, "LIVE_MAX_STREAMS": 1}

    def test_streams_beyond_the_cap_get_204_until_one_ends(self, app, redis_conn, clinician, new_ticket):
        ticket_id = new_ticket(clinician)
        status, first = stream_events(clinician, ticket_id)
        assert status == 200
        assert stream_events(clinician, ticket_id)[0] == 204  # this page polls instead
        read_events(first)  # the first stream ends (its lifetime is over): its thread is free again
        status, third = stream_events(clinician, ticket_id)
        assert status == 200
        read_events(third)


def test_a_reply_after_news_is_answered_409_with_the_text_kept_and_sent_anyway(app, redis_conn, clinician,
                                                                              support, new_ticket):
    ticket_id = new_ticket(clinician)
    page = clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert 'name="seen" value="0.0"' in page
    assert reply(support, ticket_id, "Please send the lower arch too.").status_code == 303

    typed = "The scan was taken on Tuesday."
    response = reply(clinician, ticket_id, typed, seen="0.0")
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "While you were writing, this arrived" in html and "Please send the lower arch too." in html
    assert typed in html and 'name="confirm"' in html
    assert query(lambda: Message.select().where(Message.body == typed).count()) == 0

    # htmx: the conversation block with the prompt.
    fragment = reply(clinician, ticket_id, typed, seen="0.0", headers={"HX-Request": "true"})
    assert fragment.status_code == 409 and typed in fragment.get_data(as_text=True)

    # Send anyway.
    assert reply(clinician, ticket_id, typed, seen="0.0", confirm="1").status_code == 303
    assert query(lambda: Message.select().where(Message.body == typed).count()) == 1


def test_a_reply_with_nothing_new_goes_straight_through(app, redis_conn, clinician, support, new_ticket):
    ticket_id = new_ticket(clinician)
    reply(support, ticket_id, "Internal thought.", internal="y")  # not news for the clinician
    assert reply(clinician, ticket_id, "Any update?", seen="0.0").status_code == 303


def status_post(browser, ticket_id, target: Status, **extra):
    return browser.post(f"/support/tickets/{ticket_id}/status", {"status": str(target.value), **extra})


def test_two_staff_changing_the_status_at_once_the_later_one_is_told(app, redis_conn, clinician, support,
                                                                     browser_for, new_ticket):
    kim = browser_for("kim@smilepass.test", "support")
    ticket_id = new_ticket(clinician)
    # Both loaded the page while the ticket was Open (version 0.0).
    seen = {"from_status": str(Status.OPEN.value), "seen": "0.0"}
    assert status_post(support, ticket_id, Status.WAITING, **seen).status_code == 303
    response = status_post(kim, ticket_id, Status.RESOLVED, **seen)
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "Meanwhile Sam moved this ticket to Waiting on user. Nothing was changed." in html
    assert query(lambda: Ticket.get_by_id(ticket_id).status) == Status.WAITING.value
    assert query(lambda: StatusChange.select().where(StatusChange.ticket == ticket_id).count()) == 1
    # Knowing it now (the page shows the new status), Kim can move it.
    assert status_post(kim, ticket_id, Status.RESOLVED, from_status=str(Status.WAITING.value)).status_code == 303
    assert query(lambda: Ticket.get_by_id(ticket_id).status) == Status.RESOLVED.value


def test_the_compare_and_set_holds_for_a_stale_ticket_object(app, clinician, support, new_ticket):
    """The rule itself: a ticket read before someone else's move cannot overwrite it."""
    ticket_id = new_ticket(clinician)
    with app.app_context():
        stale = Ticket.get_by_id(ticket_id)
        fresh = Ticket.get_by_id(ticket_id)
        sam = User.get(User.email == "sam@smilepass.test")
        tickets.change_status(fresh, sam, Status.WAITING)
        with pytest.raises(tickets.StatusConflict):
            tickets.change_status(stale, sam, Status.RESOLVED)
        assert Ticket.get_by_id(ticket_id).status == Status.WAITING.value


def test_a_status_change_after_a_new_reply_asks_first(app, redis_conn, clinician, support, new_ticket):
    ticket_id = new_ticket(clinician)
    reply(support, ticket_id, "Could you check the fit?")  # Open → In Progress; the page saw 1 reply, 1 change
    version = query(lambda: f"{Message.select().first().id}.{StatusChange.select().first().id}")
    reply(clinician, ticket_id, "It fits now, thanks.", seen=version)
    response = status_post(support, ticket_id, Status.RESOLVED, from_status=str(Status.IN_PROGRESS.value),
                           seen=version)
    html = response.get_data(as_text=True)
    assert response.status_code == 409 and "It fits now, thanks." in html and "Move anyway" in html
    assert query(lambda: Ticket.get_by_id(ticket_id).status) == Status.IN_PROGRESS.value
    assert status_post(support, ticket_id, Status.RESOLVED, from_status=str(Status.IN_PROGRESS.value),
                       seen=version, confirm="1").status_code == 303
    assert query(lambda: Ticket.get_by_id(ticket_id).status) == Status.RESOLVED.value


def test_a_reply_does_not_write_back_a_status_it_read_before_someone_moved_it(app, clinician, support,
                                                                              new_ticket):
    """Saves write only what changed: a reply sent with a stale ticket keeps another's status move."""
    ticket_id = new_ticket(clinician)
    with app.app_context():
        stale = Ticket.get_by_id(ticket_id)
        sam = User.get(User.email == "sam@smilepass.test")
        tickets.change_status(Ticket.get_by_id(ticket_id), sam, Status.WAITING)
        tickets.add_reply(stale, stale.requester, "Here is the photo.")
        assert Ticket.get_by_id(ticket_id).status == Status.WAITING.value


def test_the_unread_count_is_published_to_the_users_channel(app, redis_conn, clinician, support, new_ticket):
    ticket_id = new_ticket(clinician)
    ada = query(lambda: Ticket.get_by_id(ticket_id).requester_id)
    pubsub = redis_conn.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(events.user_channel(app.config["REDIS_URL"], ada))
    reply(support, ticket_id, "Replacement aligner is on its way.")
    assert "inbox" in heard(pubsub)
    part = clinician.get(f"/support/tickets/{ticket_id}/parts?kind=inbox", htmx=True).get_data(as_text=True)
    assert 'id="inbox-link"' in part and "unread-count" in part


def test_a_scan_changing_state_in_the_worker_is_published(app, redis_conn, clinician, new_ticket):
    """The repair job runs without a request: its state change goes out at once (after its write)."""
    ticket_id = new_ticket(clinician)
    public = listen(redis_conn, app, ticket_id, False)
    with app.app_context():
        ticket = Ticket.get_by_id(ticket_id)
        scan = Scan.create(ticket=ticket_id, uploader=ticket.requester_id, original_name="upper.stl",
                           stored_name="x" * 32, size=84, sha256="0" * 64, file_format="stl", triangles=1)
        repair.fail(scan.id, scan.run, "The file is not a mesh.")
        repair._update(scan.id, scan.run, progress=0.5)  # progress alone: the panel's own poll shows it
    assert heard(public) == ["scans"]


def test_presence_and_assignment_reach_staff_pages_only(app, redis_conn, clinician, support, new_ticket):
    ticket_id = new_ticket(clinician)
    public, staff = listen(redis_conn, app, ticket_id, False), listen(redis_conn, app, ticket_id, True)
    url = f"/queue/tickets/{ticket_id}/presence"
    support.get(f"/support/tickets/{ticket_id}")
    assert support.post(url + "?focus=1", {}, htmx=True).status_code == 200
    assert support.post(url, {"body": "Still typing"}, htmx=True).status_code == 200  # no news: not sent again
    assert support.post(url, {"body": ""}, htmx=True).status_code == 200  # stopped replying
    assert heard(staff) == ["presence", "presence"]
    with app.app_context():
        sam = User.get(User.email == "sam@smilepass.test")
        assignment.assign(Ticket.get_by_id(ticket_id), sam, sam)
    assert heard(staff) == ["assignment"]
    assert heard(public, 0.5) == []


def test_channel_names_carry_the_redis_database():
    assert events.ticket_channel("redis://h:6379/3", 7) == "live:3:ticket:7"
    assert events.ticket_channel("redis://h:6379/3", 7, staff=True) == "live:3:ticket:7:staff"
    assert events.user_channel("redis://h:6379", 9) == "live:0:user:9"


class FakePubSub:
    """Stands in for Redis only to drive the frame loop on a fixed clock (the real pub/sub is tested above)."""

    def __init__(self, clock):
        self.clock, self.closed = clock, False

    def get_message(self, ignore_subscribe_messages, timeout):
        self.clock.now += timeout
        return None

    def close(self):
        self.closed = True


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_the_stream_pings_and_ends_after_its_lifetime():
    clock = Clock()
    pubsub = FakePubSub(clock)
    frames = list(stream.events(pubsub, lifetime=300, ping=10, clock=clock))
    assert frames[0].startswith("retry: ")
    assert frames.count(stream.frame("ping")) == 29  # at 10, 20 … 290 s; the stream ends at 300 s
    assert pubsub.closed


# A real gunicorn: open streams must not hold the worker the rest of the site needs --------------------

def start_gunicorn(app, port, log, *args):
    with open(log, "wb") as out:
        env = {**worker_env(app), "SMILEPASS_LIVE_STREAM_SECONDS": "60"}
        process = subprocess.Popen([str(ROOT / ".venv" / "bin" / "gunicorn"), "--no-control-socket", *args,
                                    "--bind", f"127.0.0.1:{port}", "app:app"], cwd=ROOT, env=env, stdout=out,
                                   stderr=out, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"gunicorn exited: {log.read_text()[-3000:]}"
        try:
            if Client(port).send("GET", "/healthz")[0] == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"gunicorn did not answer: {log.read_text()[-3000:]}")


def open_stream(port, cookie, ticket_id):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", f"/live/tickets/{ticket_id}/events", headers={"Cookie": cookie})
    response = conn.getresponse()
    assert response.status == 200
    assert response.readline().startswith(b"retry:")  # the first frame came through at once
    return conn, response


def test_gthread_gunicorn_serves_pages_and_events_while_streams_are_open(app, make_user, redis_conn, tmp_path):
    make_user("dr.ada@clinic.test")
    make_user("sam@smilepass.test", "support")
    port = free_port()
    # The way scripts/run.sh and the systemd unit start it: one worker with threads.
    server = start_gunicorn(app, port, tmp_path / "gunicorn.log", "--workers", "1", "--worker-class", "gthread",
                            "--threads", "8")
    streams = []
    try:
        ada, sam = Client(port), Client(port)
        ada.sign_in("dr.ada@clinic.test")
        sam.sign_in("sam@smilepass.test")
        token = ada.token("/support/")
        form = urllib.parse.urlencode({"title": "Tray cracked", "description": "Upper tray 4 cracked.",
                                       "priority": "1", "category": "Warranty & Replacement", "csrf_token": token})
        status, _ = ada.send("POST", "/support/tickets", form.encode(), "application/x-www-form-urlencoded")
        assert status == 303
        ticket_id = query(lambda: Ticket.select().first().id)
        streams = [open_stream(port, ada.cookie, ticket_id) for _ in range(3)]
        # With three streams open on the one worker, pages are still served …
        assert ada.send("GET", "/support/")[0] == 200
        # … and a staff reply reaches every open stream.
        token = sam.token(f"/support/tickets/{ticket_id}")
        form = urllib.parse.urlencode({"body": "A new tray is on its way.", "csrf_token": token})
        status, _ = sam.send("POST", f"/support/tickets/{ticket_id}/replies", form.encode(),
                             "application/x-www-form-urlencoded")
        assert status == 303
        for _, response in streams:
            seen = set()
            while not {"event: thread", "event: status"} <= seen:
                seen.add(response.readline().decode().strip())
    finally:
        for conn, _ in streams:
            conn.close()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def test_an_open_live_page_does_not_keep_an_idle_session_alive(app, make_user, redis_conn):
    """The page's own polls and parts are not the user's activity: after the idle limit (30 minutes)
    without a click the session ends, and the next poll sends the page to sign-in."""
    make_user("dr.ada@clinic.test")
    with time_machine.travel(dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC), tick=False) as clock:
        ada = Browser(app)
        ada.login("dr.ada@clinic.test")
        response = ada.post("/support/tickets", {"title": "Tray cracked", "description": "Tray 4 cracked.",
                                                 "priority": "1", "category": "Warranty & Replacement"},
                            content_type="multipart/form-data")
        ticket_id = int(response.headers["Location"].rsplit("created=", 1)[1])
        poll = f"/support/tickets/{ticket_id}/parts?kind=poll&seen=0.0"
        for _ in range(6):  # 24 minutes of the page polling by itself
            clock.shift(dt.timedelta(minutes=4))
            assert ada.get(poll, htmx=True).status_code == 200
            assert ada.get(f"/support/tickets/{ticket_id}/parts?kind=thread", htmx=True).status_code == 200
        clock.shift(dt.timedelta(minutes=7))  # 31 minutes since the last thing Ada did
        response = ada.get(poll, htmx=True)
        assert response.status_code == 401 and "/auth/login" in response.headers["HX-Redirect"]

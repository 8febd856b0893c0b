"""The notice that another staff member is replying: recorded in Redis with a short expiry, shown
to other staff only, and never a reason for an error page."""
import time

import pytest

from smilepass.models import User
from smilepass.staff import presence

from .conftest import query

NOTICE = "is replying to this ticket"


@pytest.fixture
def kim(browser_for):
    return browser_for("kim@smilepass.test", "support")


def test_other_staff_see_who_is_replying(app, redis_conn, support, kim, clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    url = f"/queue/tickets/{ticket_id}/presence"
    assert NOTICE not in kim.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)

    # Sam focuses the reply box: Sam sees no notice about himself.
    response = support.post(url + "?focus=1", {}, htmx=True)
    assert response.status_code == 200 and NOTICE not in response.get_data(as_text=True)
    assert NOTICE not in support.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)

    # Kim sees it on page load (no JS needed) and in the polled fragment.
    assert f"Sam {NOTICE}" in kim.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    fragment = kim.post(url, {"body": ""}, htmx=True).get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="presence"') and f"Sam {NOTICE}" in fragment

    # Kim drafts too: both are named, each only sees the other.
    kim.post(url, {"body": "I'll take this"}, htmx=True)
    assert f"Kim {NOTICE}" in support.post(url, {"body": "Draft"}, htmx=True).get_data(as_text=True)

    # Sam sends his reply (the poll comes with an empty box): the notice goes for Kim.
    support.post(url, {"body": ""}, htmx=True)
    assert NOTICE not in kim.post(url, {"body": "still typing"}, htmx=True).get_data(as_text=True)


def expire_now(redis_conn, key: str) -> None:
    """What the TTL does when it runs out, without waiting for it (a loaded machine can take longer than a
    short TTL between two requests): the key gets 1 ms left, and we wait until Redis has dropped it."""
    redis_conn.pexpire(key, 1)
    for _ in range(500):
        if not redis_conn.exists(key):
            return
        time.sleep(0.01)
    raise AssertionError(f"{key} did not expire")


def test_presence_expires(app, redis_conn, support, kim, clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    support.post(f"/queue/tickets/{ticket_id}/presence?focus=1", {}, htmx=True)
    assert f"Sam {NOTICE}" in kim.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    # The mark carries the configured expiry.
    sam_id = query(lambda: User.get(User.email == "sam@smilepass.test").id)
    sam_key = f"presence:ticket:{ticket_id}:{sam_id}"
    assert 0 < redis_conn.pttl(sam_key) <= presence.TTL_SECONDS * 1000
    expire_now(redis_conn, sam_key)
    assert NOTICE not in kim.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    # The per-ticket list is cleaned up as it is read.
    assert redis_conn.smembers(f"presence:ticket:{ticket_id}") == set()


def test_module_ttl(redis_conn, make_user):
    sam = make_user("sam2@smilepass.test", "support")
    kim = make_user("kim2@smilepass.test", "support")
    presence.mark_replying(redis_conn, 7, sam, ttl=30)
    presence.mark_replying(redis_conn, 7, kim, ttl=60)
    assert 0 < redis_conn.pttl(f"presence:ticket:7:{sam.id}") <= 30_000
    assert 30_000 < redis_conn.pttl(f"presence:ticket:7:{kim.id}") <= 60_000
    assert presence.replying(redis_conn, 7) == ["Kim2", "Sam2"]
    assert presence.replying(redis_conn, 7, exclude_user_id=kim.id) == ["Sam2"]
    expire_now(redis_conn, f"presence:ticket:7:{sam.id}")
    assert presence.replying(redis_conn, 7) == ["Kim2"]
    assert presence.replying(redis_conn, 8) == []


def test_clinicians_never_see_presence(app, redis_conn, support, clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    support.post(f"/queue/tickets/{ticket_id}/presence?focus=1", {}, htmx=True)
    page = clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert NOTICE not in page and "/presence" not in page
    assert clinician.post(f"/queue/tickets/{ticket_id}/presence?focus=1", {}, htmx=True).status_code == 404


def test_presence_needs_csrf(redis_conn, support, clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    response = support.post(f"/queue/tickets/{ticket_id}/presence?focus=1", {}, htmx=True, csrf=False)
    assert response.status_code == 400


def test_redis_down_no_notice_no_error(app, support, clinician, new_ticket):
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    ticket_id = new_ticket(clinician)
    page = support.get(f"/support/tickets/{ticket_id}")
    assert page.status_code == 200 and NOTICE not in page.get_data(as_text=True)
    response = support.post(f"/queue/tickets/{ticket_id}/presence?focus=1", {}, htmx=True)
    assert response.status_code == 200 and NOTICE not in response.get_data(as_text=True)
    assert support.post(f"/queue/tickets/{ticket_id}/presence", {}).status_code == 303
    assert query(lambda: User.select().count()) == 2

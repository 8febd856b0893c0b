"""Telling open pages that something changed. Rules call `changed()` / `inbox_changed()` inside their
transaction; nothing is published until no transaction is open any more, so a page never fetches a
state that is not committed yet. A web request sends after its response (`after_request` in views.py)
and drops what it queued when the request failed. Without a request (an RQ job, a CLI command) the
rules call `send()` after their transaction, as they call `hand_over()` for mail; what a rolled-back
transaction queued there goes out with the next send, which costs an open page one needless refresh.

Messages carry no text, only which part of the page changed (THREAD, STATUS, ...): the page then
fetches that part with the viewer's own rights, so a channel can never leak what a viewer may not see.
Staff-only changes (internal notes) go to the ticket's staff channel only.

Redis being down costs nothing but the live update: publishing never raises."""
import logging
import threading

from flask import current_app, has_app_context, has_request_context
from redis.exceptions import RedisError

from ..db import database
from ..queue import redis_connection

log = logging.getLogger(__name__)

# What changed (the SSE event name; the page fetches the matching part).
THREAD = "thread"          # a reply or an internal note
STATUS = "status"          # the status (its change also shows in the thread)
ASSIGNMENT = "assignment"
ESCALATION = "escalation"
SCANS = "scans"            # a scan's repair progress
PRESENCE = "presence"      # "Sam is replying" (staff)
INBOX = "inbox"            # the header's unread count (per-user channel)
KINDS = (THREAD, STATUS, ASSIGNMENT, ESCALATION, SCANS, PRESENCE)

_pending = threading.local()


def _db_number(url: str) -> str:
    """The Redis database of url: pub/sub channels are server-wide, so the channel names carry it
    (two apps, or two test runs, on one Redis with different databases do not hear each other)."""
    path = url.split("?", 1)[0].rsplit("/", 1)
    return path[1] if len(path) == 2 and path[1].isdigit() else "0"


def ticket_channel(url: str, ticket_id: int, staff: bool = False) -> str:
    return f"live:{_db_number(url)}:ticket:{int(ticket_id)}" + (":staff" if staff else "")


def user_channel(url: str, user_id: int) -> str:
    return f"live:{_db_number(url)}:user:{int(user_id)}"


def _queue(channel_of, kind: str) -> None:
    items = getattr(_pending, "items", None)
    if items is None:
        items = _pending.items = []
    if (channel_of, kind) not in items:
        items.append((channel_of, kind))


def changed(ticket_id: int, kind: str, staff_only: bool = False) -> None:
    """Part `kind` of ticket `ticket_id` changed (staff_only: only staff may see what changed)."""
    if kind not in KINDS:
        raise ValueError(f"unknown live kind {kind!r}")
    _queue(("ticket", int(ticket_id), bool(staff_only)), kind)
    send()


def inbox_changed(user_id: int) -> None:
    """The user's unread count changed."""
    _queue(("user", int(user_id), False), INBOX)
    send()


def discard() -> None:
    """Forget what was queued (the request failed; its transaction was rolled back)."""
    _pending.items = []


def send(in_request: bool | None = None) -> int:
    """Publish what was queued, once no transaction is open any more; returns how many messages went
    out. Inside a web request this waits for the response (see views.after_request)."""
    if not has_app_context() or database.in_transaction():
        return 0
    if has_request_context() if in_request is None else in_request:
        return 0  # after_request sends it, or discards it when the request failed
    return flush()


def flush() -> int:
    items, _pending.items = getattr(_pending, "items", None) or [], []
    if not items:
        return 0
    url = current_app.config["REDIS_URL"]
    sent = 0
    try:
        conn = redis_connection(url)
        pipe = conn.pipeline(transaction=False)
        for (scope, ident, staff_only), kind in items:
            if scope == "user":
                pipe.publish(user_channel(url, ident), kind)
            else:
                pipe.publish(ticket_channel(url, ident, staff=True), kind)
                if not staff_only:
                    pipe.publish(ticket_channel(url, ident), kind)
            sent += 1
        pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("live: Redis unavailable, %d update(s) not sent: %s", len(items), exc)
        return 0
    return sent

"""/live/…: the event stream of a ticket page. Publishing after each successful request lives here too
(after_app_request), so every rule that calls events.changed() is covered without each view calling
send itself."""
import logging
import threading

from flask import Blueprint, Response, current_app
from flask_login import current_user, login_required
from redis.exceptions import RedisError

from ..auth.guards import visible_or_404
from ..db import database
from ..models import Ticket
from ..queue import redis_connection
from . import events, stream

bp = Blueprint("live", __name__, url_prefix="/live")
log = logging.getLogger(__name__)


class _Open:
    """How many streams this process holds open: each holds a gunicorn thread, and a worker whose
    threads are all streaming would leave every other request waiting in its queue."""

    def __init__(self):
        self.count, self.lock = 0, threading.Lock()

    def take(self, limit: int) -> bool:
        with self.lock:
            if self.count >= limit:
                return False
            self.count += 1
            return True

    def give_back(self) -> None:
        with self.lock:
            self.count -= 1


open_streams = _Open()


def _held(body):
    try:
        yield from body
    finally:
        open_streams.give_back()


@bp.after_app_request
def send_changes(response):
    """What the request changed goes out once its response is ready and every transaction committed;
    a failed request (4xx/5xx) changed nothing that was committed, so its messages are dropped."""
    if response.status_code >= 400:
        events.discard()
    elif not database.in_transaction():
        events.flush()
    return response


@bp.teardown_app_request
def forget_changes(exc):
    events.discard()  # an exception skipped after_request: its transaction was rolled back


@bp.get("/tickets/<int:ticket_id>/events")
@login_required
def ticket_events(ticket_id: int):
    """The ticket's changes as they happen, for whoever may see the ticket (another user's ticket is
    404). Staff hear the staff channel (internal notes too), clinicians the public one; both hear their
    own unread count. 204 when Redis is unreachable: EventSource stops and the page polls instead."""
    ticket = visible_or_404(Ticket, ticket_id)
    user = current_user._get_current_object()
    url = current_app.config["REDIS_URL"]
    channels = [events.ticket_channel(url, ticket.id, staff=user.is_staff), events.user_channel(url, user.id)]
    if not open_streams.take(current_app.config["LIVE_MAX_STREAMS"]):
        log.warning("live: %d streams open in this process, no more (the page polls)", open_streams.count)
        return Response(status=204)
    try:
        pubsub = redis_connection(url).pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(*channels)
    except (RedisError, OSError) as exc:
        open_streams.give_back()
        log.warning("live: Redis unavailable, no event stream: %s", exc)
        return Response(status=204)
    # The database is not needed while streaming: the request's teardown gives the connection back.
    body = stream.events(pubsub, lifetime=current_app.config["LIVE_STREAM_SECONDS"],
                         ping=current_app.config["LIVE_PING_SECONDS"])
    response = Response(_held(body), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # nginx and others: do not buffer this response
    return response

"""/live/…: the event stream of a ticket page. Publishing after each successful request lives here too
(after_app_request), so every rule that calls events.changed() is covered without each view calling
send itself."""
import logging

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
    try:
        pubsub = redis_connection(url).pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(*channels)
    except (RedisError, OSError) as exc:
        log.warning("live: Redis unavailable, no event stream: %s", exc)
        return Response(status=204)
    # The database is not needed while streaming: the request's teardown gives the connection back.
    body = stream.events(pubsub, lifetime=current_app.config["LIVE_STREAM_SECONDS"],
                         ping=current_app.config["LIVE_PING_SECONDS"])
    response = Response(body, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # nginx and others: do not buffer this response
    return response

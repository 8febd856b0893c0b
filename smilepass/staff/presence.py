"""Who is replying to a ticket right now, so two staff members do not answer the same clinician at
once. Kept in Redis only: it is worth nothing a minute later, and losing it (Redis down) must cost
no more than the notice.

One key per ticket and staff member (`presence:ticket:<id>:<user id>`, the name as value) expires
on its own; a set per ticket lists who might be there, so reading needs no key scan. Members whose
key has expired are dropped from the set when it is read."""
import logging

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError

from ..live import events as live
from ..models import User
from ..queue import redis_connection

TTL_SECONDS = 30  # the reply box polls every 10 s, so a closed page is forgotten within 30 s
log = logging.getLogger(__name__)


def _user_key(ticket_id: int, user_id: int) -> str:
    return f"presence:ticket:{ticket_id}:{user_id}"


def _set_key(ticket_id: int) -> str:
    return f"presence:ticket:{ticket_id}"


def mark_replying(conn: Redis, ticket_id: int, user: User, ttl: float = TTL_SECONDS) -> bool:
    """Returns whether this is news (the user was not marked as replying a moment ago)."""
    ttl_ms = max(int(ttl * 1000), 1)
    pipe = conn.pipeline()
    pipe.set(_user_key(ticket_id, user.id), user.display_name, px=ttl_ms, get=True)
    pipe.sadd(_set_key(ticket_id), user.id)
    pipe.pexpire(_set_key(ticket_id), ttl_ms)
    previous, _added, _ = pipe.execute()
    return previous is None


def clear(conn: Redis, ticket_id: int, user: User) -> bool:
    """Returns whether the user was marked as replying."""
    pipe = conn.pipeline()
    pipe.delete(_user_key(ticket_id, user.id))
    pipe.srem(_set_key(ticket_id), user.id)
    deleted, _ = pipe.execute()
    return bool(deleted)


def replying(conn: Redis, ticket_id: int, exclude_user_id: int | None = None) -> list[str]:
    """Names of the staff replying to this ticket now (other than exclude_user_id), sorted."""
    members = sorted(int(m) for m in conn.smembers(_set_key(ticket_id)))
    if not members:
        return []
    names = conn.mget([_user_key(ticket_id, m) for m in members])
    gone = [m for m, name in zip(members, names, strict=True) if name is None]
    if gone:
        conn.srem(_set_key(ticket_id), *gone)
    return sorted(
        name.decode() for m, name in zip(members, names, strict=True) if name is not None and m != exclude_user_id
    )


def _ttl() -> float:
    return current_app.config.get("PRESENCE_TTL_SECONDS", TTL_SECONDS)


def report(ticket_id: int, user: User, is_replying: bool) -> list[str]:
    """Record whether this staff member is replying and return who else is; [] when Redis is
    unreachable (the notice is a courtesy, never a reason for an error page)."""
    try:
        conn = redis_connection()
        news = mark_replying(conn, ticket_id, user, _ttl()) if is_replying else clear(conn, ticket_id, user)
        if news:
            live.changed(ticket_id, live.PRESENCE, staff_only=True)  # "Sam is replying" on other staff pages
        return replying(conn, ticket_id, exclude_user_id=user.id)
    except (RedisError, OSError) as exc:
        log.warning("presence: Redis unavailable: %s", exc)
        return []


def others_replying(ticket_id: int, user: User) -> list[str]:
    """For the ticket page as rendered: who else is replying (staff viewers only)."""
    if not user.is_staff:
        return []
    try:
        return replying(redis_connection(), ticket_id, exclude_user_id=user.id)
    except (RedisError, OSError) as exc:
        log.warning("presence: Redis unavailable: %s", exc)
        return []

"""The Server-Sent Events stream of one ticket page: the names of the parts that changed, a ping every
PING seconds (so proxies and the browser see the connection alive), and an end after LIFETIME seconds
(the browser reconnects at once; a gunicorn thread is never held for good by a forgotten tab)."""
import time
from collections.abc import Iterator

from redis.client import PubSub
from redis.exceptions import RedisError

PING_SECONDS = 10
LIFETIME_SECONDS = 300
# The longest single wait on Redis: below the connection's socket timeout (queue.redis_connection).
MAX_WAIT_SECONDS = 4.0
RETRY_MS = 2000  # how long the browser waits before it reconnects after the stream ended


def frame(event: str, data: str = "") -> str:
    return f"event: {event}\ndata: {data}\n\n"


def events(pubsub: PubSub, lifetime: float = LIFETIME_SECONDS, ping: float = PING_SECONDS,
           clock=time.monotonic) -> Iterator[str]:
    """SSE frames from the subscribed pubsub until lifetime has passed or Redis went away; closes it."""
    try:
        yield f"retry: {RETRY_MS}\n\n"
        start = clock()
        deadline = start + lifetime
        next_ping = start + ping
        while True:
            now = clock()
            if now >= deadline:
                return
            wait = max(0.0, min(next_ping, deadline, now + MAX_WAIT_SECONDS) - now)
            message = pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
            if message and message.get("type") == "message":
                kind = message["data"].decode() if isinstance(message["data"], bytes) else str(message["data"])
                yield frame(kind, kind)
            if deadline > clock() >= next_ping:
                yield frame("ping")
                next_ping += ping
    except (RedisError, OSError):
        return  # the browser reconnects and, with Redis still down, gets 204 and polls instead
    finally:
        pubsub.close()

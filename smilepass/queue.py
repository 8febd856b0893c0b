"""Redis and the RQ queues. Connections time out quickly so that a Redis outage costs a request a
second, not a hang."""
from flask import current_app
from redis import Redis
from rq import Queue

DEFAULT_QUEUE = "default"


def redis_connection(url: str | None = None) -> Redis:
    url = url or current_app.config["REDIS_URL"]
    return Redis.from_url(url, socket_connect_timeout=1, socket_timeout=5)


def get_queue(name: str = DEFAULT_QUEUE, url: str | None = None) -> Queue:
    return Queue(name, connection=redis_connection(url))

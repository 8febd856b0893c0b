"""Redis and the RQ queues. Connections time out quickly so that a Redis outage costs a request a
second, not a hang."""
import logging

from flask import current_app
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus

DEFAULT_QUEUE = "default"
SCAN_QUEUE = "scans"
# Every queue the app enqueues on, in the order a worker takes them (mail and sweeps first).
QUEUES = (DEFAULT_QUEUE, SCAN_QUEUE)
# Job meta keys read by the worker (workers/worker.py): the function it enqueues, with the job's arguments and
# the timeout, when it had to kill a work horse that ran past its timeout; and the timeout it records then.
ON_TIMEOUT = "on_timeout"
TIMED_OUT = "timed_out_after"
# A job in one of these states will still run: enqueueing it again would do the work twice.
PENDING = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}

log = logging.getLogger(__name__)


def redis_connection(url: str | None = None) -> Redis:
    url = url or current_app.config["REDIS_URL"]
    return Redis.from_url(url, socket_connect_timeout=1, socket_timeout=5)


def get_queue(name: str = DEFAULT_QUEUE, url: str | None = None) -> Queue:
    return Queue(name, connection=redis_connection(url))


def job_status(job_id: str, connection: Redis) -> JobStatus | None:
    if not connection.exists(Job.key_for(job_id)):
        return None
    return Job.fetch(job_id, connection=connection).get_status(refresh=False)


def enqueue_once(queue: Queue, func: str, *args, job_id: str, **options) -> bool:
    """Enqueue unless a job with this id is still pending: ids derive from the object, so retries,
    sweeps and double clicks do the work once. Raises RedisError when Redis is unreachable."""
    if job_status(job_id, queue.connection) in PENDING:
        return False
    queue.enqueue(func, *args, job_id=job_id, **options)
    return True


def warn_if_evicting(connection: Redis) -> None:
    """Jobs are Redis keys: a Redis that evicts under memory pressure loses work silently."""
    try:
        policy = connection.config_get("maxmemory-policy").get("maxmemory-policy")
    except Exception:  # CONFIG may be disabled on managed Redis; nothing to check then
        return
    if policy and policy != "noeviction":
        log.warning("Redis maxmemory-policy is %r: queued jobs can be evicted and lost. "
                    "Set it to noeviction (redis-cli config set maxmemory-policy noeviction).", policy)

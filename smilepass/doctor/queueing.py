"""Redis and what runs on it: Redis answers and never evicts keys, a worker is alive on every queue the app
uses, and an `rq cron` scheduler (workers/cron.py) is alive.

Workers: rq keeps a hash per worker (rq:worker:<name>) with its last heartbeat and lets it expire when the
heartbeats stop (idle workers beat every worker_ttl - 15 s, busy ones every few seconds); the set
rq:workers:<queue> lists them by queue. A worker counts as alive when its hash is still there and its
last heartbeat is younger than that hash's lifetime (a worker killed with SIGKILL leaves its hash for at
most that long).

Cron: rq 3's `rq cron` registers itself in the sorted set rq:cron_schedulers with the time of its last
heartbeat as the score, and beats at least once a minute (it sleeps at most 60 s between rounds); rq
itself treats an entry older than DEFAULT_CRON_SCHEDULER_TTL (120 s) as dead. That is read here, so no
heartbeat of our own is needed."""
from __future__ import annotations

import time

from flask_babel import gettext, ngettext
from redis import Redis
from rq import Queue, Worker
from rq.cron import CronScheduler
from rq.cron_scheduler_registry import get_registry_key
from rq.defaults import DEFAULT_CRON_SCHEDULER_TTL, DEFAULT_WORKER_TTL
from rq.exceptions import SchedulerNotFound
from rq.utils import now

from ..queue import DEFAULT_QUEUE, QUEUES, SCAN_QUEUE, redis_connection
from .record import Check, Status, first_line

# The worker hash lives worker_ttl + 60 s after a heartbeat (rq's Worker.heartbeat); ours use rq's default ttl.
WORKER_HEARTBEAT_SECONDS = DEFAULT_WORKER_TTL + 60


def _where(connection: Redis) -> str:
    kwargs = connection.connection_pool.connection_kwargs
    if kwargs.get("path"):
        return f"{kwargs['path']} db {kwargs.get('db', 0)}"
    return f"{kwargs.get('host')}:{kwargs.get('port')}/{kwargs.get('db', 0)}"  # never the password


def check_redis(probe) -> Check:
    name = "Redis"
    connection = redis_connection(probe.config["REDIS_URL"])
    try:
        connection.ping()
        version = connection.info("server").get("redis_version", "?")
    except Exception as exc:  # refused, timed out, wrong password: the queue is down either way
        probe.redis_error = first_line(exc)
        return Check(name, Status.FAIL, gettext("not reachable at %(where)s: %(error)s", where=_where(connection),
                                                error=probe.redis_error))
    probe.redis = connection
    where = _where(connection)
    try:
        policy = connection.config_get("maxmemory-policy").get("maxmemory-policy", "")
    except Exception:  # managed Redis may refuse CONFIG: say so, the admin can check it there
        return Check(name, Status.WARN, gettext("Redis %(version)s at %(where)s; its maxmemory-policy cannot be "
                                                "read (CONFIG is refused): make sure it is noeviction",
                                                version=version, where=where))
    if policy != "noeviction":
        # A WARN, not a FAIL: an evicted job is not lost for good (the outbox and scan sweeps enqueue again
        # what the database says is still to do), but mail and repairs can be late and rate limits forgotten.
        return Check(name, Status.WARN, gettext("Redis %(version)s at %(where)s evicts keys (maxmemory-policy "
                                                "%(policy)s): queued jobs can be lost; set it to noeviction",
                                                version=version, where=where, policy=policy))
    return Check(name, Status.OK, gettext("Redis %(version)s at %(where)s, maxmemory-policy noeviction",
                                          version=version, where=where))


def _seconds_ago(moment) -> int:
    return max(int((now() - moment).total_seconds()), 0)


def queue_work(queue: str) -> str:
    return {DEFAULT_QUEUE: gettext("mail, sweeps and service-level checks"),
            SCAN_QUEUE: gettext("scan repairs")}.get(queue, queue)


def check_workers(probe) -> list[Check]:
    checks = []
    for queue in QUEUES:
        name = gettext("Worker: %(queue)s", queue=queue)
        if probe.redis is None:
            checks.append(Check(name, Status.FAIL, gettext("cannot be checked: Redis is not reachable")))
            continue
        beats = [_seconds_ago(worker.last_heartbeat)
                 for worker in Worker.all(queue=Queue(queue, connection=probe.redis))
                 if worker.last_heartbeat is not None]
        alive = sorted(age for age in beats if age <= WORKER_HEARTBEAT_SECONDS)
        if alive:
            checks.append(Check(name, Status.OK, ngettext("%(num)s alive, last heartbeat %(age)s s ago",
                                                          "%(num)s alive, last heartbeat %(age)s s ago",
                                                          len(alive), age=alive[0])))
        else:
            checks.append(Check(name, Status.FAIL, gettext("no worker alive: %(work)s wait (start python -m "
                                                           "workers.worker %(queue)s)", work=queue_work(queue),
                                                           queue=queue)))
    return checks


def check_cron(probe) -> Check:
    name = gettext("Cron")
    if probe.redis is None:
        return Check(name, Status.FAIL, gettext("cannot be checked: Redis is not reachable"))
    since = time.time() - DEFAULT_CRON_SCHEDULER_TTL
    live = probe.redis.zrangebyscore(get_registry_key(), since, "+inf", withscores=True)
    if not live:
        return Check(name, Status.FAIL, gettext("no rq cron has sent a heartbeat in the last %(seconds)s s: the "
                                                "outbox and scan sweeps, service-level checks and retention do not "
                                                "run (start rq cron workers.cron)",
                                                seconds=DEFAULT_CRON_SCHEDULER_TTL))
    member, score = max(live, key=lambda item: item[1])
    scheduler_name = member.decode() if isinstance(member, bytes) else member
    try:
        scheduler = CronScheduler.fetch(scheduler_name, probe.redis)
        jobs, config_file = len(scheduler.get_jobs()), scheduler.config_file or "?"
    except SchedulerNotFound:  # its hash expired between the two reads
        jobs, config_file = 0, "?"
    return Check(name, Status.OK, gettext("rq cron alive (%(config)s, %(jobs)s periodic jobs), last heartbeat "
                                          "%(age)s s ago", config=config_file, jobs=jobs,
                                          age=max(int(time.time() - score), 0)))

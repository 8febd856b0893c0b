"""The checks in the order they are shown, and the one function that runs them all."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from flask import Flask
from redis import Redis

from .outside import check_base_url, check_mail, check_scan_repair
from .queueing import check_cron, check_redis, check_workers
from .record import Check, Status, first_line
from .storage import check_backup, check_database, check_disk, check_file_storage


@dataclass
class Probe:
    """What the checks look at; check_redis leaves its connection here for the worker and cron checks."""
    config: Mapping
    instance_path: str
    redis: Redis | None = None
    redis_error: str = field(default="")


# Each takes the Probe and returns one Check or several (one per queue). Redis before workers and cron.
CHECKS: tuple[Callable[[Probe], Check | Iterable[Check]], ...] = (
    check_database, check_redis, check_workers, check_cron, check_mail, check_base_url, check_file_storage, check_disk,
    check_backup, check_scan_repair,
)


def run_checks(app: Flask) -> list[Check]:
    """Every check against this app's settings, in order. A check that raises is reported as failed
    (named after its function) instead of stopping the others."""
    probe = Probe(app.config, app.instance_path)
    results: list[Check] = []
    for check in CHECKS:
        try:
            outcome = check(probe)
        except Exception as exc:  # a bug or a surprise in one check must not hide the other lines
            outcome = Check(check.__name__.removeprefix("check_"), Status.FAIL, first_line(exc))
        results.extend([outcome] if isinstance(outcome, Check) else outcome)
    if probe.redis is not None:
        probe.redis.close()
    return results

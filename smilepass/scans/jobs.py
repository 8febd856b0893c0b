"""The scan jobs RQ runs: the repair (on the "scans" queue) and the sweep (every minute from `rq cron`)."""
import resource

from rq import get_current_job
from rq.timeouts import JobTimeoutException

from ..jobs import app, app_context
from ..models import Scan
from . import repair
from .sweep import sweep


def repair_scan(scan_id: int, run: int) -> str:
    """Repair one scan. Malformed files, timeouts and running out of memory end the scan as failed with a
    reason; anything else is raised so RQ retries it."""
    job = get_current_job()
    # The try covers the app's start-up in this fresh work horse too: on a busy machine a short
    # timeout can strike there, and the scan must still end failed with the reason, not wait for
    # the sweep.
    try:
        limit = app().config["SCAN_MEMORY_LIMIT_MB"] * 1024 * 1024
        # Only this forked work horse is capped; the worker that watches it is not.
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        with app_context() as application:
            return repair.run_repair(scan_id, run, application.config)
    except (JobTimeoutException, MemoryError) as exc:
        with app_context() as application:
            timeout = job.timeout if job is not None else application.config["SCAN_JOB_TIMEOUT"]
            attempt = Scan.select(Scan.attempts).where(Scan.id == scan_id).scalar() or 0
            repair.fail(scan_id, run, repair.fatal_reason(exc, application.config, timeout, attempt))
        return "failed"
    except Exception as exc:
        retries_left = job.retries_left if job is not None else 0
        with app_context():
            repair.record_error(scan_id, run, exc, final=not retries_left)
        raise


def repair_timed_out(scan_id: int, run: int, timeout: int) -> bool:
    """Enqueued by the worker (workers/worker.py) when it had to kill a repair's work horse that ran past
    its timeout without noticing (stuck inside a mesh library): the scan fails with that reason at once."""
    with app_context():
        return repair.fail_timed_out(scan_id, run, timeout)


def sweep_scans() -> dict:
    """Every minute from `rq cron`: enqueue scans that waited for Redis, settle lost jobs."""
    with app_context() as application:
        return sweep(application.config)

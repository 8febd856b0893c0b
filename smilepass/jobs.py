"""RQ job functions. Thin: each opens the app's database and calls into the package."""
import functools

from .db import database


@functools.cache
def _app():
    # Created on first use inside the worker (not at import), once per worker process.
    from . import create_app

    return create_app()


def send_mail(mail_id: int) -> str:
    from .mail import send_now
    from .models import OutboxMail

    app = _app()
    with app.app_context(), database.connection_context():
        mail = OutboxMail.get_or_none(OutboxMail.id == mail_id)
        if mail is None:
            return "gone"
        if mail.sent_at is not None:
            return "already sent"
        send_now(mail, app.config)
        return "sent"


def sweep_outbox() -> int:
    """Hand unsent mail to the queue again: mail written while Redis was down, or whose retries ran
    out during a long SMTP outage. Runs every few minutes from `rq cron` (workers/cron.py)."""
    from .mail import pending_mail_ids, enqueue_send

    app = _app()
    if not app.config["SMTP_HOST"]:
        return 0
    with app.app_context(), database.connection_context():
        ids = pending_mail_ids()
        return sum(1 for mail_id in ids if enqueue_send(mail_id))


def repair_scan(scan_id: int, run: int) -> str:
    """Repair one scan (RQ job on the "scans" queue). Malformed files, timeouts and running out of
    memory end the scan as failed with a reason; anything else is raised so RQ retries it."""
    import resource

    from rq import get_current_job
    from rq.timeouts import JobTimeoutException

    from . import scan_jobs

    job = get_current_job()
    # The try covers the app's start-up in this fresh work horse too: on a busy machine a short
    # timeout can strike there, and the scan must still end failed with the reason, not wait for
    # the sweep.
    try:
        app = _app()
        limit = app.config["SCAN_MEMORY_LIMIT_MB"] * 1024 * 1024
        # Only this forked work horse is capped; the worker that watches it is not.
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        with app.app_context(), database.connection_context():
            return scan_jobs.run_repair(scan_id, run, app.config)
    except (JobTimeoutException, MemoryError) as exc:
        app = _app()
        timeout = job.timeout if job is not None else app.config["SCAN_JOB_TIMEOUT"]
        with app.app_context(), database.connection_context():
            scan_jobs.fail(scan_id, run, scan_jobs.fatal_reason(exc, app.config, timeout))
        return "failed"
    except Exception as exc:
        app = _app()
        retries_left = job.retries_left if job is not None else 0
        with app.app_context(), database.connection_context():
            scan_jobs.record_error(scan_id, run, exc, final=not retries_left)
        raise


def sweep_scans() -> dict:
    """Every minute from `rq cron`: enqueue scans that waited for Redis, settle lost jobs."""
    from .scans import sweep

    app = _app()
    with app.app_context(), database.connection_context():
        return sweep(app.config)


def refresh_statistics() -> None:
    """Hourly from `rq cron`: keep the query planner's statistics current (see db.refresh_statistics)."""
    from . import db

    _app()  # binds the database
    db.refresh_statistics()


def sla_sweep() -> dict:
    """Every minute from `rq cron`: mark tickets whose running deadline passed, escalate each newly
    breached one a step, and warn about deadlines that pass soon. Marking is race-safe (only rows
    still unmarked), so overlapping sweeps escalate a ticket once."""
    from . import escalation, notifications, sla
    from .models import utcnow

    app = _app()
    with app.app_context(), database.connection_context():
        now = utcnow()
        breaches = sla.mark_breaches(now)
        escalated = escalation.escalate_breaches(breaches, now=now)
        warned = notifications.sla_warnings(now)
        return {"breached": len(breaches), "escalated": escalated, "warned": warned}


def scan_retention() -> dict:
    """Hourly from `rq cron`: purge scans past the retention setting, and finish deletions that a
    killed process left half done (stewardship.cleanup)."""
    from .stewardship.retention import purge_expired_scans

    app = _app()
    with app.app_context(), database.connection_context():
        return purge_expired_scans(app.config)

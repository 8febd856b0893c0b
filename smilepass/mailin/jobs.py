"""The IMAP poll, every minute from `rq cron` (workers/cron.py). One poll at a time: a slow poll (a
sluggish mail server, a batch of large scans) must not overlap the next minute's, or two workers would
fetch the same unseen mails side by side. A Redis lock says who polls; its timeout frees it when the
worker holding it dies, and is longer than the job may run (RQ stops the job at POLL_JOB_TIMEOUT)."""
import contextlib
import logging

from imap_tools.errors import ImapToolsError
from redis.exceptions import LockError, RedisError

from ..jobs import app_context
from ..queue import redis_connection
from .imap import poll

log = logging.getLogger(__name__)

POLL_LOCK = "smilepass:mailin:imap-poll"
POLL_JOB_TIMEOUT = 240  # seconds; BATCH mails at most per poll
POLL_LOCK_TIMEOUT = POLL_JOB_TIMEOUT + 60
ALREADY_POLLING = "another IMAP poll is still running"


def poll_imap() -> str:
    with app_context() as application:
        if not application.config["IMAP_HOST"]:
            return "no IMAP mailbox configured"
        try:
            lock = redis_connection(application.config["REDIS_URL"]).lock(
                POLL_LOCK, timeout=POLL_LOCK_TIMEOUT, blocking=False)
            if not lock.acquire():
                return ALREADY_POLLING
        except RedisError as exc:  # no lock, no poll: the mail waits in INBOX for the next minute
            log.warning("IMAP poll skipped, Redis unavailable: %s", exc)
            return f"Redis unavailable: {type(exc).__name__}"
        try:
            result = poll(application.config)
        except (OSError, ImapToolsError) as exc:  # the mail server is away: next minute again
            log.warning("IMAP poll failed: %s: %s", type(exc).__name__, exc)
            return f"IMAP server unavailable: {type(exc).__name__}"
        finally:
            # Past its timeout the lock may be another poll's by now: that one keeps it.
            with contextlib.suppress(LockError, RedisError):
                lock.release()
        return f"taken {result.taken}, rejected {result.rejected}, left {result.left}"

"""The IMAP poll, every minute from `rq cron` (workers/cron.py)."""
import logging

from imap_tools.errors import ImapToolsError

from ..jobs import app_context
from .imap import poll

log = logging.getLogger(__name__)


def poll_imap() -> str:
    with app_context() as application:
        if not application.config["IMAP_HOST"]:
            return "no IMAP mailbox configured"
        try:
            result = poll(application.config)
        except (OSError, ImapToolsError) as exc:  # the mail server is away: next minute again
            log.warning("IMAP poll failed: %s: %s", type(exc).__name__, exc)
            return f"IMAP server unavailable: {type(exc).__name__}"
        return f"taken {result.taken}, rejected {result.rejected}, left {result.left}"

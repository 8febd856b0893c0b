"""The IMAP way in: every minute (rq cron, mailin/jobs.py) the support mailbox's unseen mail in INBOX is
fetched (without marking it seen) and taken like a piped mail (receive.take); a mail that was taken goes to
the folder Processed, a refused one to Rejected. A temporary failure (database or Redis down) leaves it
unseen in INBOX for the next poll, so nothing is lost.

Settings come from the environment (SMILEPASS_IMAP_*; config.py): the password never passes through the
admin pages or the audit trail. IMAPS (port 993) by default, STARTTLS on request; plain IMAP only to the
local machine (a mail server on the same host)."""
import logging
import re
import ssl
from dataclasses import dataclass, field

from imap_tools import MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.errors import ImapToolsError

from .receive import TemporaryFailure, take

log = logging.getLogger(__name__)

PROCESSED, REJECTED = "Processed", "Rejected"
BATCH = 50  # mails per poll at most; the rest wait a minute
SECURITY = ("ssl", "starttls", "plain")
LOOPBACK = ("127.0.0.1", "::1", "localhost")


class ImapSettingsError(ValueError):
    pass


@dataclass
class PollResult:
    taken: int = 0
    rejected: int = 0
    left: int = 0  # left in INBOX after a temporary failure
    statuses: list[str] = field(default_factory=list)


def _mailbox(config):
    host, port, security = config["IMAP_HOST"], config["IMAP_PORT"], config["IMAP_SECURITY"]
    if security not in SECURITY:
        raise ImapSettingsError(f"SMILEPASS_IMAP_SECURITY must be one of {', '.join(SECURITY)}")
    context = ssl.create_default_context(cafile=config["IMAP_CA_FILE"] or None)
    if security == "ssl":
        return MailBox(host, port or 993, timeout=30, ssl_context=context)
    if security == "starttls":
        return MailBoxStartTls(host, port or 143, timeout=30, ssl_context=context)
    if host not in LOOPBACK:
        raise ImapSettingsError("plain IMAP (no TLS) only to a mail server on this machine")
    return MailBoxUnencrypted(host, port or 143, timeout=30)


def _raw(mailbox, uid: str) -> bytes:
    status, data = mailbox.client.uid("FETCH", uid, "(BODY.PEEK[])")
    if status != "OK":
        raise ImapToolsError(f"FETCH {uid}: {status}")
    return b"".join(part[1] for part in data if isinstance(part, tuple))


def _size(mailbox, uid: str) -> int:
    status, data = mailbox.client.uid("FETCH", uid, "(RFC822.SIZE)")
    match = re.search(rb"RFC822\.SIZE (\d+)", b" ".join(p if isinstance(p, bytes) else p[0] for p in data or []))
    return int(match.group(1)) if status == "OK" and match else 0


def poll(config) -> PollResult:
    """One round: take what is new in INBOX. Call inside a database connection."""
    result = PollResult()
    with _mailbox(config).login(config["IMAP_USER"], config["IMAP_PASSWORD"], initial_folder="INBOX") as mailbox:
        for folder in (PROCESSED, REJECTED):
            if not mailbox.folder.exists(folder):
                mailbox.folder.create(folder)
        mailbox.folder.set("INBOX")
        for uid in mailbox.uids("UNSEEN")[:BATCH]:
            if _size(mailbox, uid) > config["MAIL_IN_MAX_BYTES"]:
                raw = _raw_head(mailbox, uid)  # the body is not fetched: too large to take anyway
                too_large = True
            else:
                raw, too_large = _raw(mailbox, uid), False
            try:
                outcome = take(raw, config, oversized=too_large)
            except TemporaryFailure as exc:
                log.warning("IMAP poll stopped, mail stays in INBOX: %s", exc)
                result.left += 1
                break  # the database or Redis is gone: the next poll tries again
            result.statuses.append(outcome.status)
            if outcome.refused:
                mailbox.move(uid, REJECTED)
                result.rejected += 1
            else:
                mailbox.move(uid, PROCESSED)
                result.taken += 1
    return result


def _raw_head(mailbox, uid: str) -> bytes:
    status, data = mailbox.client.uid("FETCH", uid, "(BODY.PEEK[HEADER])")
    return b"".join(part[1] for part in data if isinstance(part, tuple)) if status == "OK" else b""

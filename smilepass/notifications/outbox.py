"""Mail goes into the outbox table first; a worker job sends it over SMTP when SMTP is configured.
Without SMTP, admins read the outbox in the app, so password resets work on a box with no mail
server.

A notification mail is an outbox row written in the same transaction as the change it reports, so a
change that rolls back mails nobody and a committed change is never without its mail. The worker
is told about the row only after that transaction commits (`hand_over`): a job started earlier
would look for a row it cannot see yet. Anything not handed over (Redis down, a caller that forgot)
is picked up by the outbox sweep within minutes.

Mails carry the minimum: a case number identifies the case; never a patient's name or birth date."""
import logging
import smtplib
import threading
from collections.abc import Callable
from email.message import EmailMessage

from flask import current_app, has_app_context
from flask_babel import force_locale, gettext
from redis.exceptions import RedisError
from rq import Retry

from ..db import database
from ..i18n import DEFAULT_LANGUAGE, in_english
from ..models import OutboxMail, User, utcnow
from ..queue import enqueue_once, get_queue
from . import mailthread
from .events import EVENTS, wants

log = logging.getLogger(__name__)


def queue_mail(to_addr: str, subject: str, body: str, automatic: bool = False, in_reply_to: str = "",
               reply_to: str = "") -> OutboxMail:
    """A mail about no event (a password reset, an answer to an incoming mail): out now."""
    mail = OutboxMail.create(to_addr=to_addr, subject=subject, body=body, automatic=automatic,
                             in_reply_to=in_reply_to, reply_to=reply_to,
                             message_id=mailthread.new_message_id(current_app.config))
    if current_app.config["SMTP_HOST"]:
        enqueue_send(mail.id)
    return mail


# Past this many attempts a mail waits for an admin (it stays listed as failed in the outbox).
MAX_ATTEMPTS = 20


def pending_mail_ids() -> list[int]:
    query = (OutboxMail.select(OutboxMail.id)
             .where(OutboxMail.sent_at.is_null() & (OutboxMail.attempts < MAX_ATTEMPTS))
             .order_by(OutboxMail.id).limit(500))
    return [row.id for row in query]


def enqueue_send(mail_id: int) -> bool:
    """Hand the mail to a worker, unless a job for it is already waiting or running (the job id is
    the mail's, so sweeps never send twice). If Redis is down the mail stays in the outbox, unsent
    and listed for admins; nothing is lost."""
    try:
        return enqueue_once(get_queue(), "smilepass.notifications.jobs.send_mail", mail_id, job_id=f"mail-{mail_id}",
                            retry=Retry(max=5, interval=[10, 60, 300, 900, 3600]))
    except RedisError as exc:
        log.warning("mail %s stays in the outbox: Redis unavailable (%s)", mail_id, exc)
        return False


def send_now(mail: OutboxMail, config) -> None:
    """Send one outbox mail over SMTP; raises on failure so the job is retried."""
    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]
    message["To"] = mail.to_addr
    message["Subject"] = mail.subject
    # Stored with the mail, so a retry sends the same Message-ID (rows older than 0017 make one up).
    message["Message-ID"] = mail.message_id or mailthread.new_message_id(config)
    if mail.in_reply_to:
        message["In-Reply-To"] = mail.in_reply_to
        message["References"] = mail.in_reply_to
    if mail.reply_to:
        message["Reply-To"] = mail.reply_to
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: auto-responders stay quiet
    message.set_content(mail.body)
    mail.attempts += 1
    try:
        with smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=20) as smtp:
            if config["SMTP_STARTTLS"]:
                smtp.starttls()
            if config["SMTP_USER"]:
                smtp.login(config["SMTP_USER"], config["SMTP_PASSWORD"])
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        mail.last_error = f"{type(exc).__name__}: {exc}"[:1000]
        mail.save()
        raise
    mail.sent_at = utcnow()
    mail.last_error = ""
    mail.save()


# Outbox rows written inside a transaction that has not committed yet, per thread (each thread has
# its own database connection and so its own transaction).
_waiting = threading.local()


@in_english
def notify(event_key: str, recipient: User, compose: Callable[[], tuple[str, str]],
           actor: User | None = None, ticket_id: int | None = None, in_their_language: bool = False
           ) -> OutboxMail | None:
    """Write a mail to the outbox if the recipient wants this event, is active, and did not cause
    it themselves; `compose()` gives its subject and body, and runs only then. Call this inside the
    change's transaction, then `hand_over()` after it. A mail about a ticket joins the ticket's thread
    and can be answered by mail (mailthread). in_their_language: compose() and the footer run in the
    recipient's language (English when they chose none: a mail has no browser to ask)."""
    if actor is not None and actor.id == recipient.id:
        return None
    if not wants(recipient, event_key):
        return None
    if not has_app_context():
        # Links need the app's BASE_URL. The web app, its CLI and the worker always have one; a bare
        # script calling the model functions does not, and writes no mail.
        log.warning("no application context: %r mail to user %s not written", event_key, recipient.id)
        return None
    with force_locale((recipient.language or DEFAULT_LANGUAGE) if in_their_language else DEFAULT_LANGUAGE):
        subject, body = compose()
        footer = "\n\n" + gettext("You get this because \"%(event)s\" is on in My Account → Email notifications:",
                                   event=EVENTS[event_key].label) + f"\n{absolute_url('account.notifications')}\n"
    config = current_app.config
    threading_headers = {}
    if ticket_id is not None:
        threading_headers = {"in_reply_to": mailthread.thread_root(config, ticket_id),
                             "reply_to": mailthread.reply_address(config, ticket_id, recipient.id)}
    mail = OutboxMail.create(to_addr=recipient.email, subject=subject[:200], body=body + footer,
                             message_id=mailthread.new_message_id(config), **threading_headers)
    if not hasattr(_waiting, "ids"):
        _waiting.ids = []
    _waiting.ids.append(mail.id)
    return mail


def hand_over() -> int:
    """Give the worker the mails written so far, once no transaction is open any more (inside one,
    this does nothing: the caller that opened it calls again after it). Without SMTP they wait in
    the outbox for an admin, like every other mail. Returns how many jobs were queued."""
    if database.in_transaction() or not has_app_context():
        return 0
    ids, _waiting.ids = getattr(_waiting, "ids", []), []
    if not ids or not current_app.config["SMTP_HOST"]:
        return 0
    # Rows of a transaction that rolled back are gone; only existing, unsent ones go to the worker.
    unsent = [row.id for row in OutboxMail.select(OutboxMail.id)
              .where(OutboxMail.id.in_(ids) & OutboxMail.sent_at.is_null()).order_by(OutboxMail.id)]
    return sum(1 for mail_id in unsent if enqueue_send(mail_id))


def absolute_url(endpoint: str, **values) -> str:
    """A link for a mail. Built from the URL map rather than the request, so a worker or a CLI
    command (no request) writes the same link as a web request: BASE_URL is the public root."""
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return current_app.config["BASE_URL"].rstrip("/") + path

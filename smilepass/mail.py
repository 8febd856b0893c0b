"""Mail goes into the outbox table first; a worker job sends it over SMTP when SMTP is configured.
Without SMTP, admins read the outbox in the app, so password resets work on a box with no mail
server."""
import logging
import smtplib
from email.message import EmailMessage

from flask import current_app
from redis.exceptions import RedisError
from rq import Retry

from .models import OutboxMail, utcnow
from .queue import enqueue_once, get_queue

log = logging.getLogger(__name__)


def queue_mail(to_addr: str, subject: str, body: str) -> OutboxMail:
    mail = OutboxMail.create(to_addr=to_addr, subject=subject, body=body)
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
        return enqueue_once(get_queue(), "smilepass.jobs.send_mail", mail_id, job_id=f"mail-{mail_id}",
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

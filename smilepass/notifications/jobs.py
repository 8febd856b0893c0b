"""The mail jobs RQ runs: send one outbox mail, and the outbox sweep (every few minutes from `rq cron`)."""
from ..jobs import app_context
from ..models import OutboxMail
from .outbox import enqueue_send, pending_mail_ids, send_now


def send_mail(mail_id: int) -> str:
    with app_context() as application:
        mail = OutboxMail.get_or_none(OutboxMail.id == mail_id)
        if mail is None:
            return "gone"
        if mail.sent_at is not None:
            return "already sent"
        send_now(mail, application.config)
        return "sent"


def sweep_outbox() -> int:
    """Hand unsent mail to the queue again: mail written while Redis was down, or whose retries ran
    out during a long SMTP outage."""
    with app_context() as application:
        if not application.config["SMTP_HOST"]:
            return 0
        return sum(1 for mail_id in pending_mail_ids() if enqueue_send(mail_id))

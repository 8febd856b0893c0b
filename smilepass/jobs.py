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

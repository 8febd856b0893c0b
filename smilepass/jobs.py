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

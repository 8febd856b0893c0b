"""In-app notifications (the count in the header, My Account → Inbox), and telling people about a ticket:
an in-app notification each (private, cheap, always) and, if their choice allows, a mail."""
import peewee as pw

from .. import audit
from ..db import database, prepared
from ..i18n import fast_gettext as gettext
from ..live import events as live
from ..models import Notification, Ticket, User, utcnow
from .mailthread import subject_for
from .outbox import absolute_url, hand_over, notify

NOTIFICATION_TEXT_MAX = 300


def tell(recipients: list[User], ticket: Ticket, event_key: str, actor: User | None, text: str,
         subject: str, lines: list[str], quote: str = "") -> bool:
    """One in-app notification per recipient (except the actor) and a mail to those who want it. The
    mail's subject is `[SP-000042] subject`; the recipient may answer it by mail (smilepass/mailin).
    Subject and lines may be lazy strings: each mail is written in its recipient's language (outbox.notify).
    `quote`, a public reply's text, is quoted only in the mails of the ticket's participants; the others
    are sent to the request page for it."""
    told = False
    link = None
    with database.atomic():
        for user in recipients:
            if actor is not None and user.id == actor.id or not user.is_active:
                continue
            Notification.create(user=user.id, ticket=ticket.id, kind=event_key, text=text[:NOTIFICATION_TEXT_MAX])
            live.inbox_changed(user.id)
            told = True

            def compose(user=user):
                nonlocal link
                link = link or absolute_url("support.detail", ticket_id=ticket.id)
                body = [str(line) for line in lines]
                if quote and ticket.is_participant(user):
                    body += ["", *("> " + line for line in quote.splitlines())]
                elif quote:
                    body += ["", gettext("The reply is on the request page.")]
                return subject_for(ticket.number, str(subject)), "\n".join(body + [
                    "", gettext("Request page (sign-in needed): %(link)s", link=link),
                    gettext("You can answer this mail: your reply is added to the request.")])
            notify(event_key, user, compose, actor, ticket_id=ticket.id)
    hand_over()
    live.send()
    return told


def unread_count(user: User) -> int:
    """The header badge: on every page, so one prepared COUNT on the (user, read_at, id) index."""
    def build(p):
        return (Notification.select(pw.fn.COUNT(Notification.id))
                .where((Notification.user == p.user) & Notification.read_at.is_null()))
    rows = prepared("unread-notifications", build, raw_rows=True, user=user.id)
    return int(rows[0][0]) if rows else 0


def inbox(user: User, limit: int = 50) -> list[Notification]:
    """The user's newest notifications first (unread and read)."""
    return list(Notification.select().where(Notification.user == user.id)
                .order_by(Notification.id.desc()).limit(limit))


def mark_read(user: User, note: Notification) -> None:
    """Mark one of the user's notifications read (the caller fetched it as theirs)."""
    if note.read_at is None:
        with database.atomic():
            note.read_at = utcnow()
            note.save(only=[Notification.read_at])
            audit.record("notification_read", note, actor=user)
            live.inbox_changed(user.id)  # the badge on the user's other open pages
        live.send()


def mark_all_read(user: User) -> int:
    with database.atomic():
        n = (Notification.update(read_at=utcnow())
             .where((Notification.user == user.id) & Notification.read_at.is_null()).execute())
        if n:
            audit.record("notifications_read", user, f"{n} marked read", actor=user)
            live.inbox_changed(user.id)
    live.send()
    return n

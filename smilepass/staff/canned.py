"""Canned replies: answers staff give often, kept once and inserted into a reply. The text is
plain; two placeholders are filled from the ticket when inserted."""
import peewee as pw
from flask_babel import gettext

from .. import audit
from ..db import database
from ..models import CannedReply, Ticket, User, utcnow

TITLE_MAX = CannedReply.title.max_length
BODY_MAX = 5000
PLACEHOLDERS = {
    "{clinician_name}": "the requester's name",
    "{ticket_number}": "the ticket's number, e.g. SP-000042",
}


class CannedRefused(ValueError):
    """The message is for the staff member, beside the title."""


def all_replies() -> list[CannedReply]:
    return list(CannedReply.select().order_by(CannedReply.title, CannedReply.id))


def choices() -> list[tuple[int, str]]:
    """(id, title) for the picker on the ticket page."""
    return list(CannedReply.select(CannedReply.id, CannedReply.title).order_by(CannedReply.title).tuples())


def _check_title_free(title: str, reply_id: int | None) -> None:
    query = CannedReply.select(CannedReply.id).where(pw.fn.LOWER(CannedReply.title) == title.lower())
    if reply_id is not None:
        query = query.where(CannedReply.id != reply_id)
    if query.exists():
        raise CannedRefused(gettext("A canned reply called “%(title)s” already exists.", title=title))


def _clean(title: str, body: str) -> tuple[str, str]:
    title, body = (title or "").strip(), (body or "").strip()
    if not title:
        raise CannedRefused(gettext("Give the canned reply a title."))
    if len(title) > TITLE_MAX or len(body) > BODY_MAX or not body:
        raise ValueError("the form checks lengths and the body before this")
    return title, body


def create(title: str, body: str, actor: User) -> CannedReply:
    title, body = _clean(title, body)
    _check_title_free(title, None)
    try:
        with database.atomic():
            reply = CannedReply.create(title=title, body=body, created_by=actor.id)
            audit.record("canned_create", reply, detail=title, actor=actor)
    except pw.IntegrityError:  # someone saved the same title a moment ago
        raise CannedRefused(gettext("A canned reply called “%(title)s” already exists.", title=title)) from None
    return reply


def update(reply: CannedReply, title: str, body: str, actor: User) -> None:
    title, body = _clean(title, body)
    _check_title_free(title, reply.id)
    old_title = reply.title
    try:
        with database.atomic():
            reply.title, reply.body, reply.updated_at = title, body, utcnow()
            reply.save()
            detail = title if old_title == title else f"{old_title} → {title}"
            audit.record("canned_update", reply, detail=detail, actor=actor)
    except pw.IntegrityError:
        reply.title = old_title
        raise CannedRefused(gettext("A canned reply called “%(title)s” already exists.", title=title)) from None


def delete(reply: CannedReply, actor: User) -> None:
    with database.atomic():
        audit.record("canned_delete", reply, detail=reply.title, actor=actor)
        reply.delete_instance()


def fill(body: str, ticket: Ticket) -> str:
    """The reply's text for this ticket. Plain replacement, not str.format: any other braces in
    the text stay as typed. The result is text; templates escape it like any other."""
    return (body.replace("{clinician_name}", ticket.requester.display_name)
            .replace("{ticket_number}", ticket.number))


def insert_into(draft: str, reply: CannedReply, ticket: Ticket) -> str:
    """What the reply box holds after inserting: what was typed, a blank line, the filled reply."""
    draft = (draft or "").rstrip()
    text = fill(reply.body, ticket)
    return (draft + "\n\n" + text) if draft else text

"""What becomes of one incoming mail. A reply to a ticket's mail is taken only when the address's token is genuine, the
sender's address is the address of the user the token names, that user may still see the ticket and the
receiving server did not find the mail forged (DMARC); then it is added through the same code path as a
reply in the app (status, SLA, notifications, audit). A reply to the answer to a Contact us message is
taken only when its token (a kind of its own) was made for that message and the sender's address, and
comes from that address; it joins the message's thread and reopens it. Every mail leaves an InboundMail row with what
became of it; a Message-ID is taken once only.

Refusals never answer the sender (no backscatter): the mail is recorded, audited where it smells of
forgery, and dropped. Only a genuine reply to a closed ticket is answered, at most once an hour per
address."""
import contextlib
import datetime as dt
import io
import logging
import re
from dataclasses import dataclass
from types import SimpleNamespace

import peewee
from redis.exceptions import RedisError

from .. import audit, settings
from ..contact import urgent
from ..db import database
from ..i18n import fast_gettext as gettext
from ..models import (
    DEFAULT_CATEGORY,
    ContactRequest,
    InboundMail,
    OutboxMail,
    Priority,
    Role,
    Status,
    Ticket,
    User,
    normalize_email,
    utcnow,
)
from ..notifications import mailthread
from ..notifications.outbox import hand_over, mail_language, queue_mail
from ..scans.staging import StagedUploads, UploadRefused
from ..support import tickets
from ..support.forms import DESCRIPTION_MAX, REPLY_MAX, TITLE_MAX
from . import parse

log = logging.getLogger(__name__)

# sysexits.h: what an MTA pipe makes of our exit status.
EX_OK, EX_NOUSER, EX_TEMPFAIL = 0, 67, 75
ACCEPTED, REFUSED, IGNORED, CLOSED, DUPLICATE = "accepted", "refused", "ignored", "closed", "duplicate"
AUTO_ANSWER_INTERVAL = dt.timedelta(hours=1)
SCAN_EXTENSIONS = (".stl", ".ply")
SUBJECT_PREFIX = re.compile(r"^\s*((re|aw|fwd?|wg|tr)\s*:\s*)+", re.IGNORECASE)


class TemporaryFailure(Exception):
    """The database, Redis or the disk is not there right now: nothing was taken, the MTA (or the next
    IMAP poll) tries again."""


@dataclass
class Outcome:
    status: str
    reason: str
    exit_code: int
    ticket_id: int | None = None

    @property
    def refused(self) -> bool:
        return self.status == REFUSED


def take(raw: bytes, config, envelope_recipient: str = "", oversized: bool = False) -> Outcome:
    """Take one RFC 5322 message. Raises TemporaryFailure when it should be offered again later.
    `oversized`: only the header was fetched, the whole mail is larger than MAIL_IN_MAX_BYTES."""
    try:
        return _take(raw, config, envelope_recipient, oversized)
    except (peewee.OperationalError, peewee.InterfaceError, RedisError) as exc:
        log.warning("incoming mail left for a retry: %s", type(exc).__name__)
        raise TemporaryFailure(f"{type(exc).__name__}: {exc}") from exc


def _take(raw: bytes, config, envelope_recipient: str, oversized: bool) -> Outcome:
    message_id = parse.message_id_of(raw)
    if InboundMail.select().where(InboundMail.message_id == message_id).exists():
        return Outcome(DUPLICATE, "this Message-ID was taken before", EX_OK)
    if oversized:
        reason = f"mail too large: more than {config['MAIL_IN_MAX_BYTES']} bytes"
        return _record(message_id, parse.sender_of(raw), REFUSED, reason, EX_OK)
    try:
        mail = parse.parse(raw, config["MAIL_IN_MAX_BYTES"])
    except parse.MailRefused as exc:
        return _record(message_id, parse.sender_of(raw), REFUSED, str(exc), EX_OK)
    if mail.automatic:
        return _record(message_id, mail.sender, IGNORED, mail.automatic, EX_OK)
    token = _token(config, [envelope_recipient] if envelope_recipient else mail.recipients)
    if token is None:
        return _record(message_id, mail.sender, REFUSED, "not addressed to the support mailbox", EX_NOUSER)
    if token == "":
        return _new_request(config, message_id, mail)
    if mailthread.is_contact_token(token):
        return _contact_reply(config, message_id, mail, token)
    found = mailthread.read_token(config["SECRET_KEY"], token)
    if found is None:
        return _suspicious(message_id, mail, None, "reply token not genuine")
    ticket_id, user_id = found
    user = User.get_or_none(User.id == user_id)
    if user is None or not user.is_active:
        return _suspicious(message_id, mail, None, "reply token of an unknown or inactive user")
    if normalize_email(mail.sender) != user.email:
        return _suspicious(message_id, mail, None, "sender is not the user the reply token names")
    if mail.authentication.get("dmarc") == "fail":
        return _suspicious(message_id, mail, None, "receiving server found DMARC failed")
    ticket = Ticket.get_visible(ticket_id, user)
    if ticket is None:
        return _suspicious(message_id, mail, None, "the user may not see this ticket")
    if ticket.status_enum == Status.CLOSED:
        outcome = _record(message_id, mail.sender, CLOSED, "ticket is closed", EX_OK, ticket, user)
        _answer_closed(config, ticket, user)
        return outcome
    return _reply(config, message_id, mail, ticket, user)


def _token(config, addresses: list[str]) -> str | None:
    """The reply token of the first tokened support address; "" when only the bare mailbox is among them."""
    tokens = [t for t in (mailthread.token_of(config, a) for a in addresses if a) if t is not None]
    return next((t for t in tokens if t), "" if tokens else None)


def _record(message_id: str, sender: str, status: str, reason: str, exit_code: int,
            ticket: Ticket | None = None, user: User | None = None, authentication: str = "",
            contact: ContactRequest | None = None) -> Outcome:
    try:
        with database.atomic():
            InboundMail.create(message_id=message_id, sender=sender[:254], status=status, reason=reason[:300],
                               ticket=ticket, user=user, authentication=authentication[:300], contact=contact)
    except peewee.IntegrityError:  # the same mail, taken at the same moment by another process
        return Outcome(DUPLICATE, "this Message-ID was taken before", EX_OK)
    log.info("incoming mail %s: %s (%s)", message_id, status, reason)
    return Outcome(status, reason, exit_code, ticket.id if ticket else None)


def _verdicts(mail: parse.ParsedMail) -> str:
    return " ".join(f"{method}={verdict}" for method, verdict in sorted(mail.authentication.items()))


def _suspicious(message_id: str, mail: parse.ParsedMail, ticket: Ticket | None, reason: str,
                contact: ContactRequest | None = None) -> Outcome:
    """A mail that may be forged or misdirected: recorded and audited, never answered."""
    outcome = _record(message_id, mail.sender, REFUSED, reason, EX_OK, ticket, authentication=_verdicts(mail),
                      contact=contact)
    if outcome.status == REFUSED:
        audit.record("mail_refused", ticket or contact, detail=reason)
    return outcome


def _attachment_kind(attachment: parse.Attachment) -> str:
    name = attachment.filename.lower()
    if attachment.content_type.startswith("image/"):
        return "image"
    if name.endswith(SCAN_EXTENSIONS) or attachment.content_type in ("model/stl", "application/sla",
                                                                      "model/x.stl-binary", "model/x.stl-ascii"):
        return "scan"
    return ""


def _reply(config, message_id: str, mail: parse.ParsedMail, ticket: Ticket, user: User) -> Outcome:
    try:
        outcome = _reply_with_files(config, message_id, mail, ticket, user)
    except peewee.IntegrityError:
        # Taken a moment ago by another process: ours rolled back, its staged files went with the exception.
        return Outcome(DUPLICATE, "this Message-ID was taken before", EX_OK)
    hand_over()
    return outcome


def _stage(stack: contextlib.ExitStack, config, mail: parse.ParsedMail) -> tuple[list[StagedUploads], list[str]]:
    """Check and store the attachments like uploads in the app (images re-encoded, scans queued for
    repair, random names in the upload directory); a note for each one not taken. A failure later on
    removes the stored files again (StagedUploads, closed by the caller's stack)."""
    staged, notes = [], []
    for attachment in mail.attachments:
        kind = _attachment_kind(attachment)
        if not kind:
            notes.append(f"(Attachment \"{attachment.filename}\" was not taken: only screenshots and "
                         "STL/PLY scans can be sent.)")
            continue
        uploads = stack.enter_context(StagedUploads(config))
        upload = SimpleNamespace(filename=attachment.filename, stream=io.BytesIO(attachment.data))
        try:
            uploads.add_image(upload) if kind == "image" else uploads.add_scan(upload)
        except UploadRefused as exc:
            if exc.status == 507:  # the disk is full: try the whole mail again later
                raise TemporaryFailure(str(exc)) from None
            notes.append(f"(Attachment \"{attachment.filename}\" was not taken: {exc})")
            continue
        staged.append(uploads)
    return staged, notes


def _reply_with_files(config, message_id: str, mail: parse.ParsedMail, ticket: Ticket, user: User) -> Outcome:
    """The attachments, then the reply and its rows in one transaction."""
    with contextlib.ExitStack() as stack:
        staged, notes = _stage(stack, config, mail)
        body = mail.text
        if len(body) > REPLY_MAX:
            body = body[:REPLY_MAX - 60].rstrip() + "\n(The rest of the mail was cut off.)"
        body = "\n\n".join(part for part in [body, *notes] if part)
        if not body.strip() and not staged:
            return _record(message_id, mail.sender, REFUSED, "no new text and no attachment", EX_OK, ticket, user)
        if not body.strip():
            body = "(Files sent by email.)"
        with database.atomic():
            InboundMail.create(message_id=message_id, sender=mail.sender, status=ACCEPTED, ticket=ticket,
                               user=user, authentication=_verdicts(mail)[:300])
            result = tickets.add_reply(ticket, user, body)
            for uploads in staged:
                uploads.attach(ticket, user, message=result.message)
            audit.record("ticket_reply_mail", ticket, detail=_verdicts(mail), actor=user)
    return Outcome(ACCEPTED, "", EX_OK, ticket.id)


def _contact_reply(config, message_id: str, mail: parse.ParsedMail, token: str) -> Outcome:
    """The sender's answer to a supervisor's answer to their Contact us message."""
    contact_id = mailthread.contact_of_token(token)
    contact = ContactRequest.get_or_none(ContactRequest.id == contact_id) if contact_id else None
    if contact is None or not mailthread.contact_token_matches(config["SECRET_KEY"], token, contact.id, contact.email):
        return _suspicious(message_id, mail, None, "contact reply token not genuine")
    if normalize_email(mail.sender) != contact.email:
        return _suspicious(message_id, mail, None, "sender is not the address the contact message came from",
                           contact)
    if mail.authentication.get("dmarc") == "fail":
        return _suspicious(message_id, mail, None, "receiving server found DMARC failed", contact)
    # A contact message holds text only: files are for requests, where the scan and image checks run.
    notes = [f"(Attachment \"{a.filename}\" was not taken: files cannot be sent to a contact message.)"
             for a in mail.attachments]
    body = mail.text
    if len(body) > urgent.MESSAGE_MAX - 200:
        body = body[:urgent.MESSAGE_MAX - 260].rstrip() + "\n(The rest of the mail was cut off.)"
    body = "\n\n".join(part for part in [body, *notes] if part)
    if not mail.text.strip():
        return _record(message_id, mail.sender, REFUSED, "no new text", EX_OK, contact=contact)
    try:
        with database.atomic():
            InboundMail.create(message_id=message_id, sender=mail.sender, status=ACCEPTED, contact=contact,
                               user=contact.user_id, authentication=_verdicts(mail)[:300])
            _, notices = urgent.sender_replied(contact, body)
    except peewee.IntegrityError:
        return Outcome(DUPLICATE, "this Message-ID was taken before", EX_OK)
    urgent.hand_over_mails(notices)
    return Outcome(ACCEPTED, "contact message", EX_OK)


def _new_request(config, message_id: str, mail: parse.ParsedMail) -> Outcome:
    """A mail to the bare support mailbox. With Admin → Settings → "New requests by email" on, one from a
    known, active clinician's address opens a request (Title = subject, Technical Issues & Bugs, Low) and
    is confirmed by mail with its number and due time; anything else is recorded and dropped."""
    no_token = "sent to the support mailbox without a reply token"
    if settings.get("mail_new_requests") != "on":
        return _record(message_id, mail.sender, REFUSED, no_token, EX_OK)
    user = User.by_email(mail.sender)
    if user is None or not user.is_active or user.role != Role.CLINICIAN.value:
        return _suspicious(message_id, mail, None, "new request by email from an address that is no clinician's")
    if mail.authentication.get("dmarc") == "fail":
        return _suspicious(message_id, mail, None, "receiving server found DMARC failed")
    title = " ".join(SUBJECT_PREFIX.sub("", mail.subject).split())[:TITLE_MAX] or "Request by email"
    try:
        with contextlib.ExitStack() as stack:
            staged, notes = _stage(stack, config, mail)
            text = "\n\n".join(part for part in [mail.text, *notes] if part) or "(Sent by email.)"
            description = text if len(text) <= DESCRIPTION_MAX else text[:DESCRIPTION_MAX - 40].rstrip() + " […]"
            with database.atomic():
                ticket = tickets.create_ticket(user, title, description, Priority.LOW.value, DEFAULT_CATEGORY)
                InboundMail.create(message_id=message_id, sender=mail.sender, status=ACCEPTED, ticket=ticket,
                                   user=user, authentication=_verdicts(mail)[:300])
                message = tickets.add_reply(ticket, user, text[:REPLY_MAX]).message if text != description else None
                for uploads in staged:
                    uploads.attach(ticket, user, message=message)
                audit.record("ticket_created_mail", ticket, detail=_verdicts(mail), actor=user)
    except peewee.IntegrityError:
        return Outcome(DUPLICATE, "this Message-ID was taken before", EX_OK)
    _confirm(config, ticket, user)
    hand_over()
    return Outcome(ACCEPTED, "new request", EX_OK, ticket.id)


def _confirm(config, ticket: Ticket, user: User) -> None:
    """The confirmation of a request filed by mail: its number and when the first response is due; the
    mail joins the request's thread, so answering it adds a reply. In the user's language."""
    with mail_language(user):
        queue_mail(user.email, mailthread.subject_for(ticket.number, gettext("Request received")),
                   "\n".join([gettext("Your request %(number)s was received.", number=ticket.number),
                              gettext("A first response is due by %(due)s UTC.",
                                      due=f"{ticket.response_due_at:%Y-%m-%d %H:%M}"), "",
                              gettext("You can answer this mail: your reply is added to the request."), ""]),
                   in_reply_to=mailthread.thread_root(config, ticket.id),
                   reply_to=mailthread.reply_address(config, ticket.id, user.id))


def _answer_closed(config, ticket: Ticket, user: User) -> None:
    """One "this request is closed" answer per address per hour at most (mail loops stop here)."""
    since = utcnow() - AUTO_ANSWER_INTERVAL
    if OutboxMail.select().where((OutboxMail.to_addr == user.email) & OutboxMail.automatic
                                 & (OutboxMail.created_at > since)).exists():
        return
    with mail_language(user):
        queue_mail(user.email, mailthread.subject_for(ticket.number, gettext("This request is closed")),
                   "\n".join([gettext("Your mail to request %(number)s was not added: the request is closed.",
                                      number=ticket.number),
                              gettext("If you need more help, please open a new request in SmilePass."), ""]),
                   automatic=True, in_reply_to=mailthread.thread_root(config, ticket.id))

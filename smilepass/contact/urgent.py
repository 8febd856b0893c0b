"""Urgent contact requests: billing-impacting issues, security concerns, escalations. They skip
the general queue: each is mailed straight to the support supervisors (admins when nobody holds
that role) and waits in the supervisors' Contact inbox until one of them marks it handled. A
supervisor answers in the app: the answer is mailed to the sender and kept with the message. The sender
may answer that mail: their reply joins the message's thread (smilepass/mailin) and reopens it."""
import datetime as dt

from flask import current_app
from flask_babel import force_locale
from peewee import JOIN, fn

from .. import audit
from ..db import database
from ..i18n import DEFAULT_LANGUAGE, in_english, lazy_gettext
from ..i18n import fast_gettext as gettext
from ..models import ContactReply, ContactRequest, EscalationRole, OutboxMail, Role, User, normalize_email, utcnow
from ..notifications import mailthread
from ..notifications.outbox import absolute_url, enqueue_send, mail_language

TOPICS = [
    ("billing", lazy_gettext("Billing-impacting issue")),
    ("security", lazy_gettext("Security concern")),
    ("escalation", lazy_gettext("Escalation")),
]
TOPIC_LABELS = dict(TOPICS)
MESSAGE_MAX = 5000
INBOX_PAGE = 50
STAFF_ROLES = (Role.SUPPORT.value, Role.ADMIN.value)


def supervisors() -> list[User]:
    """Who receives contact requests: active staff with the supervisor role, else active admins."""
    found = list(User.select().where((User.escalation_role == EscalationRole.SUPERVISOR.value)
                                     & User.role.in_(STAFF_ROLES) & User.is_active).order_by(User.id))
    if found:
        return found
    return list(User.select().where((User.role == Role.ADMIN.value) & User.is_active).order_by(User.id))


@in_english
def submit(name: str, email: str, topic: str, message: str, user: User | None, ip: str,
           now: dt.datetime | None = None) -> ContactRequest:
    """Save the request and mail every recipient, in one transaction; the mails go to the worker
    after it commits (a job started earlier could not see the rows)."""
    if topic not in TOPIC_LABELS:
        raise ValueError(f"unknown topic {topic!r}")
    with database.atomic():
        contact = ContactRequest.create(name=name.strip(), email=normalize_email(email), topic=topic,
                                        message=message.strip(), user=user.id if user else None, ip=ip[:64],
                                        created_at=now or utcnow())
        mails = [_mail(contact, recipient) for recipient in supervisors()]
        audit.record("contact_request", contact, detail=f"{TOPIC_LABELS[topic]} from {contact.email}",
                     actor=user)
    if current_app.config["SMTP_HOST"]:
        for mail in mails:
            enqueue_send(mail.id)
    return contact


def _mail(contact: ContactRequest, recipient: User) -> OutboxMail:
    # Urgent by design: mailed whatever the recipient's notification choices. The subject carries
    # no sender text (nothing typed by a stranger goes into a mail header).
    topic = TOPIC_LABELS[contact.topic]
    body = "\n".join([
        f"Urgent contact request #{contact.id}: {topic}", "",
        f"From: {contact.name} <{contact.email}>" + (" (signed in)" if contact.user_id else " (not signed in)"),
        f"Received: {contact.created_at:%Y-%m-%d %H:%M} UTC", "",
        contact.message, "",
        f"Answer it in the app (sign-in needed; the answer is mailed to the sender): "
        f"{absolute_url('contact.message', contact_id=contact.id)}",
        f"Contact inbox: {absolute_url('contact.inbox')}",
    ])
    return OutboxMail.create(to_addr=recipient.email, subject=f"Urgent contact #{contact.id}: {topic}", body=body)


def inbox(show_handled: bool, before: int | None = None) -> list[ContactRequest]:
    """Open requests (or all), newest first, a page at a time (ids below `before`)."""
    query = ContactRequest.select().order_by(ContactRequest.id.desc())
    if not show_handled:
        query = query.where(ContactRequest.handled_at.is_null())
    if before:
        query = query.where(ContactRequest.id < before)
    return list(query.limit(INBOX_PAGE))


def open_count() -> int:
    return ContactRequest.select().where(ContactRequest.handled_at.is_null()).count()


@in_english
def mark_handled(contact: ContactRequest, actor: User, now: dt.datetime | None = None) -> bool:
    """Returns False when someone already had (their name stays)."""
    now = now or utcnow()
    with database.atomic():
        changed = (ContactRequest.update(handled_by=actor.id, handled_at=now)
                   .where((ContactRequest.id == contact.id) & ContactRequest.handled_at.is_null()).execute())
        if changed:
            contact.handled_by, contact.handled_at = actor, now
            audit.record(
                "contact_handled", contact, detail=str(TOPIC_LABELS.get(contact.topic, contact.topic)), actor=actor
            )
    return bool(changed)


def thread(contact: ContactRequest) -> list[ContactReply]:
    """The answers given so far, oldest first, with their authors and mails."""
    return list(ContactReply.select(ContactReply, User, OutboxMail)
                .join(User, JOIN.LEFT_OUTER, on=(ContactReply.author == User.id)).switch(ContactReply)
                .join(OutboxMail, JOIN.LEFT_OUTER, on=(ContactReply.mail == OutboxMail.id))
                .where(ContactReply.contact == contact.id).order_by(ContactReply.id))


def reply_counts(contacts: list[ContactRequest]) -> dict[int, int]:
    """How many answers each of these messages has (for the inbox's rows)."""
    if not contacts:
        return {}
    query = (ContactReply.select(ContactReply.contact, fn.COUNT(ContactReply.id).alias("n"))
             .where(ContactReply.contact.in_([c.id for c in contacts])).group_by(ContactReply.contact))
    return {row.contact_id: row.n for row in query}


@in_english
def answer(contact: ContactRequest, author: User, body: str, handled: bool,
           now: dt.datetime | None = None) -> ContactReply:
    """Keep the answer with the message and mail it to the sender, in one transaction (the worker gets
    the mail after the commit); `handled` also marks the message handled, unless someone already had."""
    now = now or utcnow()
    body = body.strip()
    with database.atomic():
        config = current_app.config
        # Threaded under the message's own root, with a reply address only this sender's answer gets into.
        with _senders_language(contact):
            subject = gettext("Your urgent message #%(number)s to SmilePass", number=contact.id)
            text = _answer_mail_body(contact, author, body)
        mail = OutboxMail.create(to_addr=contact.email, subject=subject, body=text, created_at=now,
                                 message_id=mailthread.new_message_id(config),
                                 in_reply_to=mailthread.contact_thread_root(config, contact.id),
                                 reply_to=mailthread.contact_reply_address(config, contact.id, contact.email))
        reply = ContactReply.create(contact=contact.id, author=author.id, body=body, mail=mail.id, created_at=now)
        # Who answered and to which message, by id: the text may name a patient, the audit log outlives it.
        audit.record("contact_reply", contact, detail=f"reply #{reply.id} mailed to the sender", actor=author)
        if handled:
            mark_handled(contact, author, now)
    if current_app.config["SMTP_HOST"]:
        enqueue_send(mail.id)
    return reply


def _senders_language(contact: ContactRequest):
    """The answer goes out in the sender's language when they were signed in and chose one (anyone else:
    the source language; the form asks for no language)."""
    return mail_language(contact.user) if contact.user_id else force_locale(DEFAULT_LANGUAGE)


def _answer_mail_body(contact: ContactRequest, author: User, body: str) -> str:
    # The sender's own words are not repeated: they have them, and a mail is no place for more text
    # than needed. The answer is what the supervisor wrote, signed with their name.
    return "\n".join([
        gettext("An answer to the message you sent to the SmilePass support supervisors on %(date)s "
                "(#%(number)s, %(topic)s):", date=f"{contact.created_at:%Y-%m-%d}", number=contact.id,
                topic=TOPIC_LABELS[contact.topic]), "",
        body, "",
        gettext("%(name)s, SmilePass support", name=author.display_name),
        "",
        gettext("You can answer this mail: your reply is added to your message."),
        gettext("For anything new, please use the Contact us form: %(link)s", link=absolute_url('contact.contact')),
    ])


@in_english
def sender_replied(contact: ContactRequest, body: str,
                   now: dt.datetime | None = None) -> tuple[ContactReply, list[OutboxMail]]:
    """The sender's answer by mail (smilepass/mailin checked token and address): kept in the message's
    thread, the message reopened if it was handled, and the supervisors told (by id and link: the text
    stays in the app). Call inside the caller's transaction; `hand_over_mails(mails)` after it commits."""
    now = now or utcnow()
    reply = ContactReply.create(contact=contact.id, author=None, body=body.strip(), from_sender=True,
                                created_at=now)
    audit.record("contact_reply_mail", contact, detail=f"reply #{reply.id} by email from the sender",
                 actor=contact.user if contact.user_id else None)
    reopened = (ContactRequest.update(handled_by=None, handled_at=None)
                .where((ContactRequest.id == contact.id) & ContactRequest.handled_at.is_null(False)).execute())
    if reopened:
        contact.handled_by, contact.handled_at = None, None
        audit.record("contact_reopened", contact, detail="the sender answered by email")
    return reply, [_reply_notice(contact, recipient, bool(reopened)) for recipient in supervisors()]


def _reply_notice(contact: ContactRequest, recipient: User, reopened: bool) -> OutboxMail:
    topic = TOPIC_LABELS[contact.topic]
    body = "\n".join([
        f"The sender of urgent contact request #{contact.id} ({topic}) answered by email."
        + (" The request is open again." if reopened else ""), "",
        f"Read it in the app (sign-in needed): {absolute_url('contact.message', contact_id=contact.id)}",
    ])
    return OutboxMail.create(to_addr=recipient.email, subject=f"Urgent contact #{contact.id}: the sender answered",
                             body=body)


def hand_over_mails(mails: list[OutboxMail]) -> None:
    """After the transaction that wrote them: to the worker (without SMTP they wait in the outbox)."""
    if current_app.config["SMTP_HOST"]:
        for mail in mails:
            enqueue_send(mail.id)

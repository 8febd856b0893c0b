"""Urgent contact requests: billing-impacting issues, security concerns, escalations. They skip
the general queue: each is mailed straight to the support supervisors (admins when nobody holds
that role) and waits in the supervisors' Contact inbox until one of them marks it handled."""
import datetime as dt

from flask import current_app

from .. import audit
from ..db import database
from ..i18n import in_english, lazy_gettext
from ..mail import enqueue_send
from ..models import ContactRequest, EscalationRole, OutboxMail, Role, User, normalize_email, utcnow
from ..notifications import absolute_url

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


def may_read_inbox(user: User) -> bool:
    return user.is_authenticated and (user.is_admin or (
        user.is_staff and user.escalation_role == EscalationRole.SUPERVISOR.value))


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
        f"Contact inbox (sign-in needed): {absolute_url('contact.inbox')}",
        "Reply to the sender by email, then mark the request handled in the inbox.",
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
            audit.record("contact_handled", contact, detail=str(TOPIC_LABELS.get(contact.topic, contact.topic)), actor=actor)
    return bool(changed)

"""What goes out and comes in besides the ticket thread: the mail outbox, in-app notifications and the
urgent Contact us messages."""
import peewee as pw

from .accounts import EscalationRole, Role, User
from .base import BaseModel, utcnow
from .tickets import Ticket


class OutboxMail(BaseModel):
    to_addr = pw.CharField(max_length=254)
    subject = pw.CharField(max_length=200)
    body = pw.TextField()
    created_at = pw.DateTimeField(default=utcnow, index=True)
    sent_at = pw.DateTimeField(null=True)
    attempts = pw.IntegerField(default=0)
    last_error = pw.TextField(default="")
    # Threading (notifications/mailthread.py): this mail's own Message-ID, the ticket thread's root it
    # refers to, and the tokened address answers go to; "" for mails about no ticket.
    message_id = pw.CharField(max_length=255, default="")
    in_reply_to = pw.CharField(max_length=255, default="")
    reply_to = pw.CharField(max_length=254, default="")
    # An automatic answer to an incoming mail (mailin): at most one per address per hour.
    automatic = pw.BooleanField(default=False)


class Notification(BaseModel):
    """An in-app notification (the count in the header); its email, if any, is in the outbox."""
    user = pw.ForeignKeyField(User, backref="notifications", on_delete="CASCADE")
    ticket = pw.ForeignKeyField(Ticket, null=True, on_delete="CASCADE")
    kind = pw.CharField(max_length=40)
    text = pw.CharField(max_length=300)
    created_at = pw.DateTimeField(default=utcnow)
    read_at = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("user", "read_at", "id"), False),)

    @classmethod
    def get_visible(cls, notification_id: int, viewer: User):
        """Only the user it was sent to sees a notification."""
        return cls.get_or_none((cls.id == notification_id) & (cls.user == viewer.id))


# Who reads the Contact inbox: admins and support supervisors.
CONTACT_INBOX_READERS = (Role.ADMIN, EscalationRole.SUPERVISOR)


class ContactRequest(BaseModel):
    """The urgent Contact us form (billing, security, escalation): straight to the supervisors, and
    open to people who cannot sign in, so the sender may be no user at all."""
    name = pw.CharField(max_length=120)
    email = pw.CharField(max_length=254)
    user = pw.ForeignKeyField(User, null=True, backref="contact_requests", on_delete="SET NULL")
    topic = pw.CharField(max_length=20)
    message = pw.TextField()
    ip = pw.CharField(max_length=64, default="")
    created_at = pw.DateTimeField(default=utcnow, index=True)
    handled_by = pw.ForeignKeyField(User, null=True, backref="contacts_handled", on_delete="SET NULL")
    handled_at = pw.DateTimeField(null=True)

    @classmethod
    def get_visible(cls, contact_id: int, viewer: User):
        """Only the Contact inbox's readers open a request by id."""
        return cls.get_if_allowed(viewer.holds(*CONTACT_INBOX_READERS), contact_id)

class ContactReply(BaseModel):
    """One entry of a Contact us message's thread: a supervisor's answer, written in the app and mailed to
    the sender (the mail is the outbox row that carried it, None once it is gone), or the sender's own
    answer to such a mail (`from_sender`, taken by smilepass/mailin; no author, no mail)."""
    contact = pw.ForeignKeyField(ContactRequest, backref="replies", on_delete="CASCADE")
    author = pw.ForeignKeyField(User, null=True, backref="contact_replies", on_delete="SET NULL")
    body = pw.TextField()
    mail = pw.ForeignKeyField(OutboxMail, null=True, on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow)
    from_sender = pw.BooleanField(default=False)

    class Meta:
        indexes = ((("contact", "id"), False),)


class InboundMail(BaseModel):
    """One mail that came in (smilepass/mailin), whatever became of it: its Message-ID is taken once
    only, and a refused mail keeps the reason. The mail itself is not kept (it may name a patient)."""
    message_id = pw.CharField(max_length=255, unique=True)
    status = pw.CharField(max_length=20)  # accepted, refused, ignored, closed
    reason = pw.CharField(max_length=300, default="")
    sender = pw.CharField(max_length=254, default="")
    ticket = pw.ForeignKeyField(Ticket, null=True, on_delete="SET NULL")
    user = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")
    contact = pw.ForeignKeyField(ContactRequest, null=True, on_delete="SET NULL")  # a reply to a Contact us answer
    authentication = pw.CharField(max_length=300, default="")  # the receiving server's dkim/spf/dmarc verdicts
    received_at = pw.DateTimeField(default=utcnow, index=True)

"""Support requests and everything in their thread: replies and internal notes, status changes,
screenshots, structured case details, escalation steps, drafts and canned replies."""
import enum

import peewee as pw

from ..db import prepared
from ..i18n import lazy_gettext
from .accounts import Tier, User
from .base import BaseModel, utcnow
from .cases import Case


class Priority(enum.IntEnum):
    LOW = 0
    NORMAL = 1
    HIGH = 2
    URGENT = 3

    @property
    def label(self) -> str:
        """In the current language (priorities are stored as numbers)."""
        return str(PRIORITY_LABELS[self])


class Status(enum.IntEnum):
    OPEN = 0
    IN_PROGRESS = 1
    WAITING = 2
    RESOLVED = 3
    CLOSED = 4

    @property
    def label(self) -> str:
        """In the current language (statuses are stored as numbers)."""
        return str(STATUS_LABELS[self])

    @property
    def slug(self) -> str:
        return self.name.lower().replace("_", "-")


# Display names, translated when shown (lazy_gettext): what is stored is the number.
PRIORITY_LABELS = {
    Priority.LOW: lazy_gettext("Low"),
    Priority.NORMAL: lazy_gettext("Normal"),
    Priority.HIGH: lazy_gettext("High"),
    Priority.URGENT: lazy_gettext("Urgent"),
}
STATUS_LABELS = {
    Status.OPEN: lazy_gettext("Open"),
    Status.IN_PROGRESS: lazy_gettext("In Progress"),
    Status.WAITING: lazy_gettext("Waiting on user"),
    Status.RESOLVED: lazy_gettext("Resolved"),
    Status.CLOSED: lazy_gettext("Closed"),
}

# Categories are stored as their English names; these are their display names, in order.
CATEGORY_LABELS = {
    "Technical Issues & Bugs": lazy_gettext("Technical Issues & Bugs"),
    "Case Submission": lazy_gettext("Case Submission"),
    "Scan & File Validation": lazy_gettext("Scan & File Validation"),
    "Treatment Plan Feedback": lazy_gettext("Treatment Plan Feedback"),
    "Production & Shipping": lazy_gettext("Production & Shipping"),
    "Warranty & Replacement": lazy_gettext("Warranty & Replacement"),
    "Billing & Insurance": lazy_gettext("Billing & Insurance"),
    "Account & Access": lazy_gettext("Account & Access"),
}
CATEGORIES = list(CATEGORY_LABELS)
DEFAULT_CATEGORY = CATEGORIES[0]


def category_label(category: str) -> str:
    """Other (older or renamed) categories show as stored."""
    label = CATEGORY_LABELS.get(category)
    return str(label) if label is not None else category


class Ticket(BaseModel):
    requester = pw.ForeignKeyField(User, backref="tickets", on_delete="RESTRICT")
    title = pw.CharField(max_length=120)
    description = pw.TextField()
    priority = pw.SmallIntegerField(default=Priority.LOW.value)
    category = pw.CharField(max_length=60, default=DEFAULT_CATEGORY)
    status = pw.SmallIntegerField(default=Status.OPEN.value)
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)
    response_due_at = pw.DateTimeField(null=True)
    first_response_at = pw.DateTimeField(null=True)
    # The case the request is about, if any; its handle shows in the ticket table.
    case = pw.ForeignKeyField(Case, null=True, backref="tickets", on_delete="SET NULL")
    # Service levels (sla.py): the clinic's tier when filed orders the staff queue; next_due_at is the
    # running deadline (first response, then resolution), empty while paused or once resolved.
    assignee = pw.ForeignKeyField(User, null=True, backref="assigned_tickets", on_delete="SET NULL")
    tier = pw.SmallIntegerField(default=Tier.STANDARD.value)
    resolution_due_at = pw.DateTimeField(null=True)
    next_due_at = pw.DateTimeField(null=True)
    sla_paused_at = pw.DateTimeField(null=True)
    resolved_at = pw.DateTimeField(null=True)
    response_minutes = pw.IntegerField(null=True)  # business minutes to the first staff reply
    resolution_minutes = pw.IntegerField(null=True)  # business minutes to Resolved, pauses excluded
    response_breached = pw.BooleanField(default=False)
    resolution_breached = pw.BooleanField(default=False)
    escalation_level = pw.SmallIntegerField(default=0)  # 0: general queue; else EscalationRole.level
    escalation_owner = pw.ForeignKeyField(User, null=True, backref="escalated_tickets", on_delete="SET NULL")
    # What makes a ticket quick to resolve: what was tried (asked for), browser and device (recorded).
    tried = pw.TextField(default="")
    client = pw.CharField(max_length=160, default="")

    class Meta:
        # One index per sortable column, for the staff view (all tickets) and for a clinician's own
        # tickets, each ending in id so that ties page stably.
        indexes = (
            (("created_at", "id"), False),
            (("priority", "id"), False),
            (("title", "id"), False),
            (("category", "id"), False),
            (("status", "id"), False),
            # Staff's table with a status filter, in each sort's order (migration 0027: without them SQLite
            # read every ticket of the status and sorted them, 11-19 ms a page at 100,000 tickets).
            (("status", "created_at", "id"), False),
            (("status", "priority", "id"), False),
            (("status", "title", "id"), False),
            (("status", "category", "id"), False),
            (("requester", "created_at", "id"), False),
            (("requester", "priority", "id"), False),
            (("requester", "title", "id"), False),
            (("requester", "category", "id"), False),
            (("requester", "status", "id"), False),
            # A clinician's tickets a search found, with their status for the filter counts, read from here
            # rather than from each ticket's row (migration 0026: 577 of them 0.74 -> 0.28 ms).
            (("requester", "id", "status"), False),
            (("case", "id"), False),
            (("assignee", "status"), False),
            (("escalation_owner", "status"), False),
            (("next_due_at",), False),
            # Practice Insights (migration 0012): range scans that read the index alone.
            (("first_response_at", "response_minutes", "response_breached", "requester"), False),
            (("resolved_at", "resolution_minutes", "resolution_breached", "requester"), False),
            (("status", "category", "requester"), False),
            (("requester", "resolved_at"), False),
        )
        # The staff queue's order is kept in queue_rank, a column the database generates (migration 0022,
        # staff/listing.py): not a field, as nothing may write it. Named here, with the indexes that read
        # each queue tab in that order, so the migrations test holds the schema to them as to the fields.
        # Each index: (columns, the condition of a partial index or "").
        generated_columns = ("queue_rank",)
        generated_indexes = {
            "ticket_queue_assignee": (("assignee_id", "queue_rank", "next_due_at", "id"), ""),
            "ticket_queue_escalation": (("escalation_owner_id", "queue_rank", "next_due_at", "id"), ""),
            # The Unassigned tab (migration 0024): PostgreSQL takes no order from the first index under
            # `assignee_id IS NULL`.
            "ticket_queue_unassigned": (("queue_rank", "next_due_at", "id"), "assignee_id IS NULL"),
        }

    @property
    def number(self) -> str:
        return ticket_number(self.id)

    @property
    def priority_enum(self) -> Priority:
        return Priority(self.priority)

    @property
    def status_enum(self) -> Status:
        return Status(self.status)

    @classmethod
    def visible_to(cls, user: User):
        query = cls.select()
        if not user.is_staff:
            query = query.where(cls.requester == user.id)
        return query

    @classmethod
    def get_visible(cls, ticket_id: int, user: User):
        """The ticket if this user may see it, else None (callers answer 404 either way)."""
        return cls.visible_to(user).where(cls.id == ticket_id).first()

    def is_participant(self, user: User) -> bool:
        """Whether the user takes part in this ticket's conversation, so a mail to them may quote it: an
        active user who may see the ticket and is its requester, assignee or escalation owner, or wrote
        a public reply in it."""
        if not user.is_active or Ticket.get_visible(self.id, user) is None:
            return False
        if user.id in (self.requester_id, self.assignee_id, self.escalation_owner_id):
            return True
        return Message.select(Message.id).where((Message.ticket == self.id) & (Message.author == user.id)
                                                & ~Message.internal).exists()

    @classmethod
    def status_counts(cls, user: User) -> dict[int, int]:
        return TicketCount.for_user(user)


class TicketCount(BaseModel):
    """Tickets per requester and status, kept in step with every insert and status change, so the
    quick-filter counts read a few rows instead of counting every ticket on each page view."""
    requester = pw.ForeignKeyField(User, on_delete="CASCADE")
    status = pw.SmallIntegerField()
    n = pw.IntegerField(default=0)

    class Meta:
        primary_key = pw.CompositeKey("requester", "status")

    @classmethod
    def bump(cls, requester_id: int, status: int, delta: int) -> None:
        (cls.insert(requester=requester_id, status=status, n=delta)
         .on_conflict(conflict_target=[cls.requester, cls.status], update={cls.n: cls.n + delta})
         .execute())

    @classmethod
    def for_user(cls, user: User) -> dict[int, int]:
        def build(p):
            query = cls.select(cls.status, pw.fn.SUM(cls.n).alias("total")).group_by(cls.status)
            return query if user.is_staff else query.where(cls.requester == p.requester)

        # Plain rows: two numbers each, no model objects (this runs on every view of the ticket table).
        rows = prepared(("status-counts", user.is_staff), build, raw_rows=True, requester=user.id)
        return {status: int(total) for status, total in rows if total}

    @classmethod
    def recount(cls) -> None:
        """Rebuild from the tickets themselves (after bulk loads, or to repair)."""
        cls.delete().execute()
        totals = (Ticket.select(Ticket.requester, Ticket.status, pw.fn.COUNT(pw.SQL("*")))
                  .group_by(Ticket.requester, Ticket.status))
        cls.insert_from(totals, [cls.requester, cls.status, cls.n]).execute()


class QueueCount(BaseModel):
    """Open tickets per staff-queue tab owner, kept by database triggers (migration 0022) on every
    insert, delete and change of status, assignee or escalation owner, so the queue's tab counts read
    a row instead of counting tens of thousands of open tickets on each view.
    kind ASSIGNEE counts by assignee (owner 0: unassigned), kind ESCALATION by escalation owner."""
    ASSIGNEE, ESCALATION = 0, 1
    UNASSIGNED = 0

    kind = pw.SmallIntegerField()
    owner_id = pw.IntegerField()
    n = pw.IntegerField(default=0)

    class Meta:
        primary_key = pw.CompositeKey("kind", "owner_id")


def ticket_number(ticket_id: int) -> str:
    return f"SP-{ticket_id:06d}"


RESOLUTIONS = [
    ("replacement", lazy_gettext("Replacement tray")),
    ("refund", lazy_gettext("Refund")),
    ("guidance", lazy_gettext("In-chair repair guidance")),
]


class CaseDetails(BaseModel):
    """The structured part of a request about a case. Tooth numbers are kept in FDI notation
    (comma-separated) and shown in the clinic's preferred notation."""
    ticket = pw.ForeignKeyField(Ticket, primary_key=True, backref="case_details", on_delete="CASCADE")
    teeth = pw.CharField(max_length=200, default="")
    last_aligner_delivered = pw.DateField(null=True)
    aligner_step = pw.SmallIntegerField(null=True)
    tracking_number = pw.CharField(max_length=80, default="")
    preferred_resolution = pw.CharField(max_length=16, default="")


class Message(BaseModel):
    """A reply in a ticket's thread. Internal notes are for staff eyes only."""
    ticket = pw.ForeignKeyField(Ticket, backref="messages", on_delete="CASCADE")
    author = pw.ForeignKeyField(User, on_delete="RESTRICT")
    body = pw.TextField()
    internal = pw.BooleanField(default=False)
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("ticket", "created_at"), False),)


class StatusChange(BaseModel):
    ticket = pw.ForeignKeyField(Ticket, backref="status_changes", on_delete="CASCADE")
    actor = pw.ForeignKeyField(User, on_delete="RESTRICT")
    from_status = pw.SmallIntegerField()
    to_status = pw.SmallIntegerField()
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("ticket", "created_at"), False),)


class Attachment(BaseModel):
    ticket = pw.ForeignKeyField(Ticket, backref="attachments", on_delete="CASCADE")
    message = pw.ForeignKeyField(Message, null=True, backref="attachments", on_delete="CASCADE")
    uploader = pw.ForeignKeyField(User, on_delete="RESTRICT")
    # What the user called it: display text only, never a path.
    original_name = pw.CharField(max_length=255)
    stored_name = pw.CharField(max_length=64, unique=True)
    thumb_name = pw.CharField(max_length=64, null=True)
    content_type = pw.CharField(max_length=64)
    size = pw.IntegerField()
    sha256 = pw.CharField(max_length=64)
    width = pw.IntegerField(null=True)
    height = pw.IntegerField(null=True)
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("ticket",), False),)

    @classmethod
    def get_visible(cls, attachment_id: int, viewer: User):
        """The attachment if the viewer may see its ticket and its message, else None."""
        attachment = cls.shown_to(cls.select(), viewer).where(cls.id == attachment_id).first()
        if attachment is None or Ticket.get_visible(attachment.ticket_id, viewer) is None:
            return None
        return attachment

    @classmethod
    def shown_to(cls, query, user: User):
        """Narrow an attachment query to what this user may see: a screenshot sent with a staff-only
        internal note is staff-only too (as its scans are, see Scan.shown_to)."""
        if user.is_staff:
            return query
        internal = Message.select(Message.id).where(Message.internal == True)  # noqa: E712
        return query.where(cls.message.is_null() | cls.message.not_in(internal))


class Escalation(BaseModel):
    """One step up the escalation path: who moved it (None: the SLA job), to whom, and why."""
    ticket = pw.ForeignKeyField(Ticket, backref="escalations", on_delete="CASCADE")
    level = pw.SmallIntegerField()
    owner = pw.ForeignKeyField(User, null=True, backref="escalations_owned", on_delete="SET NULL")
    actor = pw.ForeignKeyField(User, null=True, backref="escalations_made", on_delete="SET NULL")
    reason = pw.TextField()
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("ticket", "created_at"), False), (("created_at", "level", "actor"), False))


class CannedReply(BaseModel):
    title = pw.CharField(max_length=120, unique=True)
    body = pw.TextField()
    created_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)

    @classmethod
    def get_visible(cls, reply_id: int, viewer: User):
        """Canned replies are staff's own tool."""
        return cls.get_if_allowed(viewer.is_staff, reply_id)


class Draft(BaseModel):
    """What one user typed into the New Request form (ticket empty) or a ticket's reply box, kept
    until sent or discarded. It may hold patient identifiers, so it is only ever read by its user
    and goes with the user or the ticket (drafts.py)."""
    user = pw.ForeignKeyField(User, backref="drafts", on_delete="CASCADE")
    kind = pw.CharField(max_length=20)  # drafts.NEW_REQUEST or drafts.REPLY
    ticket = pw.ForeignKeyField(Ticket, null=True, backref="drafts", on_delete="CASCADE")
    content = pw.TextField()  # JSON: form field name -> text as typed
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("user", "kind", "ticket"), True),)

    @classmethod
    def of(cls, user_id: int, kind: str, ticket_id: int | None):
        """The user's draft of this kind (for this ticket), or None."""
        # Looked up on every Support page and ticket view: the SQL is built once (see db.prepared).
        if ticket_id is None:
            rows = prepared("draft-new-request", lambda p: cls.select().where(
                (cls.user == p.user) & (cls.kind == p.kind) & cls.ticket.is_null()), user=user_id, kind=kind)
        else:
            rows = prepared("draft-reply", lambda p: cls.select().where(
                (cls.user == p.user) & (cls.kind == p.kind) & (cls.ticket == p.ticket)),
                user=user_id, kind=kind, ticket=ticket_id)
        return next(iter(rows), None)

    @classmethod
    def forget_ticket(cls, ticket_id: int) -> int:
        """Everyone's reply drafts of a ticket that was closed: no one can send them any more."""
        return cls.delete().where(cls.ticket == ticket_id).execute()


# NULL tickets never collide in a unique index, so a partial one keeps New Request drafts to one per user.
Draft.add_index(Draft.index(Draft.user, Draft.kind, unique=True, where=Draft.ticket.is_null(),
                            name="draft_user_kind_without_ticket"))

"""Database models. Queries that views need live here as class methods, so views stay thin."""
import datetime as dt
import enum

import peewee as pw

from .db import database, prepared
from .i18n import lazy_gettext


def utcnow() -> dt.datetime:
    # Stored naive in UTC on both SQLite and PostgreSQL; templates format it.
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class BaseModel(pw.Model):
    class Meta:
        database = database
        legacy_table_names = False


class Role(str, enum.Enum):
    CLINICIAN = "clinician"
    SUPPORT = "support"
    ADMIN = "admin"


class User(BaseModel):
    email = pw.CharField(max_length=254, unique=True)
    name = pw.CharField(max_length=120, default="")
    role = pw.CharField(max_length=20, default=Role.CLINICIAN.value, index=True)
    password_hash = pw.CharField(max_length=255)
    # Changes whenever the password changes; part of the login session id, so that every other
    # session ends with it.
    session_stamp = pw.CharField(max_length=64)
    is_active = pw.BooleanField(default=True)
    ticket_sort = pw.CharField(max_length=20, default="-date")
    # A step on the escalation path (EscalationRole), assigned by admins; "" for none.
    escalation_role = pw.CharField(max_length=20, default="", index=True)
    # The UI language chosen under My Account → Language (a key of i18n.LANGUAGES); "" follows the
    # browser's Accept-Language.
    language = pw.CharField(max_length=10, default="")
    created_at = pw.DateTimeField(default=utcnow)
    last_login_at = pw.DateTimeField(null=True)

    # flask-login protocol
    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_stamp}"

    @property
    def is_staff(self) -> bool:
        return self.role in (Role.SUPPORT.value, Role.ADMIN.value)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN.value

    @property
    def display_name(self) -> str:
        return self.name or self.email

    @classmethod
    def by_email(cls, email: str):
        return cls.get_or_none(cls.email == normalize_email(email))


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


class EscalationRole(str, enum.Enum):
    """The escalation path, in order: level 1 is the supervisor, level 3 the operations manager."""
    SUPERVISOR = "supervisor"
    LIAISON = "liaison"
    OPERATIONS = "operations"

    @property
    def label(self) -> str:
        return str(ESCALATION_ROLE_LABELS[self.value])

    @property
    def level(self) -> int:
        return list(EscalationRole).index(self) + 1

    @classmethod
    def for_level(cls, level: int):
        path = list(cls)
        return path[level - 1] if 1 <= level <= len(path) else None


class Tier(enum.IntEnum):
    """A clinic's support plan. Higher tiers' tickets come first in the staff queue."""
    STANDARD = 0
    PRO = 1
    ENTERPRISE = 2

    @property
    def label(self) -> str:
        return str(TIER_LABELS[self.value])


# Display names, translated when shown (lazy_gettext): what is stored is the value.
ESCALATION_ROLE_LABELS = {"supervisor": lazy_gettext("Support supervisor"), "liaison": lazy_gettext("Clinical liaison"),
                          "operations": lazy_gettext("Operations manager")}
TIER_LABELS = {0: lazy_gettext("Standard"), 1: lazy_gettext("Pro (Priority Support)"), 2: lazy_gettext("Enterprise")}


class Clinic(BaseModel):
    name = pw.CharField(max_length=120, unique=True)
    tier = pw.SmallIntegerField(default=Tier.STANDARD.value)
    # Enterprise: new tickets are assigned to this person, who also handles their escalations.
    account_manager = pw.ForeignKeyField(User, null=True, backref="managed_clinics", on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow)

    @property
    def tier_enum(self) -> Tier:
        return Tier(self.tier)


class ClinicMember(BaseModel):
    """Which clinic a clinician works for (at most one)."""
    user = pw.ForeignKeyField(User, primary_key=True, backref="membership", on_delete="CASCADE")
    clinic = pw.ForeignKeyField(Clinic, backref="members", on_delete="CASCADE")


class LoginThrottle(BaseModel):
    """Failed sign-ins per email address, known or not, so that a lock says nothing about
    whether the account exists."""
    email = pw.CharField(max_length=254, unique=True)
    failures = pw.IntegerField(default=0)
    locked_until = pw.DateTimeField(null=True)
    updated_at = pw.DateTimeField(default=utcnow)


class PasswordReset(BaseModel):
    user = pw.ForeignKeyField(User, backref="resets", on_delete="CASCADE")
    token_hash = pw.CharField(max_length=64, unique=True)
    created_at = pw.DateTimeField(default=utcnow)
    expires_at = pw.DateTimeField()
    used_at = pw.DateTimeField(null=True)


class OutboxMail(BaseModel):
    to_addr = pw.CharField(max_length=254)
    subject = pw.CharField(max_length=200)
    body = pw.TextField()
    created_at = pw.DateTimeField(default=utcnow, index=True)
    sent_at = pw.DateTimeField(null=True)
    attempts = pw.IntegerField(default=0)
    last_error = pw.TextField(default="")


class Case(BaseModel):
    """A patient's aligner case. Its shipments, labels and patient links are in cases/models.py;
    it lives here because tickets and scans point at it."""
    case_number = pw.CharField(max_length=40, unique=True)
    patient_name = pw.CharField(max_length=120)
    patient_dob = pw.DateField()
    clinic_patient_id = pw.CharField(max_length=60, default="")
    # The treating clinician owns the case: only they (and staff) see it.
    clinician = pw.ForeignKeyField(User, backref="cases", on_delete="RESTRICT")
    treatment_plan = pw.CharField(max_length=200, default="")
    arches = pw.CharField(max_length=8, default="both")
    notes = pw.TextField(default="")
    # The state of the case's newest shipment ("" when it has none), kept in step by shipments.py
    # so the list can sort, filter and count on it without a join.
    latest_state = pw.CharField(max_length=16, default="")
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        # One index per sortable column, for staff (all cases) and for one clinician's cases.
        indexes = (
            (("created_at", "id"), False),
            (("patient_name", "id"), False),
            (("treatment_plan", "id"), False),
            (("latest_state", "id"), False),
            (("clinician", "created_at", "id"), False),
            (("clinician", "case_number"), False),
            (("clinician", "patient_name", "id"), False),
            (("clinician", "treatment_plan", "id"), False),
            (("clinician", "latest_state", "id"), False),
        )

    @classmethod
    def visible_to(cls, user: User):
        query = cls.select()
        return query if user.is_staff else query.where(cls.clinician == user.id)

    @classmethod
    def get_visible(cls, case_id: int, user: User):
        """The case if this user may see it, else None (callers answer 404 either way)."""
        return cls.visible_to(user).where(cls.id == case_id).first()


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

CATEGORIES = [
    "Technical Issues & Bugs",
    "Case Submission",
    "Scan & File Validation",
    "Treatment Plan Feedback",
    "Production & Shipping",
    "Warranty & Replacement",
    "Billing & Insurance",
    "Account & Access",
]
DEFAULT_CATEGORY = CATEGORIES[0]


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
            (("requester", "created_at", "id"), False),
            (("requester", "priority", "id"), False),
            (("requester", "title", "id"), False),
            (("requester", "category", "id"), False),
            (("requester", "status", "id"), False),
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

        rows = prepared(("status-counts", user.is_staff), build, requester=user.id)
        return {row.status: int(row.total) for row in rows if row.total}

    @classmethod
    def recount(cls) -> None:
        """Rebuild from the tickets themselves (after bulk loads, or to repair)."""
        cls.delete().execute()
        totals = (Ticket.select(Ticket.requester, Ticket.status, pw.fn.COUNT(pw.SQL("*")))
                  .group_by(Ticket.requester, Ticket.status))
        cls.insert_from(totals, [cls.requester, cls.status, cls.n]).execute()


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


class ScanState(str, enum.Enum):
    WAITING = "waiting"        # saved, but Redis was unreachable: the sweep hands it to a worker later
    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class Scan(BaseModel):
    """An intraoral scan (STL/PLY) attached to a ticket, a case or both, and the result of its latest
    repair run."""
    ticket = pw.ForeignKeyField(Ticket, null=True, backref="scans", on_delete="CASCADE")
    case = pw.ForeignKeyField(Case, null=True, backref="scans", on_delete="SET NULL")
    message = pw.ForeignKeyField(Message, null=True, backref="scans", on_delete="CASCADE")
    uploader = pw.ForeignKeyField(User, on_delete="RESTRICT")
    original_name = pw.CharField(max_length=255)  # display text only
    stored_name = pw.CharField(max_length=64, unique=True)
    size = pw.BigIntegerField()
    sha256 = pw.CharField(max_length=64)
    file_format = pw.CharField(max_length=16)
    triangles = pw.IntegerField()
    state = pw.CharField(max_length=16, default=ScanState.QUEUED.value, index=True)
    stage = pw.CharField(max_length=32, default="")
    progress = pw.FloatField(default=0.0)
    run = pw.IntegerField(default=1)  # bumped by each re-run; a job for an older run does nothing
    attempts = pw.IntegerField(default=0)
    options = pw.TextField(default="{}")
    error = pw.TextField(default="")
    verdict = pw.CharField(max_length=16, default="")
    verdict_reason = pw.TextField(default="")
    report = pw.TextField(default="")
    output_stem = pw.CharField(max_length=64, default="")
    repaired_name = pw.CharField(max_length=80, default="")
    repaired_stl_name = pw.CharField(max_length=80, default="")
    preview_before_name = pw.CharField(max_length=80, default="")
    preview_after_name = pw.CharField(max_length=80, default="")
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)
    started_at = pw.DateTimeField(null=True)
    finished_at = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("ticket",), False), (("case", "id"), False))

    @property
    def state_enum(self) -> ScanState:
        return ScanState(self.state)

    @property
    def busy(self) -> bool:
        return self.state in (ScanState.WAITING.value, ScanState.QUEUED.value, ScanState.PROCESSING.value)

    @property
    def job_id(self) -> str:
        return f"scan-{self.id}-run{self.run}"

    @classmethod
    def shown_to(cls, query, user: User):
        """Narrow a scan query to what this user may see of it: a scan sent with a staff-only
        internal note is staff-only too."""
        if user.is_staff:
            return query
        internal = Message.select(Message.id).where(Message.internal == True)  # noqa: E712
        return query.where(cls.message.is_null() | cls.message.not_in(internal))

    @classmethod
    def get_visible(cls, scan_id: int, user: User):
        """The scan if this user may see its ticket or its case, else None (callers answer 404
        either way)."""
        scan = cls.get_or_none(cls.id == scan_id)
        if scan is None or (not user.is_staff and scan.message_id is not None and scan.message.internal):
            return None
        if scan.ticket_id is not None and Ticket.get_visible(scan.ticket_id, user) is not None:
            return scan
        if scan.case_id is not None and Case.get_visible(scan.case_id, user) is not None:
            return scan
        return None


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


class Setting(BaseModel):
    """A clinic-wide setting admins change at run time. Keys, types and defaults are in settings.py."""
    key = pw.CharField(max_length=60, primary_key=True)
    value = pw.TextField()
    updated_at = pw.DateTimeField(default=utcnow)


class AuditLogIsAppendOnly(Exception):
    """Audit rows are written once and never changed or removed."""


class AuditLog(BaseModel):
    """Who did what to which object, when, from where. Never the patient data itself (audit.record
    writes the rows). Rows are only ever added: whatever would change or remove one raises
    AuditLogIsAppendOnly, and triggers (migration 0009) make the database itself refuse."""
    # No ON DELETE action: SET NULL would be an UPDATE of audit rows. Users are deactivated, never
    # deleted, and actor_email says who it was in any case.
    actor = pw.ForeignKeyField(User, null=True)
    actor_email = pw.CharField(max_length=254, default="")
    action = pw.CharField(max_length=60)
    object_type = pw.CharField(max_length=40, default="")
    object_id = pw.CharField(max_length=40, default="")
    detail = pw.TextField(default="")
    ip = pw.CharField(max_length=64, default="")
    created_at = pw.DateTimeField(default=utcnow, index=True)

    class Meta:
        # Admin → Audit log lists newest first a page at a time (id below the last one shown); each
        # filter walks its own index in that order instead of sorting every matching row.
        indexes = (
            (("action", "id"), False),
            (("actor_email", "id"), False),
            (("object_type", "object_id", "id"), False),
            (("ip", "id"), False),
        )

    def save(self, *args, **kwargs):
        if self._pk is not None:
            raise AuditLogIsAppendOnly("An audit row cannot be changed once written.")
        return super().save(*args, **kwargs)

    def delete_instance(self, *args, **kwargs):
        raise AuditLogIsAppendOnly("Audit rows cannot be deleted.")

    @classmethod
    def update(cls, *args, **kwargs):
        raise AuditLogIsAppendOnly("Audit rows cannot be changed.")

    @classmethod
    def delete(cls):
        raise AuditLogIsAppendOnly("Audit rows cannot be deleted.")

    @classmethod
    def replace(cls, *args, **kwargs):
        raise AuditLogIsAppendOnly("Audit rows cannot be replaced.")

    @classmethod
    def replace_many(cls, *args, **kwargs):
        raise AuditLogIsAppendOnly("Audit rows cannot be replaced.")

    @classmethod
    def matching(cls, actor_email="", action="", object_type="", object_id="", since=None, until=None, ip=""):
        """Rows that pass every filter given (empty ones are ignored); since/until are datetimes,
        until exclusive."""
        query = cls.select()
        if actor_email:
            query = query.where(cls.actor_email == actor_email)
        if action:
            query = query.where(cls.action == action)
        if object_type:
            query = query.where(cls.object_type == object_type)
        if object_id:
            query = query.where(cls.object_id == object_id)
        if since is not None:
            query = query.where(cls.created_at >= since)
        if until is not None:
            query = query.where(cls.created_at < until)
        if ip:
            query = query.where(cls.ip == ip)
        return query

    @classmethod
    def newest_first(cls, query, before: int | None, limit: int) -> list:
        """One page of query, newest first, of rows older than the row `before` (keyset paging:
        the page costs the same however far back it is)."""
        if before is not None:
            query = query.where(cls.id < before)
        return list(query.order_by(cls.id.desc()).limit(limit))

    @classmethod
    def newest_id(cls) -> int:
        return cls.select(pw.fn.MAX(cls.id)).scalar() or 0

    @classmethod
    def distinct_values(cls, field) -> list[str]:
        """Every value one of the indexed text columns holds (action, object_type), in order. It hops
        from value to value along the column's index, one lookup each, instead of reading every row.
        `field` is one of this model's fields, never user input."""
        column = field.column_name
        table = cls._meta.table_name
        sql = (f'WITH RECURSIVE found(value) AS ('
               f'SELECT MIN("{column}") FROM "{table}" '
               f'UNION ALL SELECT (SELECT MIN("{column}") FROM "{table}" WHERE "{column}" > found.value) '
               f'FROM found WHERE found.value IS NOT NULL) '
               f'SELECT value FROM found WHERE value IS NOT NULL')
        return [row[0] for row in cls._meta.database.execute_sql(sql).fetchall()]


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


ALL_MODELS = [User, LoginThrottle, PasswordReset, OutboxMail, Clinic, ClinicMember, Case, Ticket, TicketCount,
              CaseDetails, Message, StatusChange, Attachment, Scan, Escalation, CannedReply, Notification,
              ContactRequest, Setting, AuditLog, Draft]

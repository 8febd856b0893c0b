"""Intraoral scans and the state of their repair."""
import enum

import peewee as pw
from peewee import JOIN

from ..i18n import lazy_gettext
from .accounts import User
from .base import BaseModel, utcnow
from .cases import Case
from .tickets import Message, Ticket


class ScanState(str, enum.Enum):
    WAITING = "waiting"        # saved, but Redis was unreachable: the sweep hands it to a worker later
    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


# What a scan's progress bar says while it waits for a worker; once one runs, it names the stage.
SCAN_STATE_LABELS = {ScanState.WAITING.value: lazy_gettext("Waiting for a worker"),
                     ScanState.QUEUED.value: lazy_gettext("Queued")}


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
    web_before_name = pw.CharField(max_length=80, default="")  # the 3D viewer's copies (.glb)
    web_after_name = pw.CharField(max_length=80, default="")
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
    def of_case(cls, case_id: int, viewer: User) -> list:
        """Every scan of a case the viewer may see, newest first: uploaded on the case page, sent with one
        of its requests, or sent with a request before the request was linked to the case."""
        its_tickets = Ticket.select(Ticket.id).where(Ticket.case == case_id)
        # The uploader's name and the request's number come in the same query (one row per scan).
        query = (cls.select(cls, User.id, User.name, User.email, Ticket.id, Ticket.requester)
                 .join(User, on=(cls.uploader == User.id)).switch(cls)
                 .join(Ticket, JOIN.LEFT_OUTER, on=(cls.ticket == Ticket.id))
                 .where((cls.case == case_id) | cls.ticket.in_(its_tickets))
                 .order_by(cls.id.desc()))
        return list(cls.shown_to(query, viewer))

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


# Why staff ask for a rescan, as stored codes and their display names (shown in the reader's language).
RESCAN_REASONS = {
    "occlusal_holes": lazy_gettext("Holes in occlusal surfaces"),
    "terminal_molars": lazy_gettext("Missing terminal molars"),
    "bite_scan": lazy_gettext("Missing bite scan"),
    "gum_margin": lazy_gettext("Gum margin not captured"),
    "motion": lazy_gettext("Motion distortion or artefacts"),
    "wrong_export": lazy_gettext("Wrong scan type or export"),
    "wrong_patient": lazy_gettext("Wrong patient or arch"),
}


class RescanRequest(BaseModel):
    """Staff asked the clinician to scan again, for coded reasons; open until the clinician sends the
    new scan in the ticket's thread (fulfilled_by_scan). `clinician` is the ticket's requester when asked,
    so Practice Insights count requests per clinician and clinic without joining the scan and ticket."""
    scan = pw.ForeignKeyField(Scan, backref="rescan_requests", on_delete="CASCADE")
    ticket = pw.ForeignKeyField(Ticket, backref="rescan_requests", on_delete="CASCADE")
    clinician = pw.ForeignKeyField(User, backref="rescans_asked_of", on_delete="CASCADE")
    reasons = pw.CharField(max_length=200)  # codes of RESCAN_REASONS, comma-separated, in their order
    note = pw.TextField(default="")
    message = pw.ForeignKeyField(Message, null=True, on_delete="SET NULL")  # the reply that asked
    requested_by = pw.ForeignKeyField(User, backref="rescans_requested", on_delete="RESTRICT")
    requested_at = pw.DateTimeField(default=utcnow)
    fulfilled_by_scan = pw.ForeignKeyField(Scan, null=True, backref="fulfilled_requests", on_delete="SET NULL")
    fulfilled_at = pw.DateTimeField(null=True)
    # Whole minutes from the request to the new scan (wall clock), kept at fulfilment: the median over
    # them is then the same nearest-rank figure on SQLite and PostgreSQL (see insights/metrics.py).
    wait_minutes = pw.IntegerField(null=True)

    class Meta:
        indexes = ((("requested_at", "clinician"), False), (("fulfilled_at", "wait_minutes", "clinician"), False))

    @property
    def reason_codes(self) -> list[str]:
        return [code for code in self.reasons.split(",") if code]

    @property
    def reason_labels(self) -> list[str]:
        """The reasons in the reader's language (a code no longer known shows as stored)."""
        return [str(RESCAN_REASONS.get(code, code)) for code in self.reason_codes]

    @property
    def is_open(self) -> bool:
        return self.fulfilled_at is None

    @classmethod
    def latest_for(cls, scan_id: int):
        """The scan's newest request, open or answered, or None."""
        return cls.select().where(cls.scan == scan_id).order_by(cls.id.desc()).first()

    @classmethod
    def open_for_ticket(cls, ticket_id: int) -> list:
        """The ticket's open requests, oldest first (a new scan in the thread answers the oldest)."""
        return list(cls.select().where((cls.ticket == ticket_id) & cls.fulfilled_at.is_null()).order_by(cls.id))


class ScanPin(BaseModel):
    """A point on a scan, in the scan's own coordinates (mm; so it stays put when the repair runs again
    and the web copy is made anew), and the camera that looked at it, carried by one reply or internal
    note of the thread (which decides who sees it)."""
    message = pw.ForeignKeyField(Message, unique=True, backref="pins", on_delete="CASCADE")
    scan = pw.ForeignKeyField(Scan, backref="pins", on_delete="CASCADE")
    x = pw.FloatField()
    y = pw.FloatField()
    z = pw.FloatField()
    camera_x = pw.FloatField()
    camera_y = pw.FloatField()
    camera_z = pw.FloatField()
    target_x = pw.FloatField()
    target_y = pw.FloatField()
    target_z = pw.FloatField()
    created_at = pw.DateTimeField(default=utcnow)

    @property
    def point(self) -> list[float]:
        return [self.x, self.y, self.z]

    @property
    def camera(self) -> list[float]:
        return [self.camera_x, self.camera_y, self.camera_z]

    @property
    def target(self) -> list[float]:
        return [self.target_x, self.target_y, self.target_z]

    @classmethod
    def by_message(cls, message_ids) -> dict:
        """{message id: pin} for the messages of a thread (callers pass only messages the viewer sees)."""
        ids = list(message_ids)
        if not ids:
            return {}
        return {pin.message_id: pin for pin in cls.select().where(cls.message.in_(ids))}

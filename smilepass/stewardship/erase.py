"""Erasing a patient (GDPR art. 17): every case of the patient with its shipments, patient links,
label links and scans (rows, files, queued jobs, results) goes; the requests about it stay for the
clinic's support history, with the patient's identifiers removed from their text, their screenshots
deleted and their case link cut. One audit row per case stays as a tombstone: ids and counts only.

Flask-free: the view checks who may do this and passes the config."""
import json
import logging
from dataclasses import dataclass, field

from .. import audit
from ..db import database, is_postgres
from ..models import (
    Attachment,
    Case,
    CaseDetails,
    CaseLabel,
    ContactReply,
    ContactRequest,
    Draft,
    Escalation,
    Message,
    Notification,
    OutboxMail,
    PatientLink,
    RescanRequest,
    Scan,
    Shipment,
    Ticket,
    User,
)
from ..search import index as search_index
from ..storage import for_config
from . import cleanup, ledger
from .patients import Identifiers, linked_ticket_ids, scan_condition

log = logging.getLogger(__name__)

# How long the checkpoint after an erasure may wait for readers, holding the write lock meanwhile.
CHECKPOINT_WAIT_MS = 200

# Free text that can mention a patient, outside the rows that are deleted. Each entry: the model,
# its text columns, and the column tying a row to a request (None: found by searching only).
TEXT_COLUMNS = [
    (Ticket, ("title", "description", "tried"), "id"),
    (Message, ("body",), "ticket"),
    (Notification, ("text",), "ticket"),
    (Escalation, ("reason",), "ticket"),
    (RescanRequest, ("note",), "ticket"),  # the staff's note to the clinician when asking for a rescan
    (OutboxMail, ("subject", "body"), None),
    (ContactRequest, ("message",), None),
    (ContactReply, ("body",), None),
    # Unsent text: a reply draft on one of the requests, or a New Request draft naming the patient.
    (Draft, ("content",), "ticket"),
]


@dataclass
class Erasure:
    case_ids: list[int]
    shipments: int = 0
    patient_links: int = 0
    label_links: int = 0
    scans: int = 0
    screenshots: int = 0
    requests: int = 0
    rows_scrubbed: int = 0
    files_removed: int = 0
    jobs_removed: int = 0
    # Why the erasure ledger could not be written (the erasure itself stands), else "".
    ledger_error: str = ""
    deleted_scans: list = field(default_factory=list, repr=False)

    def tombstone(self, case_id: int) -> str:
        # Counts and ids only: the audit log outlives the patient's data.
        return (f"case {self.case_ids.index(case_id) + 1} of {len(self.case_ids)}; shipments {self.shipments}, "
                f"patient links {self.patient_links}, label links {self.label_links}, scans {self.scans}, "
                f"screenshots {self.screenshots}, requests kept and scrubbed {self.requests}, "
                f"text rows scrubbed {self.rows_scrubbed}")


REAPPLIED = "re-applied from the erasure ledger after a restore; "


def erase_patient(cases: list[Case], actor: User | None, config, reapplying: bool = False) -> Erasure:
    """Erase these cases (one patient's, see patients.cases_of_patient) in one transaction; files
    and Redis jobs go after the commit (see cleanup for why that loses nothing). The erasure goes
    into the erasure ledger (see ledger) between the commit and the files, unless it is being
    re-applied from that ledger, which already holds it."""
    case_ids = [case.id for case in cases]
    result = Erasure(case_ids)
    entry = None
    cleanup.settle_pending(for_config(config))
    journal = None
    with _secure_delete():
        try:
            with database.atomic():
                identifiers = Identifiers.of(cases)
                tickets = linked_ticket_ids(case_ids)
                result.requests = len(tickets)
                # Other cases that had one of the scans about to go (sent with a request about this patient).
                scans_cases = {c for (c,) in Scan.select(Scan.case).where(scan_condition(case_ids, tickets)).tuples()}
                files = _delete_rows(result, case_ids, tickets)
                touched: set[int] = set(tickets)
                result.rows_scrubbed = scrub_text(identifiers, tickets, touched)
                # The index holds the same text: the cases' entries go, the scrubbed tickets' are
                # rebuilt from the scrubbed rows, then the index is rewritten without the old terms.
                search_index.forget_cases(case_ids)
                search_index.reindex_cases(scans_cases - set(case_ids) - {None}, with_tickets=False)
                search_index.reindex_tickets(touched)
                search_index.compact()
                note = REAPPLIED if reapplying else ""
                tombstones = [audit.record("patient_erased", case, note + result.tombstone(case.id), actor=actor)
                              for case in cases]
                if not reapplying:
                    entry = ledger.entry_for(cases, tombstones)
                Case.delete().where(Case.id.in_(case_ids)).execute()
                journal = cleanup.FileJournal(for_config(config), files).write()
        except BaseException:
            if journal is not None:
                journal.discard()
            raise
    if entry is not None:
        result.ledger_error = _write_ledger(config["ERASURE_LEDGER"], entry)
    result.files_removed = journal.settle()
    result.jobs_removed = cleanup.forget_scan_jobs(result.deleted_scans, config["REDIS_URL"])
    _flush_old_pages()
    return result


def _write_ledger(path: str, entry: ledger.Entry) -> str:
    """The erasure has committed: it stands even when the ledger cannot be written (a full disk, a
    read-only instance folder). Failing now could not bring the patient back, would leave the files
    behind, and would tell the admin less. So the files still go, the failure is returned (the page
    says so), audited, and logged with the line itself (it holds no identifier), to be added to the
    ledger by hand once the folder is writable again."""
    try:
        ledger.append(path, entry)
        return ""
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        log.error("erasure ledger %s not written (%s); add this line to it by hand: %s", path, reason, entry.line())
        audit.record("erasure_ledger_failed", detail=f"cases {', '.join(map(str, entry.case_ids))}: {reason}")
        return reason


def _delete_rows(result: Erasure, case_ids: list[int], tickets: list[int]) -> list[str]:
    shipment_ids = Shipment.select(Shipment.id).where(Shipment.case.in_(case_ids))
    result.patient_links = PatientLink.delete().where(PatientLink.shipment.in_(shipment_ids)).execute()
    result.shipments = Shipment.delete().where(Shipment.case.in_(case_ids)).execute()
    result.label_links = CaseLabel.delete().where(CaseLabel.case.in_(case_ids)).execute()
    result.deleted_scans = cleanup.delete_scans(scan_condition(case_ids, tickets))
    result.scans = len(result.deleted_scans)
    files = [name for scan in result.deleted_scans for name in scan.files]
    if tickets:
        result.screenshots, screenshot_files = cleanup.delete_attachments(Attachment.ticket.in_(tickets))
        files += screenshot_files
    # A request that carried one of the scans may be about another case; only these cases' links go.
    about = Ticket.select(Ticket.id).where(Ticket.case.in_(case_ids))
    # A tracking number on a request about the case is the patient's parcel: it goes whole.
    CaseDetails.update(tracking_number="").where(CaseDetails.ticket.in_(about)).execute()
    Ticket.update(case=None).where(Ticket.case.in_(case_ids)).execute()
    return files


def scrub_text(identifiers: Identifiers, tickets: list[int], touched: set[int] | None = None) -> int:
    """Remove the identifiers from every text that can carry them: all of them (name parts and
    birth date too) from the requests about the patient; the specific ones (full name, case number,
    clinic patient ID, file names, tracking numbers) from any row anywhere that contains one. The ids
    of the tickets whose text changed go into `touched` (for the search index)."""
    searchable = identifiers.searchable()
    changed = 0
    for model, columns, ticket_column in TEXT_COLUMNS:
        condition = None
        for column in columns:
            for word in searchable:
                term = getattr(model, column).contains(word)
                condition = term if condition is None else (condition | term)
        if ticket_column is not None and tickets:
            linked = getattr(model, ticket_column).in_(tickets)
            condition = linked if condition is None else (condition | linked)
        if condition is None:
            continue
        owner = [getattr(model, ticket_column)] if ticket_column not in (None, "id") else []
        selected = [model._meta.primary_key, *owner, *[getattr(model, c) for c in columns]]
        for row in model.select(*selected).where(condition):
            changes = {}
            for column in columns:
                before = getattr(row, column) or ""
                after = _scrub_json(identifiers, before) if model is Draft else identifiers.scrub(before)
                limit = getattr(getattr(model, column), "max_length", None)
                if limit:
                    after = after[:limit]
                if after != before:
                    changes[column] = after
            if changes:
                model.update(**changes).where(model._meta.primary_key == row._pk).execute()
                changed += 1
                if touched is not None and ticket_column is not None:
                    touched.add(row.id if ticket_column == "id" else getattr(row, ticket_column + "_id"))
    return changed


def _scrub_json(identifiers: Identifiers, content: str) -> str:
    """A draft is JSON (field name -> text as typed): scrub the texts, keep the structure."""
    try:
        values = json.loads(content)
    except ValueError:
        return identifiers.scrub(content)
    if not isinstance(values, dict):
        return identifiers.scrub(content)
    scrubbed = {key: identifiers.scrub(value) if isinstance(value, str) else value for key, value in values.items()}
    return content if scrubbed == values else json.dumps(scrubbed, ensure_ascii=False)


class _secure_delete:
    """SQLite keeps deleted and overwritten text in free pages until they are reused; with
    secure_delete it zeroes them, so the erased patient cannot be read back from the file."""

    def __enter__(self):
        self.previous = None
        if not is_postgres():
            self.previous = database.execute_sql("PRAGMA secure_delete").fetchone()[0]
            database.execute_sql("PRAGMA secure_delete = 1")

    def __exit__(self, *exc):
        if self.previous is not None:
            database.execute_sql(f"PRAGMA secure_delete = {int(self.previous)}")
        return False


def _flush_old_pages() -> None:
    """SQLite in WAL mode still holds the old page images in the -wal file until a checkpoint:
    write them back (zeroed, see _secure_delete) and empty the WAL. If a reader is busy the
    checkpoint does what it can; the next one (SQLite's automatic ones) finishes the job."""
    if is_postgres():
        return
    # A TRUNCATE checkpoint holds the write lock while it waits for readers (an online backup can read
    # for minutes): waiting the full busy timeout would make every new request wait as long, and the
    # slowest give up. So it waits briefly; what a reader still needs, a later checkpoint writes back.
    previous = database.execute_sql("PRAGMA busy_timeout").fetchone()[0]
    try:
        database.execute_sql(f"PRAGMA busy_timeout = {CHECKPOINT_WAIT_MS}")
        database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    except Exception as exc:  # never fail an erasure that has committed
        log.warning("WAL checkpoint after erasure did not run: %s", exc)
    finally:
        database.execute_sql(f"PRAGMA busy_timeout = {int(previous)}")

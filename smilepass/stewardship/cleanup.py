"""Removing a patient's files and queued work safely: shared by erasure and retention.

Rows and files cannot change in one transaction, so deletions are journalled: before the commit
that deletes the rows, the names of their files go into a small journal file in the file storage
(random stored names only, never a patient's identifier; in a bucket, so any host can settle it).
After the commit the files are removed and the journal with them. If the process dies in between,
the next erasure or the hourly retention job settles the journal: it removes each listed file that
no row points at any more, and keeps the ones whose rows survived (the transaction rolled back). So
nothing is orphaned and nothing live is lost."""
import datetime as dt
import json
import logging
import secrets
import time
from dataclasses import dataclass

from redis.exceptions import RedisError
from rq.command import send_stop_job_command
from rq.job import Job, JobStatus

from ..models import Attachment, Scan
from ..queue import redis_connection
from ..storage import Storage, StorageUnavailable, valid_key

log = logging.getLogger(__name__)

JOURNAL_DIR = "pending-deletes"
SCAN_FILE_COLUMNS = (Scan.stored_name, Scan.repaired_name, Scan.repaired_stl_name, Scan.preview_before_name,
                     Scan.preview_after_name, Scan.web_before_name, Scan.web_after_name)


@dataclass
class DeletedScan:
    id: int
    run: int
    files: list[str]  # storage keys


def delete_scans(condition) -> list[DeletedScan]:
    """Delete the scan rows matching condition (inside the caller's transaction) and say which
    files they had. RETURNING reads the names from the deleted rows themselves, so a repair that
    finished a moment earlier cannot slip a file past the journal."""
    query = Scan.delete().where(condition).returning(Scan.id, Scan.run, *SCAN_FILE_COLUMNS)
    return [DeletedScan(scan_id, run, [f"scans/{name}" for name in names if name])
            for scan_id, run, *names in query.tuples().execute()]


def delete_attachments(condition) -> tuple[int, list[str]]:
    query = Attachment.delete().where(condition).returning(Attachment.stored_name, Attachment.thumb_name)
    rows = list(query.tuples().execute())
    return len(rows), [name for row in rows for name in row if name]


class FileJournal:
    def __init__(self, storage: Storage, files: list[str]):
        self.storage = storage
        self.files = files
        self.key = None

    def write(self) -> "FileJournal":
        """Call inside the transaction, before it commits (StorageUnavailable rolls it back)."""
        self.key = f"{JOURNAL_DIR}/{secrets.token_hex(8)}.json"
        self.storage.put_bytes(self.key, json.dumps(self.files).encode())
        return self

    def discard(self) -> None:
        """The transaction rolled back: the files stay with their rows."""
        if self.key is not None:
            try:
                self.storage.delete(self.key)
            except StorageUnavailable:
                log.warning("a deletion journal stays in the storage for now (unreachable)")

    def settle(self) -> int:
        """After the commit: remove the files no row points at, then the journal. With the storage
        unreachable both stay, and the next erasure or the hourly retention job settles them."""
        try:
            removed = remove_unreferenced(self.storage, self.files)
            self.storage.delete(self.key)
        except StorageUnavailable as exc:
            log.warning("files of deleted rows stay in the storage for now (%s)", exc)
            return 0
        return removed


def _referenced(relative: str) -> bool:
    if relative.startswith("scans/"):
        name = relative.split("/", 1)[1]
        condition = None
        for column in SCAN_FILE_COLUMNS:
            condition = (column == name) if condition is None else (condition | (column == name))
        return Scan.select(Scan.id).where(condition).exists()
    return Attachment.select(Attachment.id).where(
        (Attachment.stored_name == relative) | (Attachment.thumb_name == relative)).exists()


def remove_unreferenced(storage: Storage, files: list[str]) -> int:
    removed = 0
    for key in files:
        # Journal entries are our own random names; still, never follow one out of the storage.
        if not valid_key(key) or "/" in key.removeprefix("scans/") or _referenced(key):
            continue
        if storage.delete(key):
            removed += 1
    return removed


# A journal is settled within seconds of its commit; an older one was left by a killed process. A
# younger one may belong to a transaction still running elsewhere, whose deleted rows this process
# cannot see yet: it would wrongly keep the files and drop the journal.
LEFT_BEHIND = dt.timedelta(minutes=10)


def settle_pending(storage: Storage) -> int:
    """Finish the journals a killed process left behind; returns the number of files removed (0 with the
    storage unreachable: they wait for the next run)."""
    removed = 0
    cutoff = time.time() - LEFT_BEHIND.total_seconds()
    try:
        for journal in storage.list(JOURNAL_DIR + "/"):
            if journal.modified > cutoff or not journal.key.endswith(".json"):
                continue
            try:
                files = json.loads(storage.read_bytes(journal.key))
            except (OSError, ValueError):
                log.warning("unreadable deletion journal %s left in place", journal.key)
                continue
            if not isinstance(files, list):
                continue
            removed += remove_unreferenced(storage, [f for f in files if isinstance(f, str)])
            storage.delete(journal.key)
    except StorageUnavailable as exc:
        log.warning("deletion journals wait: %s", exc)
    return removed


# Redis -------------------------------------------------------------------------------------------

def job_ids(scan: DeletedScan) -> list[str]:
    # Every run had its own job (scan-7-run1, scan-7-run2, ...); finished ones keep their results.
    return [f"scan-{scan.id}-run{run}" for run in range(1, scan.run + 1)]


def forget_scan_jobs(scans: list[DeletedScan], redis_url: str) -> int:
    """Stop and delete every job of these scans, with their results and registry entries. Call
    after the commit: a job that starts meanwhile finds no row and does nothing. With Redis down
    the keys stay (they hold scan ids, not patient data) and the hourly retention job removes them
    once their scans are gone."""
    if not scans:
        return 0
    try:
        connection = redis_connection(redis_url)
        return sum(_forget_job(job_id, connection) for scan in scans for job_id in job_ids(scan))
    except RedisError as exc:
        log.warning("scan jobs of erased scans stay in Redis for now (%s)", exc)
        return 0


def _forget_job(job_id: str, connection) -> int:
    if not connection.exists(Job.key_for(job_id)):
        return 0
    job = Job.fetch(job_id, connection=connection)
    if job.get_status(refresh=False) == JobStatus.STARTED:
        try:
            send_stop_job_command(connection, job_id)
        except Exception:  # the worker may have finished it meanwhile; the delete below still runs
            log.info("could not stop job %s", job_id)
    job.delete(remove_from_queue=True)
    return 1


def forget_orphan_scan_jobs(redis_url: str) -> int:
    """Delete scan jobs whose scan no longer exists (left by an erasure while Redis was down, or
    written back by a repair that was running when its scan was erased)."""
    try:
        connection = redis_connection(redis_url)
        orphans = []
        for key in connection.scan_iter(match=Job.redis_job_namespace_prefix + "scan-*", count=500):
            job_id = key.decode().removeprefix(Job.redis_job_namespace_prefix)
            parts = job_id.split("-")
            if len(parts) != 3 or not parts[1].isdigit() or not parts[2].startswith("run"):
                continue  # :dependents and the like go with their job
            if not Scan.select(Scan.id).where(Scan.id == int(parts[1])).exists():
                orphans.append(job_id)
        return sum(_forget_job(job_id, connection) for job_id in orphans)
    except RedisError as exc:
        log.warning("could not look for jobs of erased scans (%s)", exc)
        return 0

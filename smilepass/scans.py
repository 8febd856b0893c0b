"""Scans attached to tickets and cases: streamed to disk and checked on upload, repaired by RQ jobs,
and reconciled by a periodic sweep so that no scan waits or "processes" forever."""
import datetime as dt
import hashlib
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from peewee import JOIN
from redis.exceptions import RedisError
from rq import Retry, Worker
from rq.job import Job, JobStatus
from flask_babel import format_decimal, gettext

from .mesh import MeshRejected, inspect_file
from .i18n import and_list
from .mesh.errors import Phrase, Sentence
from .models import Scan, ScanState, Ticket, User, utcnow
from .queue import SCAN_QUEUE, enqueue_once, get_queue, job_status

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024
SCAN_EXTENSIONS = (".stl", ".ply")


class ScanRefused(Exception):
    pass


def rejection_text(exc: MeshRejected) -> str:
    """Why the mesh package refused a file, in the reader's language: its English template through the
    catalogue, numbers and phrases localised too."""
    return gettext(exc.message, **{name: _localised(value) for name, value in exc.params.items()})


def stored_reason(text: str) -> str:
    """A refusal the repair worker stored (in English, it has no reader) shown in the reader's language
    when it is one of the catalogue's fixed sentences; sentences with numbers in them stay as stored."""
    return gettext(text) if text and "%" not in text else text


def verdict_reason_text(stored: str, report) -> str:
    """A repair's verdict reason in the reader's language, rebuilt from the templates and numbers the
    repair keeps in its report; scans repaired before it kept them show the stored English text."""
    parts = (report or {}).get("verdict_reason_parts") if isinstance(report, dict) else None
    if not parts:
        return stored
    texts = [gettext(template, **{name: _localised(value) for name, value in params.items()})
             for template, params in parts]
    if len(texts) == 1 and texts[0].endswith("."):
        return texts[0]
    sentence = and_list(texts)  # the things done: "Filled 2 holes and removed 5 duplicate triangles."
    return sentence[0].upper() + sentence[1:] + "."


def _localised(value):
    if isinstance(value, Phrase):
        return gettext(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_decimal(value)
    return value


@dataclass
class StoredScan:
    stored_name: str
    size: int
    sha256: str
    file_format: str
    triangles: int


def scan_dir(upload_dir: str) -> Path:
    path = Path(upload_dir) / "scans"
    path.mkdir(parents=True, exist_ok=True)
    return path


def store_scan(stream, upload_dir: str, max_bytes: int) -> StoredScan:
    """Copy the upload to disk in chunks (never whole in memory), hashing as it goes, then check its
    structure before anything else reads it. A refused file leaves nothing behind."""
    directory = scan_dir(upload_dir)
    token = secrets.token_hex(16)
    part = directory / f"{token}.part"
    digest, size = hashlib.sha256(), 0
    try:
        with open(part, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise ScanRefused(gettext("The scan is larger than the %(size)s this server accepts.",
                                              size=_megabytes(max_bytes)))
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise ScanRefused(gettext("The scan file is empty."))
        try:
            info = inspect_file(part)
        except MeshRejected as exc:
            raise ScanRefused(rejection_text(exc)) from None
        stored_name = token + info.extension
        os.replace(part, directory / stored_name)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return StoredScan(stored_name, size, digest.hexdigest(), info.format, info.triangles)


def scans_of_case(case_id: int, viewer: User) -> list[Scan]:
    """Every scan of a case the viewer may see, newest first: uploaded on the case page, sent with one
    of its requests, or sent with a request before the request was linked to the case."""
    its_tickets = Ticket.select(Ticket.id).where(Ticket.case == case_id)
    # The uploader's name and the request's number come in the same query (one row per scan).
    query = (Scan.select(Scan, User.id, User.name, User.email, Ticket.id, Ticket.requester)
             .join(User, on=(Scan.uploader == User.id)).switch(Scan)
             .join(Ticket, JOIN.LEFT_OUTER, on=(Scan.ticket == Ticket.id))
             .where((Scan.case == case_id) | Scan.ticket.in_(its_tickets))
             .order_by(Scan.id.desc()))
    return list(Scan.shown_to(query, viewer))


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB" if size >= 1024 * 1024 else f"{size / (1024 * 1024):.1f} MB"


def remove_files(upload_dir: str, names) -> None:
    directory = scan_dir(upload_dir)
    for name in names:
        if name:
            (directory / name).unlink(missing_ok=True)


def enqueue_repair(scan: Scan, config) -> bool:
    """Hand the scan to a worker. With Redis down the scan is kept as "waiting" and the sweep
    enqueues it when Redis is back."""
    try:
        enqueue_once(
            get_queue(SCAN_QUEUE, config["REDIS_URL"]),
            "smilepass.jobs.repair_scan",
            scan.id,
            scan.run,
            job_id=scan.job_id,
            job_timeout=config["SCAN_JOB_TIMEOUT"],
            retry=Retry(max=config["SCAN_RETRIES"], interval=config["SCAN_RETRY_INTERVALS"]),
            failure_ttl=7 * 24 * 3600,
        )
    except RedisError as exc:
        log.warning("scan %s waits for a worker: Redis unavailable (%s)", scan.id, exc)
        Scan.update(state=ScanState.WAITING.value, stage="", updated_at=utcnow()).where(Scan.id == scan.id).execute()
        scan.state = ScanState.WAITING.value
        return False
    return True


def rerun(scan: Scan, options: dict, config) -> None:
    """Repair again with other settings (staff): a new run, whose job id differs from the last."""
    scan.run += 1
    scan.options = json.dumps(options)
    scan.state, scan.stage, scan.progress, scan.error = ScanState.QUEUED.value, "", 0.0, ""
    scan.attempts = 0
    scan.updated_at = utcnow()
    scan.save()
    enqueue_repair(scan, config)


def sweep(config) -> dict:
    """Reconcile scans with the queue: enqueue those that waited for Redis, and settle those whose
    job is gone or failed (a worker killed for good, a horse that died on its last retry)."""
    counts = {"enqueued": 0, "failed": 0, "temp_files_removed": remove_stale_temp_files(config["UPLOAD_DIR"])}
    connection = get_queue(SCAN_QUEUE, config["REDIS_URL"]).connection
    for scan in Scan.select().where(Scan.state == ScanState.WAITING.value).order_by(Scan.id).limit(200):
        if enqueue_repair(scan, config):
            Scan.update(state=ScanState.QUEUED.value).where(
                (Scan.id == scan.id) & (Scan.state == ScanState.WAITING.value)).execute()
            counts["enqueued"] += 1
    stale_before = utcnow() - dt.timedelta(seconds=config["SCAN_SWEEP_GRACE"])
    busy = Scan.select().where(Scan.state.in_([ScanState.QUEUED.value, ScanState.PROCESSING.value])
                               & (Scan.updated_at < stale_before)).limit(200)
    for scan in busy:
        status = job_status(scan.job_id, connection)
        if status == JobStatus.STARTED and _worker_gone(scan.job_id, connection):
            # The whole worker died (not just its work horse, which RQ itself retries): the job
            # would sit in "started" until it timed out. Start it over while attempts remain.
            if scan.attempts <= config["SCAN_RETRIES"]:
                Job.fetch(scan.job_id, connection=connection).delete()
                enqueue_repair(scan, config)
                counts["enqueued"] += 1
                continue
            status = JobStatus.FAILED
        if status is None or status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
            reason = _failure_reason(scan, connection)
            updated = Scan.update(state=ScanState.FAILED.value, error=reason, finished_at=utcnow(),
                                  updated_at=utcnow()).where((Scan.id == scan.id) & (Scan.run == scan.run)
                                                             & (Scan.state == scan.state)).execute()
            counts["failed"] += updated
    return counts


# Temp files older than this belong to an upload or repair whose process was killed.
STALE_TEMP = dt.timedelta(hours=1)


def remove_stale_temp_files(upload_dir: str) -> int:
    """Partial uploads (*.part) and unfinished repair outputs (*.tmp) that a killed process left."""
    cutoff = (dt.datetime.now() - STALE_TEMP).timestamp()
    removed = 0
    for path in scan_dir(upload_dir).iterdir():
        if path.suffix in (".part", ".tmp") and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


# A busy RQ worker reports every 30 s while its horse works; three missed reports means it is dead
# (its Redis key itself lingers for minutes after a SIGKILL).
WORKER_SILENCE = dt.timedelta(seconds=90)


def _worker_gone(job_id: str, connection) -> bool:
    job = Job.fetch(job_id, connection=connection)
    if not job.worker_name:
        return False
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + job.worker_name, connection=connection)
    if worker is None or worker.last_heartbeat is None:
        return True
    return worker.last_heartbeat.replace(tzinfo=None) < utcnow() - WORKER_SILENCE


def _failure_reason(scan: Scan, connection) -> str:
    try:
        job = Job.fetch(scan.job_id, connection=connection)
        last = (job.latest_result().exc_string if job.latest_result() else "") or ""
    except Exception:
        last = ""
    if "Work-horse terminated" in last or "AbandonedJobError" in last:
        return (f"The repair worker stopped unexpectedly while working on this scan ({scan.attempts} attempts). "
                "Staff can run the repair again.")
    if last:
        return "The repair failed: " + last.strip().splitlines()[-1][:300]
    # Stored in English; a Sentence so that the catalogue has it and the scan panel translates it.
    return str(Sentence("The repair job was lost (the worker or Redis restarted). Staff can run the repair again."))

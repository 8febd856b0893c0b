"""The scan sweep (every minute from `rq cron`): reconcile scans with the queue so that no scan waits or
"processes" forever, and remove temp files that killed uploads and repairs left."""
import datetime as dt
from pathlib import Path

from rq import Worker
from rq.job import Job, JobStatus

from ..mesh.errors import Sentence
from ..models import Scan, ScanState, utcnow
from ..queue import SCAN_QUEUE, TIMED_OUT, get_queue, job_status
from ..storage.workdirs import remove_abandoned
from .queueing import enqueue_repair
from .reasons import timeout_reason


def sweep(config) -> dict:
    """Reconcile scans with the queue: enqueue those that waited for Redis, and settle those whose
    job is gone or failed (a worker killed for good, a horse that died on its last retry)."""
    counts = {"enqueued": 0, "failed": 0, "temp_files_removed": remove_stale_temp_files(config)}
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


def remove_stale_temp_files(config) -> int:
    """Partial uploads (*.part) and unfinished repair outputs (*.tmp) that a killed process left in the
    scans folder (older versions wrote them there), and work folders of killed uploads and repairs on this
    host: in the upload folder (local storage) and in STORAGE_WORK_DIR (a bucket). Every worker host also
    does the latter itself (storage/workdirs.py), since only one of them runs this sweep."""
    cutoff = (dt.datetime.now() - STALE_TEMP).timestamp()
    removed = 0
    scans = Path(config["UPLOAD_DIR"]) / "scans"
    for path in scans.iterdir() if scans.is_dir() else ():
        if path.suffix in (".part", ".tmp") and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed + remove_abandoned(config)


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
        timed_out = job.meta.get(TIMED_OUT)
    except Exception:
        last, timed_out = "", None
    if timed_out:  # the worker killed a horse stuck past the timeout (normally repair_timed_out said so already)
        return timeout_reason(int(timed_out), scan.attempts)
    if "Work-horse terminated" in last or "AbandonedJobError" in last:
        return (f"The repair worker stopped unexpectedly while working on this scan ({scan.attempts} attempts). "
                "Staff can run the repair again.")
    if last:
        return "The repair failed: " + last.strip().splitlines()[-1][:300]
    # Stored in English; a Sentence so that the catalogue has it and the scan panel translates it.
    return str(Sentence("The repair job was lost (the worker or Redis restarted). Staff can run the repair again."))

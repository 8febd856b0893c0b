"""Handing scans to the repair workers: once per run (the job id names the run), and never lost when Redis
is down — the scan then waits and the sweep enqueues it later."""
import json
import logging

from redis.exceptions import RedisError
from rq import Retry

from ..models import Scan, ScanState, utcnow
from ..queue import ON_TIMEOUT, SCAN_QUEUE, enqueue_once, get_queue

log = logging.getLogger(__name__)


def enqueue_repair(scan: Scan, config) -> bool:
    """Hand the scan to a worker. With Redis down the scan is kept as "waiting" and the sweep
    enqueues it when Redis is back."""
    try:
        enqueue_once(
            get_queue(SCAN_QUEUE, config["REDIS_URL"]),
            "smilepass.scans.jobs.repair_scan",
            scan.id,
            scan.run,
            job_id=scan.job_id,
            job_timeout=config["SCAN_JOB_TIMEOUT"],
            retry=Retry(max=config["SCAN_RETRIES"], interval=config["SCAN_RETRY_INTERVALS"]),
            failure_ttl=7 * 24 * 3600,
            # Run by the worker's parent when it kills a horse stuck past the timeout (workers/worker.py).
            meta={ON_TIMEOUT: "smilepass.scans.jobs.repair_timed_out"},
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

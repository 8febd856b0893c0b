"""The body of the scan repair job: state changes and results on the Scan row, around the
Flask-free pipeline in smilepass.mesh. Progress goes to the row too, so the page can poll it.

The worker shares nothing with the web server but the database, Redis and the file storage: it fetches
the upload into a work folder of its own (checking its SHA-256 against the row), repairs it there and
puts the outputs back under keys made of the input's hash, the repair settings and the scan id. A retried
job (a killed worker, the storage down for a moment) writes the very same keys, never a second set."""
import hashlib
import json
import time

from ..live import events as live
from ..mesh import MeshRejected, RepairOptions, repair
from ..models import Scan, ScanState, utcnow
from ..storage import for_config
from .reasons import timeout_reason
from .rescans import reopen_for_failed
from .storage import remove_files, scan_key

PROGRESS_EVERY = 0.4  # seconds between progress writes within a stage


def _update(scan_id: int, run: int, **fields) -> int:
    """Change the row only if it still belongs to this run (a re-run supersedes older jobs)."""
    fields.setdefault("updated_at", utcnow())
    updated = Scan.update(**fields).where((Scan.id == scan_id) & (Scan.run == run)).execute()
    if updated and "state" in fields:
        # An open ticket page shows the new state at once (progress within a state: the panel's own poll).
        ticket_id = Scan.select(Scan.ticket).where(Scan.id == scan_id).scalar()
        if ticket_id is not None:
            live.changed(ticket_id, live.SCANS)
    return updated


def run_repair(scan_id: int, run: int, config) -> str:
    scan = Scan.get_or_none(Scan.id == scan_id)
    if scan is None or scan.run != run:
        return "superseded"
    if scan.state == ScanState.DONE.value:
        return "already done"
    _update(scan_id, run, state=ScanState.PROCESSING.value, stage="reading", progress=0.0,
            attempts=Scan.attempts + 1, started_at=utcnow(), error="")
    storage = for_config(config)
    stem = output_stem(scan)
    last = {"stage": None, "at": 0.0}

    def progress(stage: str, fraction: float) -> None:
        now = time.monotonic()
        if stage != last["stage"] or now - last["at"] >= PROGRESS_EVERY:
            last.update(stage=stage, at=now)
            _update(scan_id, run, stage=stage, progress=max(0.0, min(1.0, fraction)))

    with storage.workdir() as folder:
        source = storage.local_path(scan_key(scan.stored_name))
        if source is None:  # in a bucket: fetch it to this host, and make sure it is what was uploaded
            source = folder / scan.stored_name
            if storage.get_to(scan_key(scan.stored_name), source) != scan.sha256:
                fail(scan_id, run, "The stored scan no longer matches the uploaded file (its SHA-256 differs). "
                                   "Upload it again.")
                return "damaged"
        try:
            result = repair(source, folder / "out", stem,
                            options=RepairOptions.from_dict(json.loads(scan.options or "{}")), progress=progress)
        except MeshRejected as exc:
            fail(scan_id, run, str(exc))
            return "refused"
        new_outputs = [result.repaired_path.name, result.repaired_stl_path.name, result.preview_before.name,
                       result.preview_after.name, result.web_before.name, result.web_after.name]
        # The STL of an STL upload is the repaired file itself: stored once.
        for path in dict.fromkeys([result.repaired_path, result.repaired_stl_path, result.preview_before,
                                   result.preview_after, result.web_before, result.web_after]):
            storage.put_file(scan_key(path.name), path, move=True)
    old_outputs = [scan.repaired_name, scan.repaired_stl_name, scan.preview_before_name, scan.preview_after_name,
                   scan.web_before_name, scan.web_after_name]
    updated = _update(
        scan_id, run, state=ScanState.DONE.value, stage="done", progress=1.0, finished_at=utcnow(),
        verdict=result.verdict, verdict_reason=result.verdict_reason, report=json.dumps(result.report),
        output_stem=stem, repaired_name=new_outputs[0], repaired_stl_name=new_outputs[1],
        preview_before_name=new_outputs[2], preview_after_name=new_outputs[3],
        web_before_name=new_outputs[4], web_after_name=new_outputs[5],
    )
    if updated:
        remove_files(storage, [name for name in old_outputs if name and name not in new_outputs])
    else:  # re-run meanwhile: these outputs belong to nobody, unless the new run wrote the same keys
        current = Scan.get_or_none(Scan.id == scan_id)
        keep = {current.repaired_name, current.repaired_stl_name, current.preview_before_name,
                current.preview_after_name, current.web_before_name,
                current.web_after_name} if current is not None else set()
        remove_files(storage, [name for name in new_outputs if name not in keep])
    return result.verdict


def output_stem(scan: Scan) -> str:
    """The outputs' names: the input's hash, the settings and the scan (two scans of the same file never
    share outputs, so erasing one cannot take the other's)."""
    settings = hashlib.sha256((scan.options or "{}").encode()).hexdigest()[:8]
    return f"{scan.sha256[:32]}-{settings}-{scan.id}"


def fail(scan_id: int, run: int, reason: str) -> None:
    if _update(scan_id, run, state=ScanState.FAILED.value, error=reason, finished_at=utcnow()):
        reopen_for_failed(scan_id)  # a new scan the repair refused answers no rescan request


def record_error(scan_id: int, run: int, exc: Exception, final: bool) -> None:
    message = f"{type(exc).__name__}: {exc}"[:500]
    if final:
        fail(scan_id, run, "The repair failed: " + message)
    else:
        _update(scan_id, run, state=ScanState.QUEUED.value, stage="", error="Retrying after: " + message)


def fatal_reason(exc: Exception, config, timeout: int, attempt: int) -> str:
    if isinstance(exc, MemoryError):
        return (f"The scan needs more memory than a repair may use ({config['SCAN_MEMORY_LIMIT_MB']} MB). "
                "Export it with fewer triangles, or ask an admin to raise the limit.")
    return timeout_reason(timeout, attempt)


def fail_timed_out(scan_id: int, run: int, timeout: int) -> bool:
    """End a scan whose repair job ran out of time (the worker killed its stuck work horse); a scan that
    finished or was re-run meanwhile is left alone. Returns whether the scan was failed."""
    scan = Scan.get_or_none(Scan.id == scan_id)
    if scan is None or scan.run != run or scan.state not in (ScanState.QUEUED.value, ScanState.PROCESSING.value):
        return False
    failed = bool(Scan.update(state=ScanState.FAILED.value, error=timeout_reason(timeout, scan.attempts),
                              finished_at=utcnow(), updated_at=utcnow())
                  .where((Scan.id == scan_id) & (Scan.run == run) & (Scan.state == scan.state)).execute())
    if failed:
        reopen_for_failed(scan_id)
    return failed

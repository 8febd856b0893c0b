"""The body of the scan repair job: state changes and results on the Scan row, around the
Flask-free pipeline in smilepass.mesh. Progress goes to the row too, so the page can poll it."""
import json
import secrets
import time

from ..live import events as live
from ..mesh import MeshRejected, RepairOptions, repair
from ..models import Scan, ScanState, utcnow
from .reasons import timeout_reason
from .storage import remove_files, scan_dir

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
    directory = scan_dir(config["UPLOAD_DIR"])
    stem = secrets.token_hex(16)
    last = {"stage": None, "at": 0.0}

    def progress(stage: str, fraction: float) -> None:
        now = time.monotonic()
        if stage != last["stage"] or now - last["at"] >= PROGRESS_EVERY:
            last.update(stage=stage, at=now)
            _update(scan_id, run, stage=stage, progress=max(0.0, min(1.0, fraction)))

    try:
        result = repair(directory / scan.stored_name, directory, stem,
                        options=RepairOptions.from_dict(json.loads(scan.options or "{}")), progress=progress)
    except MeshRejected as exc:
        fail(scan_id, run, str(exc))
        return "refused"
    old_outputs = [scan.repaired_name, scan.repaired_stl_name, scan.preview_before_name, scan.preview_after_name]
    updated = _update(
        scan_id, run, state=ScanState.DONE.value, stage="done", progress=1.0, finished_at=utcnow(),
        verdict=result.verdict, verdict_reason=result.verdict_reason, report=json.dumps(result.report),
        output_stem=stem, repaired_name=result.repaired_path.name, repaired_stl_name=result.repaired_stl_path.name,
        preview_before_name=result.preview_before.name, preview_after_name=result.preview_after.name,
    )
    new_outputs = [result.repaired_path.name, result.repaired_stl_path.name, result.preview_before.name,
                   result.preview_after.name]
    if updated:
        remove_files(config["UPLOAD_DIR"], [name for name in old_outputs if name and name not in new_outputs])
    else:  # re-run meanwhile: these outputs belong to nobody
        remove_files(config["UPLOAD_DIR"], new_outputs)
    return result.verdict


def fail(scan_id: int, run: int, reason: str) -> None:
    _update(scan_id, run, state=ScanState.FAILED.value, error=reason, finished_at=utcnow())


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
    return bool(Scan.update(state=ScanState.FAILED.value, error=timeout_reason(timeout, scan.attempts),
                            finished_at=utcnow(), updated_at=utcnow())
                .where((Scan.id == scan_id) & (Scan.run == run) & (Scan.state == scan.state)).execute())

"""Retention: scans of delivered cases are purged once the case's latest shipment was delivered
more than N months ago (Admin → Settings, 0 = keep forever). A scan uploaded within the window is
kept even on such a case (it may be the start of a refinement).

Purged scans lose their row as well as their files: a row kept without its files would carry the
file name (often clinicID_patientID_date.stl) and offer downloads that no longer exist. What was
purged is in the audit log: one row per case with the scan ids."""
import calendar
import datetime as dt
from dataclasses import dataclass, field

from .. import audit, settings
from ..db import database
from ..models import Case, Scan, Shipment, ShipmentState, Ticket, utcnow
from ..search import index as search_index
from ..storage import for_config
from . import cleanup

SETTING = "scan_retention_months"


def months_before(moment: dt.datetime, months: int) -> dt.datetime:
    """The same day and time `months` calendar months earlier (the 31st becomes the month's last day)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def expired_case_ids(cutoff: dt.datetime) -> list[int]:
    """Cases whose newest shipment is delivered, before cutoff."""
    newest = Shipment.alias()
    latest_id = newest.select(newest.id).where(newest.case == Case.id).order_by(newest.id.desc()).limit(1)
    query = (Case.select(Case.id).join(Shipment, on=(Shipment.case == Case.id))
             .where((Case.latest_state == ShipmentState.DELIVERED.value) & (Shipment.id == latest_id)
                    & (Shipment.state == ShipmentState.DELIVERED.value) & (Shipment.delivered_at < cutoff))
             .order_by(Case.id))
    return [row[0] for row in query.tuples()]


def purge_expired_scans(config, now: dt.datetime | None = None) -> dict:
    """The periodic job's work: purge what the setting says, and finish any deletion a killed
    process left (cleanup's journals, jobs of scans that are gone)."""
    counts = {"cases": 0, "scans": 0, "files": cleanup.settle_pending(for_config(config)), "jobs": 0}
    months = settings.get(SETTING)
    if months:
        cutoff = months_before(now or utcnow(), months)
        for case_id in expired_case_ids(cutoff):
            purged = _purge_case(case_id, cutoff, months, config)
            if purged.scans:
                counts["cases"] += 1
                counts["scans"] += len(purged.scans)
                counts["files"] += purged.files_removed
                counts["jobs"] += purged.jobs_removed
    counts["jobs"] += cleanup.forget_orphan_scan_jobs(config["REDIS_URL"])
    return counts


@dataclass
class PurgedScans:
    scans: list = field(default_factory=list)  # cleanup.DeletedScan
    files_removed: int = 0
    jobs_removed: int = 0


def _purge_case(case_id: int, cutoff: dt.datetime, months: int, config) -> PurgedScans:
    its_tickets = Ticket.select(Ticket.id).where(Ticket.case == case_id)
    condition = ((Scan.case == case_id) | Scan.ticket.in_(its_tickets)) & (Scan.created_at < cutoff)
    journal = None
    try:
        with database.atomic():
            purged = PurgedScans(cleanup.delete_scans(condition))
            if not purged.scans:
                return purged
            search_index.reindex_cases([case_id])  # the purged scans' file names
            ids = ", ".join(f"#{scan.id}" for scan in purged.scans)
            audit.record(
                "scans_purged", Case(id=case_id), f"{len(purged.scans)} scans, retention {months} months: {ids}"
            )
            journal = cleanup.FileJournal(for_config(config), [f for s in purged.scans for f in s.files]).write()
    except BaseException:
        if journal is not None:
            journal.discard()
        raise
    purged.files_removed = journal.settle()
    purged.jobs_removed = cleanup.forget_scan_jobs(purged.scans, config["REDIS_URL"])
    return purged

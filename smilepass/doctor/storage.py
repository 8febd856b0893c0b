"""The database (reachable, every migration applied), the file storage (reachable; a bucket exists; a probe
object is written, read back and deleted), disk space where the instance keeps its data, and how old the
newest backup in BACKUP_DIR is."""
from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

from flask_babel import gettext, ngettext
from playhouse.migrations import Runner

from .. import db
from ..backup import rotation
from ..backup.reports import human_size
from ..storage import StorageUnavailable, for_config
from .record import Check, Status, first_line, worst

# Free space: below the first the admin is warned (a few large scans and one backup still fit), below the
# second uploads, repairs and the nightly backup are about to fail.
DISK_WARN_BYTES = 5 * 1024**3
DISK_FAIL_BYTES = 1 * 1024**3
# Backups run nightly: a day and a half allows for one late run before the admin hears of it.
BACKUP_WARN_AGE = dt.timedelta(hours=36)


def check_database(probe) -> Check:
    name = gettext("Database")
    kind = "PostgreSQL" if db.is_postgres() else "SQLite"
    # The web request already holds a connection: use it and leave it open; the CLI opens one here.
    opened_here = db.database.is_closed()
    try:
        if opened_here:
            db.database.connect()
        db.database.execute_sql("SELECT 1")
        migrations = Runner(db.database.obj, str(db.MIGRATIONS_DIR)).status()
    except Exception as exc:  # any driver's error: the point is to say it, not to crash
        return Check(name, Status.FAIL, gettext("%(kind)s cannot be read: %(error)s", kind=kind,
                                                error=first_line(exc)))
    finally:
        if opened_here and not db.database.is_closed():
            db.database.close()
    unknown = [m.name for m in migrations if m.path is None]
    if unknown:
        return Check(name, Status.FAIL, gettext("the database has migrations this code does not know (%(names)s): "
                                                "is this the SmilePass version that wrote it?",
                                                names=", ".join(unknown)))
    pending = [m.name for m in migrations if m.applied is None]
    if pending:
        return Check(name, Status.FAIL, ngettext("%(num)s migration not applied (%(names)s): run flask --app app "
                                                 "migrate", "%(num)s migrations not applied (%(names)s): run flask "
                                                 "--app app migrate", len(pending), names=_few(pending)))
    last = migrations[-1].name if migrations else "-"
    return Check(name, Status.OK, gettext("%(kind)s, migrated (%(count)s migrations, the last %(last)s)", kind=kind,
                                          count=len(migrations), last=last))


def check_file_storage(probe) -> Check:
    name = gettext("File storage")
    try:
        storage = for_config(probe.config)
    except ValueError as exc:  # a malformed SMILEPASS_STORAGE_URL
        return Check(name, Status.FAIL, str(exc))
    try:
        storage.probe()
    except StorageUnavailable as exc:
        return Check(name, Status.FAIL, gettext("%(where)s cannot be used: %(error)s", where=storage.describe(),
                                                error=str(exc)))
    if storage.kind == "s3":
        return Check(name, Status.OK, gettext("bucket %(where)s: a probe object was written, read and deleted",
                                              where=storage.describe()))
    return Check(name, Status.OK, gettext("folder %(where)s: a probe file was written, read and deleted",
                                          where=storage.describe()))


def _few(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 3 else f"{names[0]} … {names[-1]}"


def disk_status(free: int) -> Status:
    if free < DISK_FAIL_BYTES:
        return Status.FAIL
    if free < DISK_WARN_BYTES:
        return Status.WARN
    return Status.OK


def _existing(path: Path) -> Path:
    """The path, or its nearest parent that exists (a backup folder not made yet lives on its parent's disk)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(probe) -> Check:
    places = [(gettext("instance"), Path(probe.instance_path)), (gettext("uploads"), Path(probe.config["UPLOAD_DIR"])),
              (gettext("backups"), Path(probe.config["BACKUP_DIR"]))]
    by_disk: dict[int, list] = {}
    for label, path in places:
        existing = _existing(path)
        by_disk.setdefault(os.stat(existing).st_dev, [[], existing])[0].append(label)
    parts, statuses = [], []
    for labels, path in by_disk.values():
        usage = shutil.disk_usage(path)
        statuses.append(disk_status(usage.free))
        parts.append(gettext("%(places)s: %(free)s free of %(total)s", places=", ".join(labels),
                             free=human_size(usage.free), total=human_size(usage.total)))
    status = worst(statuses)
    detail = "; ".join(parts)
    if status is not Status.OK:
        detail += " " + gettext("(uploads, scan repairs and backups need room: free at least %(size)s)",
                                size=human_size(DISK_WARN_BYTES))
    return Check(gettext("Disk space"), status, detail)


def _age(delta: dt.timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 3600:
        return gettext("%(minutes)s min ago", minutes=seconds // 60)
    hours = seconds // 3600
    if hours < 48:
        return gettext("%(hours)s h ago", hours=hours)
    return gettext("%(days)s days ago", days=hours // 24)


def check_backup(probe) -> Check:
    name = gettext("Last backup")
    backup_dir = probe.config["BACKUP_DIR"]
    latest = rotation.newest(backup_dir)
    if latest is None:
        return Check(name, Status.WARN, gettext("no backup in %(dir)s yet: run flask --app app backup --keep 14 "
                                                "nightly", dir=backup_dir))
    age = dt.datetime.now(dt.UTC) - latest.taken_at
    detail = gettext("%(name)s, taken %(age)s", name=latest.path.name, age=_age(age))
    if age > BACKUP_WARN_AGE:
        return Check(name, Status.WARN, detail + " " + gettext("(older than %(hours)s h: is the nightly backup "
                                                               "running?)",
                                                               hours=int(BACKUP_WARN_AGE.total_seconds() // 3600)))
    return Check(name, Status.OK, detail)

"""Restoring a backup into an instance: refuse a target that holds data (unless forced), check the
whole archive (unpack.py), then put the files and the database in place, compare the row counts with
the manifest, migrate, and give the scans the lost job queue held back to the scan sweep."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from playhouse.migrations import Runner

from ..db import MIGRATIONS_DIR, open_database
from ..models import Scan, ScanState
from . import kinds
from .archive import stored_files
from .errors import BackupError
from .kind import DatabaseKind
from .reports import RestoreReport
from .unpack import unpack_and_verify


def restore_backup(archive_path: str | Path, database_url: str, upload_dir: str | Path,
                   force: bool = False) -> RestoreReport:
    """Restore the archive into the instance at database_url/upload_dir. Nothing in the target
    changes until the whole archive has been read and checked."""
    kind = kinds.for_url(database_url)
    archive_path, upload_dir = Path(archive_path), Path(upload_dir)
    if not archive_path.is_file():
        raise BackupError(f"no backup at {archive_path}")
    if not force:
        _refuse_if_holding_data(kind, database_url, upload_dir)
    upload_dir.mkdir(parents=True, exist_ok=True)
    # Inside the upload folder, so moving each file into place is an atomic rename.
    staging = Path(tempfile.mkdtemp(dir=upload_dir, prefix=".restore-"))
    try:
        manifest = unpack_and_verify(archive_path, staging, kind)
        already = set(stored_files(upload_dir))
        restored = _place_files(manifest, staging, upload_dir)
        kind.restore(database_url, staging / manifest["database"]["member"])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    counts = kind.counts(database_url)
    differing = [f"{table} {counts.get(table)} (manifest {expected})"
                 for table, expected in manifest["row_counts"].items() if counts.get(table) != expected]
    if differing:
        raise BackupError("restored, but row counts differ from the manifest: " + "; ".join(differing))
    applied = run_migrations(database_url)
    requeued = _requeue_busy_scans(kind, database_url)
    left_alone = len(already - {f["path"] for f in manifest["files"]})
    return RestoreReport(manifest, restored, applied, requeued, counts, left_alone)


def _refuse_if_holding_data(kind: DatabaseKind, url: str, upload_dir: Path) -> None:
    filled = sorted(table for table, count in kind.existing_counts(url).items() if count)
    if filled:
        raise BackupError(f"the target database already holds data ({', '.join(filled[:5])}"
                          f"{', ...' if len(filled) > 5 else ''}); restore into a fresh instance or pass --force "
                          f"to replace it")
    if upload_dir.exists() and stored_files(upload_dir):
        raise BackupError(f"the upload folder {upload_dir} already holds files; restore into a fresh instance "
                          f"or pass --force")


def _place_files(manifest: dict, staging: Path, upload_dir: Path) -> int:
    for entry in manifest["files"]:
        destination = upload_dir / entry["path"]
        destination.parent.mkdir(parents=True, exist_ok=True)
        # A rename within one file system: each file appears whole or not at all.
        os.replace(staging / "files" / entry["path"], destination)
    return len(manifest["files"])


def run_migrations(url: str) -> list[str]:
    """Bring a restored (possibly older) database up to this code's schema, on a connection of its
    own (the app's database proxy may point elsewhere, e.g. in tests)."""
    kind = kinds.for_url(url)
    database = open_database(url)
    try:
        with database.connection_context():
            applied = Runner(database, str(MIGRATIONS_DIR)).up()
            for statement in kind.analyze_statements:
                database.execute_sql(statement)
    finally:
        if hasattr(database, "close_all"):
            database.close_all()
        elif not database.is_closed():
            database.close()
    return applied


def _requeue_busy_scans(kind: DatabaseKind, url: str) -> int:
    """The job queue lives in Redis, not in the backup: scans that were queued or being repaired
    when it was taken go back to "waiting", and the scan sweep hands them to a worker."""
    return kind.execute(url, f"UPDATE {Scan._meta.table_name} SET state = '{ScanState.WAITING.value}', stage = '' "
                             f"WHERE state IN ('{ScanState.QUEUED.value}', '{ScanState.PROCESSING.value}')")

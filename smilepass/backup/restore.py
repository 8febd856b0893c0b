"""Restoring a backup into an instance: refuse a target that holds data (unless forced), check the
whole archive (unpack.py), then put the files (into whichever storage is configured: the upload folder or
a bucket, whatever the backup was taken from) and the database in place, compare the row counts with
the manifest, migrate, and give the scans the lost job queue held back to the scan sweep."""
from __future__ import annotations

from pathlib import Path

from playhouse.migrations import Runner

from ..db import MIGRATIONS_DIR, open_database
from ..models import Scan, ScanState
from ..storage import Storage
from . import kinds
from .create import as_storage
from .errors import BackupError
from .kind import DatabaseKind
from .reports import RestoreReport
from .unpack import unpack_and_verify


def restore_backup(archive_path: str | Path, database_url: str, files: str | Path | Storage,
                   force: bool = False) -> RestoreReport:
    """Restore the archive into the instance at database_url and `files` (its storage, or its upload
    folder). Nothing in the target changes until the whole archive has been read and checked."""
    kind = kinds.for_url(database_url)
    archive_path, storage = Path(archive_path), as_storage(files)
    if not archive_path.is_file():
        raise BackupError(f"no backup at {archive_path}")
    if not force:
        _refuse_if_holding_data(kind, database_url, storage)
    # Local storage: inside the upload folder, so moving each file into place is an atomic rename.
    with storage.workdir() as staging:
        manifest = unpack_and_verify(archive_path, staging, kind)
        already = {found.key for found in storage.list()}
        restored = _place_files(manifest, staging, storage)
        kind.restore(database_url, staging / manifest["database"]["member"])
    counts = kind.counts(database_url)
    differing = [f"{table} {counts.get(table)} (manifest {expected})"
                 for table, expected in manifest["row_counts"].items() if counts.get(table) != expected]
    if differing:
        raise BackupError("restored, but row counts differ from the manifest: " + "; ".join(differing))
    applied = run_migrations(database_url)
    requeued = _requeue_busy_scans(kind, database_url)
    left_alone = len(already - {f["path"] for f in manifest["files"]})
    return RestoreReport(manifest, restored, applied, requeued, counts, left_alone)


def _refuse_if_holding_data(kind: DatabaseKind, url: str, storage: Storage) -> None:
    filled = sorted(table for table, count in kind.existing_counts(url).items() if count)
    if filled:
        raise BackupError(f"the target database already holds data ({', '.join(filled[:5])}"
                          f"{', ...' if len(filled) > 5 else ''}); restore into a fresh instance or pass --force "
                          f"to replace it")
    if next(storage.list(), None) is not None:
        raise BackupError(f"the file storage {storage.describe()} already holds files; restore into a fresh "
                          f"instance or pass --force")


def _place_files(manifest: dict, staging: Path, storage: Storage) -> int:
    for entry in manifest["files"]:
        # Each file appears whole or not at all (a rename in a folder, one PUT or multipart upload in a bucket).
        storage.put_file(entry["path"], staging / "files" / entry["path"], move=True)
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

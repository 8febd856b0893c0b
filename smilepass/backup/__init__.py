"""Backup and restore of one SmilePass instance: the database and the stored files, in one archive.

Restore checks the whole archive (every hash, the manifest, the database kind, the migrations it
knows) before it touches the target, and refuses a target that already holds data unless forced.

Flask-free: everything takes the database URL and the upload folder, so the command line, tests and
other tools call it alike. Where things are:
  kind.py, sqlite.py, postgres.py   one object per database kind: catalogue, snapshot, restore
  kinds.py                          picks the kind, once, from a URL or a manifest
  archive.py                        the archive format and the manifest
  create.py, unpack.py, restore.py  writing a backup; reading and checking one; restoring it
  reports.py, errors.py             what the operator is told
  rotation.py                       archives kept in one directory: their names, --keep, the newest"""
from .archive import FORMAT, FORMAT_VERSION, MANIFEST, stored_files
from .create import create_backup
from .errors import BackupError
from .kind import DatabaseKind, Snapshot
from .kinds import DATABASE_MEMBERS, applied_migrations, database_kind, for_url, referenced_files, row_counts
from .reports import BackupReport, RestoreReport
from .restore import restore_backup, run_migrations
from .sqlite import sqlite_path

__all__ = [
    "DATABASE_MEMBERS", "FORMAT", "FORMAT_VERSION", "MANIFEST", "BackupError", "BackupReport", "DatabaseKind",
    "RestoreReport", "Snapshot", "applied_migrations", "create_backup", "database_kind", "for_url",
    "referenced_files", "restore_backup", "row_counts", "run_migrations", "sqlite_path", "stored_files",
]

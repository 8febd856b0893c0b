"""What a database kind does for a backup, and what every kind shares: reading the catalogue, the
row counts, the migrations and the stored files a database names, through a plain DB-API cursor
(a snapshot or a restore's target is no peewee database).

A kind (sqlite.py, postgres.py) says how it connects, lists tables and columns, snapshots itself
while the app keeps writing, and puts a snapshot back. kinds.py picks the kind, once, from the URL
or from the manifest."""
from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from ..models import Attachment, Scan

MIGRATION_TABLE = "schema_migration"

# Columns that name a stored file: (column, folder under UPLOAD_DIR, column holding the original's
# SHA-256 or None). Only these make a file "referenced"; the hash lets a backup notice a stored file
# that no longer matches what was uploaded. Read with plain SQL, since a snapshot is no peewee database.
FILE_COLUMNS = [
    (Attachment.stored_name, "", Attachment.sha256),
    (Attachment.thumb_name, "", None),
    (Scan.stored_name, "scans", Scan.sha256),
    (Scan.repaired_name, "scans", None),
    (Scan.repaired_stl_name, "scans", None),
    (Scan.preview_before_name, "scans", None),
    (Scan.preview_after_name, "scans", None),
    (Scan.web_before_name, "scans", None),
    (Scan.web_after_name, "scans", None),
]


@dataclass
class Snapshot:
    """A database copy in the backup's work folder, and what was read from the very same state."""
    path: Path
    counts: dict[str, int]
    migrations: list[str]
    references: dict[str, str | None]
    details: dict = field(default_factory=dict)  # kind-specific facts the manifest keeps (tool versions)


class DatabaseKind(ABC):
    name: str  # as the manifest records it
    label: str  # as the operator reads it
    member: str  # the archive member that holds the snapshot
    # Refreshes the query planner's statistics after a restore's migrations.
    analyze_statements: tuple[str, ...] = ("ANALYZE",)

    @abstractmethod
    def handles(self, scheme: str) -> bool:
        """Whether a DATABASE_URL with this scheme is of this kind."""

    @abstractmethod
    def connect(self, url: str):
        """A DB-API connection of its own (the app's database proxy may point elsewhere)."""

    @abstractmethod
    def table_names(self, cursor) -> list[str]:
        """Every table in the database (or schema) the app uses."""

    @abstractmethod
    def column_names(self, cursor, table: str) -> set[str]:
        ...

    @abstractmethod
    def snapshot(self, url: str, workdir: Path) -> Snapshot:
        """A consistent copy at `workdir / self.member`, taken while others keep writing."""

    @abstractmethod
    def restore(self, url: str, dump: Path) -> None:
        """Replace the database at `url` with the snapshot `dump`."""

    def exists(self, url: str) -> bool:
        return True

    def existing_counts(self, url: str) -> dict[str, int]:
        """Row counts of a restore's target; none when it has no database yet."""
        return self.counts(url) if self.exists(url) else {}

    def check_can_restore(self, database: dict) -> None:
        """Refuse, before anything changes, a snapshot (the manifest's database entry) this machine
        cannot put back. Any snapshot will do unless a kind says otherwise."""
        return None

    # -----------------------------------------------------------------------------------------
    # The catalogue, alike for every kind

    def row_counts(self, cursor) -> dict[str, int]:
        """Rows per application table (the migration history is listed separately)."""
        counts = {}
        for table in sorted(self.table_names(cursor)):
            if table != MIGRATION_TABLE:
                cursor.execute(f'SELECT count(*) FROM "{table}"')
                counts[table] = cursor.fetchone()[0]
        return counts

    def applied_migrations(self, cursor) -> list[str]:
        if MIGRATION_TABLE not in self.table_names(cursor):
            return []
        cursor.execute(f'SELECT name FROM "{MIGRATION_TABLE}" ORDER BY name')
        return [row[0] for row in cursor.fetchall()]

    def referenced_files(self, cursor) -> dict[str, str | None]:
        """Every stored file the database names: relative path -> the SHA-256 its row records (None
        for derived files such as thumbnails and repair outputs)."""
        tables = set(self.table_names(cursor))
        files: dict[str, str | None] = {}
        for field_, folder, hash_field in FILE_COLUMNS:
            table, column = field_.model._meta.table_name, field_.column_name
            hash_column = hash_field.column_name if hash_field else None
            if table not in tables:
                continue  # a database older than the table
            columns = self.column_names(cursor, table)
            if column not in columns:
                continue
            digest = f'"{hash_column}"' if hash_column and hash_column in columns else "NULL"
            cursor.execute(f'SELECT "{column}", {digest} FROM "{table}" '
                           f'WHERE "{column}" IS NOT NULL AND "{column}" <> \'\'')
            for name, sha256 in cursor.fetchall():
                path = f"{folder}/{name}" if folder else name
                files[path] = sha256 or files.get(path)
        return files

    def describe(self, cursor, path: Path, **details) -> Snapshot:
        """The snapshot at `path`, with what `cursor` (reading the same state) says it holds."""
        return Snapshot(path, self.row_counts(cursor), self.applied_migrations(cursor),
                        self.referenced_files(cursor), details)

    # -----------------------------------------------------------------------------------------
    # One statement on a connection of its own

    def counts(self, url: str) -> dict[str, int]:
        with closing(self.connect(url)) as conn:
            return self.row_counts(conn.cursor())

    def execute(self, url: str, sql: str) -> int:
        """Run and commit one statement; returns how many rows it changed."""
        with closing(self.connect(url)) as conn:
            cursor = conn.cursor()
            cursor.execute(sql)
            changed = cursor.rowcount
            conn.commit()
            return changed

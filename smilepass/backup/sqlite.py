"""SQLite: the database is one file, copied with SQLite's online backup API and put back by an
atomic rename."""
from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

from ..db import SQLITE_ANALYSIS_LIMIT
from .errors import BackupError
from .kind import DatabaseKind, Snapshot


def sqlite_path(url: str) -> Path:
    return Path(url.split("sqlite:///", 1)[1])


class SQLiteKind(DatabaseKind):
    name = "sqlite"
    label = "SQLite"
    member = "database.sqlite3"
    # Sampling keeps ANALYZE cheap on large tables, with as many rows as db.refresh_statistics (with
    # 1,000 a restored 200,000-ticket database got plans 500 times slower for staff's ticket table).
    analyze_statements = (f"PRAGMA analysis_limit = {SQLITE_ANALYSIS_LIMIT}", "ANALYZE")

    def handles(self, scheme: str) -> bool:
        return scheme.startswith("sqlite")

    def connect(self, url: str):
        return sqlite3.connect(sqlite_path(url), timeout=30)

    def exists(self, url: str) -> bool:
        return sqlite_path(url).exists()

    def existing_counts(self, url: str) -> dict[str, int]:
        try:
            return super().existing_counts(url)
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"the target database cannot be read ({exc}); move it away or pass --force") from None

    def table_names(self, cursor) -> list[str]:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        return [row[0] for row in cursor.fetchall()]

    def column_names(self, cursor, table: str) -> set[str]:
        cursor.execute(f'PRAGMA table_info("{table}")')
        return {row[1] for row in cursor.fetchall()}

    def snapshot(self, url: str, workdir: Path) -> Snapshot:
        """The online backup API, in one step: it copies every page inside one read transaction, so
        the copy is consistent while others keep writing (WAL readers never block writers)."""
        source_path = sqlite_path(url)
        if not source_path.exists():
            raise BackupError(f"no database at {source_path}")
        target = workdir / self.member
        with closing(sqlite3.connect(source_path, timeout=30)) as source, closing(sqlite3.connect(target)) as copy:
            source.backup(copy)
            return self.describe(copy.cursor(), target)

    def restore(self, url: str, dump: Path) -> None:
        target = sqlite_path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        placed = target.parent / f".{target.name}.{secrets.token_hex(6)}.restore"
        shutil.copyfile(dump, placed)
        with open(placed, "rb+") as fh:
            os.fsync(fh.fileno())
        # A WAL left by the database being replaced would be replayed onto the restored file.
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        os.replace(placed, target)

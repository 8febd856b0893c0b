"""PostgreSQL: pg_dump of a snapshot that our own transaction exports (so the counts and file names
read beside it describe the same rows), and pg_restore into an emptied schema, in one transaction."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from contextlib import closing
from pathlib import Path
from urllib.parse import unquote, urlparse, urlunparse

import psycopg2

from .errors import BackupError, one_line
from .kind import DatabaseKind, Snapshot


def libpq_target(url: str) -> tuple[str, dict]:
    """The URL without its password (which would show in the process list) and the environment
    that carries the password to pg_dump/pg_restore instead."""
    parsed = urlparse(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = unquote(parsed.password)
        host = parsed.hostname or ""
        user = f"{parsed.username}@" if parsed.username else ""
        port = f":{parsed.port}" if parsed.port else ""
        parsed = parsed._replace(netloc=f"{user}{host}{port}")
    return urlunparse(parsed._replace(scheme="postgresql")), env


def pg_tool(name: str) -> tuple[str, int]:
    """Path and major version of pg_dump/pg_restore."""
    path = shutil.which(name)
    if not path:
        raise BackupError(f"{name} is not installed (Debian: apt-get install postgresql-client)")
    output = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", output)
    return path, int(match.group(1)) if match else 0


class PostgresKind(DatabaseKind):
    name = "postgresql"
    label = "PostgreSQL"
    member = "database.pgdump"

    def handles(self, scheme: str) -> bool:
        return scheme in ("postgres", "postgresql")

    def connect(self, url: str):
        try:
            return psycopg2.connect(url)
        except psycopg2.Error as exc:
            raise BackupError(f"cannot connect to PostgreSQL: {one_line(str(exc))}") from None

    def table_names(self, cursor) -> list[str]:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return [row[0] for row in cursor.fetchall()]

    def column_names(self, cursor, table: str) -> set[str]:
        cursor.execute("SELECT column_name FROM information_schema.columns "
                       "WHERE table_schema = current_schema() AND table_name = %s", (table,))
        return {row[0] for row in cursor.fetchall()}

    def snapshot(self, url: str, workdir: Path) -> Snapshot:
        """pg_dump (custom format) inside our repeatable-read transaction's exported snapshot."""
        pg_dump, client_major = pg_tool("pg_dump")
        target = workdir / self.member
        with closing(self.connect(url)) as conn:
            server_major = conn.server_version // 10000
            if client_major < server_major:
                raise BackupError(f"pg_dump {client_major} cannot dump a PostgreSQL {server_major} server: "
                                  f"install postgresql-client-{server_major}")
            conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
            with conn.cursor() as cursor:
                cursor.execute("SELECT pg_export_snapshot()")
                snapshot_id = cursor.fetchone()[0]
                snapshot = self.describe(cursor, target, pg_dump_major=client_major, server_major=server_major)
                dsn, env = libpq_target(url)
                # The exported snapshot lives as long as this transaction: pg_dump runs inside it.
                result = subprocess.run([pg_dump, "--format=custom", f"--snapshot={snapshot_id}", f"--file={target}",
                                         f"--dbname={dsn}"], capture_output=True, text=True, env=env)
                if result.returncode != 0:
                    raise BackupError(f"pg_dump failed: {one_line(result.stderr)}")
            conn.rollback()
        return snapshot

    def check_can_restore(self, database: dict) -> None:
        _, restore_major = pg_tool("pg_restore")
        dumped_by = database.get("pg_dump_major", 0)
        if restore_major < dumped_by:
            raise BackupError(f"the dump was written by pg_dump {dumped_by}; pg_restore {restore_major} cannot read "
                              f"it: install postgresql-client-{dumped_by}")

    def restore(self, url: str, dump: Path) -> None:
        pg_restore, _ = pg_tool("pg_restore")
        self._empty_schema(url)
        dsn, env = libpq_target(url)
        # One transaction: a restore that fails part-way leaves the (emptied) schema, not half the data.
        result = subprocess.run([pg_restore, "--clean", "--if-exists", "--no-owner", "--no-privileges",
                                 "--single-transaction", "--exit-on-error", f"--dbname={dsn}", str(dump)],
                                capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise BackupError(f"pg_restore failed: {one_line(result.stderr)}")

    def _empty_schema(self, url: str) -> None:
        """Drop the app's objects from the target schema: tables a newer migration created would
        otherwise survive --clean, and the migrations run after the restore would trip over them."""
        with closing(self.connect(url)) as conn:
            with conn.cursor() as cursor:
                for table in self.table_names(cursor):
                    cursor.execute(f'DROP TABLE IF EXISTS "{table}" CASCADE')
                cursor.execute("SELECT sequence_name FROM information_schema.sequences "
                               "WHERE sequence_schema = current_schema()")
                for (sequence,) in cursor.fetchall():
                    cursor.execute(f'DROP SEQUENCE IF EXISTS "{sequence}" CASCADE')
                # Trigger functions of the migrations (not those of extensions).
                cursor.execute("SELECT p.oid::regprocedure::text FROM pg_proc p "
                               "JOIN pg_namespace n ON n.oid = p.pronamespace "
                               "WHERE n.nspname = current_schema() AND NOT EXISTS "
                               "(SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')")
                for (function,) in cursor.fetchall():
                    cursor.execute(f"DROP FUNCTION IF EXISTS {function} CASCADE")
            conn.commit()

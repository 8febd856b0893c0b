"""Backup and restore of one SmilePass instance: the database and the stored files, in one archive.

The archive is a tar file (gzip-compressed when its name ends in .gz or .tgz) holding
  database.sqlite3 | database.pgdump   a consistent snapshot of the database
  files/<name>, files/scans/<name>     every stored file, as it is under UPLOAD_DIR
  manifest.json                        what the rest must be: sizes, SHA-256 hashes, row counts

The database is snapshotted first and the files copied after, so every file a snapshot row names is
already on disk (uploads store the file before the row that points to it commits). A file deleted in
between is reported in the manifest, not fatal. Files no row names are kept as well: a feature that
stores files this module does not know about yet must never lose them silently.

Restore checks the whole archive (every hash, the manifest, the database kind, the migrations it
knows) before it touches the target, and refuses a target that already holds data unless forced.

Flask-free: everything takes the database URL and the upload folder, so the command line, tests and
other tools call it alike."""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse, urlunparse

from .models import Attachment, Scan, ScanState

FORMAT = "smilepass-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE_MEMBERS = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}
FILES_PREFIX = "files/"
MIGRATION_TABLE = "schema_migration"
CHUNK = 1024 * 1024
# About 2 million files' entries; anything larger is not a manifest this code wrote.
MAX_MANIFEST_BYTES = 512 * CHUNK
# Temp names of uploads and repairs in progress: never complete files, never backed up.
TEMP_SUFFIXES = (".part", ".tmp")
# Paths inside the upload folder, as a backup writes them and a restore accepts them: relative, no
# "." or ".." parts, nothing hidden (staging areas and temp files are). Stored names are random tokens,
# but the rule does not rely on that, so a folder a newer feature adds backs up and restores as well.
MAX_DEPTH = 16

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
]


class BackupError(Exception):
    """A backup or restore that cannot go on; the message is one line meant for the operator."""


def database_kind(url: str) -> str:
    scheme = urlparse(url).scheme
    if scheme.startswith("sqlite"):
        return "sqlite"
    if scheme in ("postgres", "postgresql"):
        return "postgresql"
    raise BackupError(f"DATABASE_URL scheme {scheme!r} is not supported (use sqlite:/// or postgresql://)")


def sqlite_path(url: str) -> Path:
    return Path(url.split("sqlite:///", 1)[1])


# ---------------------------------------------------------------------------------------------
# Reading a database (a snapshot or a restored target) through plain DB-API cursors


def _tables(cursor, kind: str) -> list[str]:
    if kind == "sqlite":
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    else:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    return sorted(row[0] for row in cursor.fetchall())


def _columns(cursor, kind: str, table: str) -> set[str]:
    if kind == "sqlite":
        cursor.execute(f'PRAGMA table_info("{table}")')
        return {row[1] for row in cursor.fetchall()}
    cursor.execute("SELECT column_name FROM information_schema.columns "
                   "WHERE table_schema = current_schema() AND table_name = %s", (table,))
    return {row[0] for row in cursor.fetchall()}


def row_counts(cursor, kind: str) -> dict[str, int]:
    """Rows per application table (the migration history is listed separately)."""
    counts = {}
    for table in _tables(cursor, kind):
        if table != MIGRATION_TABLE:
            cursor.execute(f'SELECT count(*) FROM "{table}"')
            counts[table] = cursor.fetchone()[0]
    return counts


def applied_migrations(cursor, kind: str) -> list[str]:
    if MIGRATION_TABLE not in _tables(cursor, kind):
        return []
    cursor.execute(f'SELECT name FROM "{MIGRATION_TABLE}" ORDER BY name')
    return [row[0] for row in cursor.fetchall()]


def referenced_files(cursor, kind: str) -> dict[str, str | None]:
    """Every stored file the database names: relative path -> the SHA-256 its row records (None
    for derived files such as thumbnails and repair outputs)."""
    tables = set(_tables(cursor, kind))
    files: dict[str, str | None] = {}
    for field_, folder, hash_field in FILE_COLUMNS:
        table, column = field_.model._meta.table_name, field_.column_name
        hash_column = hash_field.column_name if hash_field else None
        if table not in tables:
            continue  # a database older than the table
        columns = _columns(cursor, kind, table)
        if column not in columns:
            continue
        digest = f'"{hash_column}"' if hash_column and hash_column in columns else "NULL"
        cursor.execute(f'SELECT "{column}", {digest} FROM "{table}" WHERE "{column}" IS NOT NULL AND "{column}" <> \'\'')
        for name, sha256 in cursor.fetchall():
            path = f"{folder}/{name}" if folder else name
            files[path] = sha256 or files.get(path)
    return files


# ---------------------------------------------------------------------------------------------
# Database snapshots


@dataclass
class Snapshot:
    path: Path
    counts: dict[str, int]
    migrations: list[str]
    references: dict[str, str | None]
    details: dict = field(default_factory=dict)


def _snapshot_sqlite(url: str, workdir: Path) -> Snapshot:
    """SQLite's online backup API, in one step: it copies every page inside one read transaction,
    so the copy is consistent while others keep writing (WAL readers never block writers)."""
    source_path = sqlite_path(url)
    if not source_path.exists():
        raise BackupError(f"no database at {source_path}")
    target = workdir / DATABASE_MEMBERS["sqlite"]
    source = sqlite3.connect(source_path, timeout=30)
    try:
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
            cursor = copy.cursor()
            snapshot = Snapshot(target, row_counts(cursor, "sqlite"), applied_migrations(cursor, "sqlite"),
                                referenced_files(cursor, "sqlite"))
        finally:
            copy.close()
    finally:
        source.close()
    return snapshot


def _libpq(url: str) -> tuple[str, dict]:
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


def _pg_tool(name: str) -> tuple[str, int]:
    """Path and major version of pg_dump/pg_restore."""
    path = shutil.which(name)
    if not path:
        raise BackupError(f"{name} is not installed (Debian: apt-get install postgresql-client)")
    output = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", output)
    return path, int(match.group(1)) if match else 0


def _pg_connect(url: str):
    import psycopg2

    try:
        return psycopg2.connect(url)
    except psycopg2.Error as exc:
        raise BackupError(f"cannot connect to PostgreSQL: {_one_line(str(exc))}") from None


def _snapshot_postgres(url: str, workdir: Path) -> Snapshot:
    """pg_dump (custom format) of a snapshot exported by our own repeatable-read transaction, so the
    row counts and file names read here describe exactly the rows in the dump."""
    pg_dump, client_major = _pg_tool("pg_dump")
    target = workdir / DATABASE_MEMBERS["postgresql"]
    conn = _pg_connect(url)
    try:
        server_major = conn.server_version // 10000
        if client_major < server_major:
            raise BackupError(f"pg_dump {client_major} cannot dump a PostgreSQL {server_major} server: "
                              f"install postgresql-client-{server_major}")
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot_id = cursor.fetchone()[0]
            counts = row_counts(cursor, "postgresql")
            migrations = applied_migrations(cursor, "postgresql")
            references = referenced_files(cursor, "postgresql")
            dsn, env = _libpq(url)
            # The exported snapshot lives as long as this transaction: pg_dump runs inside it.
            result = subprocess.run([pg_dump, "--format=custom", f"--snapshot={snapshot_id}", f"--file={target}",
                                     f"--dbname={dsn}"], capture_output=True, text=True, env=env)
            if result.returncode != 0:
                raise BackupError(f"pg_dump failed: {_one_line(result.stderr)}")
        conn.rollback()
    finally:
        conn.close()
    return Snapshot(target, counts, migrations, references,
                    {"pg_dump_major": client_major, "server_major": server_major})


# ---------------------------------------------------------------------------------------------
# Writing an archive


class _HashingReader:
    """A file object that hashes what tarfile reads from it."""

    def __init__(self, fileobj):
        self.fileobj = fileobj
        self.digest = hashlib.sha256()

    def read(self, size=-1):
        data = self.fileobj.read(size)
        self.digest.update(data)
        return data


def _add_file(archive: tarfile.TarFile, name: str, fileobj) -> dict:
    stat = os.fstat(fileobj.fileno())
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = stat.st_size, int(stat.st_mtime), 0o600
    reader = _HashingReader(fileobj)
    archive.addfile(info, reader)
    return {"size": stat.st_size, "sha256": reader.digest.hexdigest()}


def stored_files(upload_dir: Path) -> list[str]:
    """Relative paths of the complete files under UPLOAD_DIR (no temp files, no hidden folders such
    as a restore's staging area), sorted."""
    found = []
    for folder, dirs, names in os.walk(upload_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            if name.startswith(".") or name.endswith(TEMP_SUFFIXES):
                continue
            found.append(Path(folder, name).relative_to(upload_dir).as_posix())
    return sorted(found)


@dataclass
class BackupReport:
    path: Path
    manifest: dict

    def lines(self) -> list[str]:
        m = self.manifest
        files = m["files"]
        size = sum(f["size"] for f in files) + m["database"]["size"]
        unreferenced = sum(1 for f in files if not f["referenced"])
        lines = [f"backup written to {self.path} ({_human(size)} before compression)",
                 f"database: {m['database']['kind']}, {sum(m['row_counts'].values())} rows in "
                 f"{len(m['row_counts'])} tables, migrations up to {(m['migrations'] or ['none'])[-1]}",
                 f"files: {len(files)} ({unreferenced} not named by any row)"]
        for path in m["missing_files"]:
            lines.append(f"warning: {path} is named in the database but was gone from the upload folder")
        for item in m["hash_mismatches"]:
            lines.append(f"warning: {item['path']} no longer matches the SHA-256 recorded at upload")
        return lines


def create_backup(database_url: str, upload_dir: str | Path, target: str | Path,
                  now: dt.datetime | None = None) -> BackupReport:
    """Write the archive to `target` (under a temp name, renamed when complete)."""
    kind = database_kind(database_url)
    upload_dir, target = Path(upload_dir), Path(target)
    if target.resolve().is_relative_to(upload_dir.resolve()):
        raise BackupError(f"write the backup outside the upload folder {upload_dir} (the next backup would hold it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    compressed = target.name.endswith((".gz", ".tgz"))
    partial = target.parent / f".{target.name}.{secrets.token_hex(6)}.part"
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".smilepass-backup-") as workdir:
        snapshot = (_snapshot_sqlite if kind == "sqlite" else _snapshot_postgres)(database_url, Path(workdir))
        # Patient data: only the owner may read the archive.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as raw:
                with tarfile.open(fileobj=raw, mode="w:gz" if compressed else "w", format=tarfile.PAX_FORMAT) as archive:
                    manifest = _write_members(archive, kind, snapshot, upload_dir, now)
                    data = json.dumps(manifest, indent=1, sort_keys=True).encode()
                    info = tarfile.TarInfo(MANIFEST)
                    info.size, info.mtime, info.mode = len(data), int(_now(now).timestamp()), 0o600
                    archive.addfile(info, _BytesReader(data))
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return BackupReport(target, manifest)


def _write_members(archive, kind: str, snapshot: Snapshot, upload_dir: Path, now) -> dict:
    with open(snapshot.path, "rb") as fh:
        database = {"kind": kind, "member": DATABASE_MEMBERS[kind], **_add_file(archive, DATABASE_MEMBERS[kind], fh),
                    **snapshot.details}
    files, missing, mismatches = [], [], []
    on_disk = set(stored_files(upload_dir)) if upload_dir.exists() else set()
    for path in sorted(on_disk | set(snapshot.references)):
        if not _safe_relative(path):
            # Only a hand-edited row could name such a path; it is never read outside the folder.
            missing.append(path)
            continue
        try:
            fh = open(upload_dir / path, "rb")
        except FileNotFoundError:
            # Deleted between the snapshot and now (or lost earlier): say so, keep going.
            if path in snapshot.references:
                missing.append(path)
            continue
        with fh:
            entry = {"path": path, "referenced": path in snapshot.references,
                     **_add_file(archive, FILES_PREFIX + path, fh)}
        recorded = snapshot.references.get(path)
        if recorded and recorded != entry["sha256"]:
            mismatches.append({"path": path, "recorded": recorded, "actual": entry["sha256"]})
        files.append(entry)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": _now(now).isoformat(timespec="seconds"),
        "database": database,
        "migrations": snapshot.migrations,
        "row_counts": snapshot.counts,
        "files": files,
        "missing_files": missing,
        "hash_mismatches": mismatches,
    }


class _BytesReader:
    def __init__(self, data: bytes):
        self.data, self.offset = data, 0

    def read(self, size=-1):
        end = len(self.data) if size is None or size < 0 else self.offset + size
        chunk, self.offset = self.data[self.offset:end], min(end, len(self.data))
        return chunk


# ---------------------------------------------------------------------------------------------
# Restoring


@dataclass
class RestoreReport:
    manifest: dict
    files_restored: int
    migrations_applied: list[str]
    scans_requeued: int
    counts: dict[str, int]
    files_left_alone: int = 0

    def lines(self) -> list[str]:
        m = self.manifest
        lines = [f"restored the {m['database']['kind']} backup of {m['created_at']}: "
                 f"{sum(self.counts.get(t, 0) for t in m['row_counts'])} rows in {len(m['row_counts'])} tables "
                 f"(as in the manifest), {self.files_restored} files (hashes checked)",
                 "migrations applied: " + (", ".join(self.migrations_applied) or "none, the backup was up to date")]
        if self.scans_requeued:
            lines.append(f"{self.scans_requeued} scans that were queued or being repaired wait for a worker again")
        if self.files_left_alone:
            lines.append(f"{self.files_left_alone} files already in the upload folder that the backup does not "
                         f"hold were left alone")
        return lines


def restore_backup(archive_path: str | Path, database_url: str, upload_dir: str | Path,
                   force: bool = False) -> RestoreReport:
    """Restore the archive into the instance at database_url/upload_dir. Nothing in the target
    changes until the whole archive has been read and checked."""
    kind = database_kind(database_url)
    archive_path, upload_dir = Path(archive_path), Path(upload_dir)
    if not archive_path.is_file():
        raise BackupError(f"no backup at {archive_path}")
    if not force:
        _refuse_if_holding_data(kind, database_url, upload_dir)
    upload_dir.mkdir(parents=True, exist_ok=True)
    # Inside the upload folder, so moving each file into place is an atomic rename.
    staging = Path(tempfile.mkdtemp(dir=upload_dir, prefix=".restore-"))
    try:
        manifest = _unpack_and_verify(archive_path, staging, kind)
        already = set(stored_files(upload_dir))
        restored = _place_files(manifest, staging, upload_dir)
        _restore_database(kind, database_url, staging / manifest["database"]["member"], manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    counts = _counts_of(kind, database_url)
    differing = [f"{table} {counts.get(table)} (manifest {expected})"
                 for table, expected in manifest["row_counts"].items() if counts.get(table) != expected]
    if differing:
        raise BackupError("restored, but row counts differ from the manifest: " + "; ".join(differing))
    applied = run_migrations(database_url)
    requeued = _requeue_busy_scans(kind, database_url)
    left_alone = len(already - {f["path"] for f in manifest["files"]})
    return RestoreReport(manifest, restored, applied, requeued, counts, left_alone)


def _refuse_if_holding_data(kind: str, url: str, upload_dir: Path) -> None:
    try:
        counts = _counts_of(kind, url) if _database_exists(kind, url) else {}
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"the target database cannot be read ({exc}); move it away or pass --force") from None
    filled = sorted(table for table, count in counts.items() if count)
    if filled:
        raise BackupError(f"the target database already holds data ({', '.join(filled[:5])}"
                          f"{', ...' if len(filled) > 5 else ''}); restore into a fresh instance or pass --force "
                          f"to replace it")
    if upload_dir.exists() and stored_files(upload_dir):
        raise BackupError(f"the upload folder {upload_dir} already holds files; restore into a fresh instance "
                          f"or pass --force")


def _database_exists(kind: str, url: str) -> bool:
    return sqlite_path(url).exists() if kind == "sqlite" else True


def _counts_of(kind: str, url: str) -> dict[str, int]:
    if kind == "sqlite":
        conn = sqlite3.connect(sqlite_path(url), timeout=30)
        try:
            return row_counts(conn.cursor(), "sqlite")
        finally:
            conn.close()
    conn = _pg_connect(url)
    try:
        with conn.cursor() as cursor:
            return row_counts(cursor, "postgresql")
    finally:
        conn.close()


def _unpack_and_verify(archive_path: Path, staging: Path, kind: str) -> dict:
    """Read the archive once, front to back, writing each member into `staging` while hashing it;
    then hold everything against the manifest. Any doubt ends the restore here."""
    seen: dict[str, dict] = {}
    manifest_bytes = None
    try:
        with tarfile.open(archive_path, mode="r|*") as archive:
            for member in archive:
                name = member.name
                if not member.isfile() or name in seen or (name == MANIFEST and manifest_bytes is not None):
                    raise BackupError(f"unexpected entry {name!r} in the archive: not a SmilePass backup")
                source = archive.extractfile(member)
                if name == MANIFEST:
                    if member.size > MAX_MANIFEST_BYTES:
                        raise BackupError("the manifest is implausibly large: not a SmilePass backup")
                    manifest_bytes = source.read()
                    continue
                if name in DATABASE_MEMBERS.values():
                    destination = staging / name
                elif name.startswith(FILES_PREFIX) and _safe_relative(name[len(FILES_PREFIX):]):
                    destination = staging / "files" / name[len(FILES_PREFIX):]
                    destination.parent.mkdir(parents=True, exist_ok=True)
                else:
                    raise BackupError(f"unexpected entry {name!r} in the archive: not a SmilePass backup")
                seen[name] = _copy_hashing(source, destination)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        # Other OSErrors (a full disk on our side) are not the archive's fault and propagate.
        raise BackupError(f"the archive is damaged or incomplete ({_one_line(str(exc)) or type(exc).__name__})") from None
    if manifest_bytes is None:
        raise BackupError("the archive is damaged or incomplete: it has no manifest")
    manifest = _parse_manifest(manifest_bytes)
    if manifest["database"]["kind"] != kind:
        theirs = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
        raise BackupError(f"this is a backup of a {theirs[manifest['database']['kind']]} database and the target is "
                          f"{theirs[kind]}; restoring across database kinds is not supported")
    expected = {manifest["database"]["member"]: manifest["database"]}
    expected.update({FILES_PREFIX + f["path"]: f for f in manifest["files"]})
    for name, entry in expected.items():
        got = seen.get(name)
        if got is None:
            raise BackupError(f"the archive is damaged or incomplete: {name} is missing")
        if got["sha256"] != entry["sha256"] or got["size"] != entry["size"]:
            raise BackupError(f"{name} does not match its SHA-256 in the manifest: the archive was damaged or altered")
    extra = sorted(set(seen) - set(expected))
    if extra:
        raise BackupError(f"{extra[0]} is in the archive but not in its manifest: the archive was altered")
    _check_migrations_known(manifest["migrations"])
    if kind == "postgresql":
        _, restore_major = _pg_tool("pg_restore")
        dumped_by = manifest["database"].get("pg_dump_major", 0)
        if restore_major < dumped_by:
            raise BackupError(f"the dump was written by pg_dump {dumped_by}; pg_restore {restore_major} cannot read it: "
                              f"install postgresql-client-{dumped_by}")
    return manifest


def _copy_hashing(source, destination: Path) -> dict:
    digest, size = hashlib.sha256(), 0
    with open(destination, "wb") as out:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())  # renamed into place later: the rename must not outrun the data
    return {"sha256": digest.hexdigest(), "size": size}


def _safe_relative(path: str) -> bool:
    parts = path.split("/")
    return 1 <= len(parts) <= MAX_DEPTH and all(part and not part.startswith(".") and "\x00" not in part
                                                for part in parts)


def _parse_manifest(data: bytes) -> dict:
    try:
        manifest = json.loads(data)
    except ValueError:
        raise BackupError("the manifest is not valid JSON: the archive was damaged or altered") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("not a SmilePass backup (its manifest says otherwise)")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"backup format version {manifest.get('format_version')!r} is not supported by this "
                          f"SmilePass (it reads version {FORMAT_VERSION})")
    try:
        database = manifest["database"]
        assert database["kind"] in DATABASE_MEMBERS and database["member"] == DATABASE_MEMBERS[database["kind"]]
        assert all(isinstance(v, int) for v in manifest["row_counts"].values())
        assert all(isinstance(name, str) for name in manifest["migrations"])
        assert all(_safe_relative(f["path"]) and isinstance(f["size"], int) and isinstance(f["sha256"], str)
                   for f in manifest["files"])
    except (KeyError, TypeError, AssertionError, AttributeError):
        raise BackupError("the manifest is incomplete: the archive was damaged or altered") from None
    return manifest


def _check_migrations_known(applied: list[str]) -> None:
    from .db import MIGRATIONS_DIR

    known = {path.stem for path in MIGRATIONS_DIR.glob("[0-9]*.py")}
    unknown = sorted(set(applied) - known)
    if unknown:
        raise BackupError(f"the backup comes from a newer SmilePass (migrations {', '.join(unknown)} are unknown "
                          f"here): upgrade this installation first")


def _place_files(manifest: dict, staging: Path, upload_dir: Path) -> int:
    for entry in manifest["files"]:
        destination = upload_dir / entry["path"]
        destination.parent.mkdir(parents=True, exist_ok=True)
        # A rename within one file system: each file appears whole or not at all.
        os.replace(staging / "files" / entry["path"], destination)
    return len(manifest["files"])


def _restore_database(kind: str, url: str, dump: Path, manifest: dict) -> None:
    if kind == "sqlite":
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
        return
    pg_restore, _ = _pg_tool("pg_restore")
    _empty_postgres_schema(url)
    dsn, env = _libpq(url)
    # One transaction: a restore that fails part-way leaves the (emptied) schema, not half the data.
    result = subprocess.run([pg_restore, "--clean", "--if-exists", "--no-owner", "--no-privileges",
                             "--single-transaction", "--exit-on-error", f"--dbname={dsn}", str(dump)],
                            capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed: {_one_line(result.stderr)}")


def _empty_postgres_schema(url: str) -> None:
    """Drop the app's objects from the target schema: tables a newer migration created would
    otherwise survive --clean, and the migrations run after the restore would trip over them."""
    conn = _pg_connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            for (table,) in cursor.fetchall():
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
    finally:
        conn.close()


def run_migrations(url: str) -> list[str]:
    """Bring a restored (possibly older) database up to this code's schema, on a connection of its
    own (the app's database proxy may point elsewhere, e.g. in tests)."""
    from playhouse.migrations import Runner

    from .db import MIGRATIONS_DIR, open_database

    database = open_database(url)
    try:
        with database.connection_context():
            applied = Runner(database, str(MIGRATIONS_DIR)).up()
            if database_kind(url) == "sqlite":
                database.execute_sql("PRAGMA analysis_limit = 1000")
            database.execute_sql("ANALYZE")
    finally:
        if hasattr(database, "close_all"):
            database.close_all()
        elif not database.is_closed():
            database.close()
    return applied


def _requeue_busy_scans(kind: str, url: str) -> int:
    """The job queue lives in Redis, not in the backup: scans that were queued or being repaired
    when it was taken go back to "waiting", and the scan sweep hands them to a worker."""
    sql = (f"UPDATE {Scan._meta.table_name} SET state = '{ScanState.WAITING.value}', stage = '' "
           f"WHERE state IN ('{ScanState.QUEUED.value}', '{ScanState.PROCESSING.value}')")
    if kind == "sqlite":
        conn = sqlite3.connect(sqlite_path(url), timeout=30)
        try:
            with conn:
                return conn.execute(sql).rowcount
        finally:
            conn.close()
    conn = _pg_connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
            count = cursor.rowcount
        conn.commit()
        return count
    finally:
        conn.close()


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.timezone.utc)


def _one_line(text: str) -> str:
    """The first line of a tool's error output: pg_dump/pg_restore put the error there."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def _human(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} bytes"

"""Writing a backup: the database is snapshotted first and the files copied after, so every file a
snapshot row names is already on disk (uploads store the file before the row that points to it
commits). A file deleted in between is reported in the manifest, not fatal. Files no row names are
kept as well: a feature that stores files this code does not know about yet must never lose them.
Files come from the configured storage: the upload folder or an S3 bucket alike."""
from __future__ import annotations

import datetime as dt
import io
import os
import secrets
import tarfile
import tempfile
from pathlib import Path

from ..storage import Storage
from ..storage.local import LocalStorage
from . import kinds
from .archive import (
    FILES_PREFIX,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    add_file,
    manifest_bytes,
    safe_relative,
)
from .errors import BackupError
from .kind import DatabaseKind, Snapshot
from .reports import BackupReport


def as_storage(files: str | Path | Storage) -> Storage:
    """A storage, or an upload folder as one."""
    return files if isinstance(files, Storage) else LocalStorage(files)


def create_backup(database_url: str, files: str | Path | Storage, target: str | Path,
                  now: dt.datetime | None = None) -> BackupReport:
    """Write the archive to `target` (under a temp name, renamed when complete); `files` is the storage
    (or the upload folder) whose files go in."""
    kind = kinds.for_url(database_url)
    storage, target = as_storage(files), Path(target)
    if isinstance(storage, LocalStorage) and target.resolve().is_relative_to(storage.root.resolve()):
        raise BackupError(f"write the backup outside the upload folder {storage.root} (the next backup would "
                          f"hold it)")
    now = now or dt.datetime.now(dt.UTC)
    target.parent.mkdir(parents=True, exist_ok=True)
    compressed = target.name.endswith((".gz", ".tgz"))
    partial = target.parent / f".{target.name}.{secrets.token_hex(6)}.part"
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".smilepass-backup-") as workdir:
        snapshot = kind.snapshot(database_url, Path(workdir))
        # Patient data: only the owner may read the archive.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as raw:
                mode = "w:gz" if compressed else "w"
                with tarfile.open(fileobj=raw, mode=mode, format=tarfile.PAX_FORMAT) as archive:
                    manifest = _write_members(archive, kind, snapshot, storage, now)
                    data = manifest_bytes(manifest)
                    info = tarfile.TarInfo(MANIFEST)
                    info.size, info.mtime, info.mode = len(data), int(now.timestamp()), 0o600
                    archive.addfile(info, io.BytesIO(data))
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return BackupReport(target, manifest)


def _write_members(archive: tarfile.TarFile, kind: DatabaseKind, snapshot: Snapshot, storage: Storage,
                   now: dt.datetime) -> dict:
    """The database and the stored files, in that order; returns the manifest that describes them."""
    with open(snapshot.path, "rb") as fh:
        database = {"kind": kind.name, "member": kind.member, **add_file(archive, kind.member, fh),
                    **snapshot.details}
    files, missing, mismatches = [], [], []
    stored = {found.key: found for found in storage.list()}
    for path in sorted(set(stored) | set(snapshot.references)):
        if not safe_relative(path):
            # Only a hand-edited row could name such a path; it is never read outside the folder.
            missing.append(path)
            continue
        found = stored.get(path) or storage.stat(path)
        try:
            if found is None:
                raise FileNotFoundError(path)
            fh = storage.open(path)
        except FileNotFoundError:
            # Deleted between the snapshot and now (or lost earlier): say so, keep going.
            if path in snapshot.references:
                missing.append(path)
            continue
        with fh:
            entry = {"path": path, "referenced": path in snapshot.references,
                     **add_file(archive, FILES_PREFIX + path, fh, found.size, found.modified)}
        recorded = snapshot.references.get(path)
        if recorded and recorded != entry["sha256"]:
            mismatches.append({"path": path, "recorded": recorded, "actual": entry["sha256"]})
        files.append(entry)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": now.isoformat(timespec="seconds"),
        "database": database,
        "migrations": snapshot.migrations,
        "row_counts": snapshot.counts,
        "files": files,
        "missing_files": missing,
        "hash_mismatches": mismatches,
    }

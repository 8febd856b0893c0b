"""Writing a backup: the database is snapshotted first and the files copied after, so every file a
snapshot row names is already on disk (uploads store the file before the row that points to it
commits). A file deleted in between is reported in the manifest, not fatal. Files no row names are
kept as well: a feature that stores files this code does not know about yet must never lose them."""
from __future__ import annotations

import datetime as dt
import io
import os
import secrets
import tarfile
import tempfile
from pathlib import Path

from . import kinds
from .archive import (
    FILES_PREFIX,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    add_file,
    manifest_bytes,
    safe_relative,
    stored_files,
)
from .errors import BackupError
from .kind import DatabaseKind, Snapshot
from .reports import BackupReport


def create_backup(database_url: str, upload_dir: str | Path, target: str | Path,
                  now: dt.datetime | None = None) -> BackupReport:
    """Write the archive to `target` (under a temp name, renamed when complete)."""
    kind = kinds.for_url(database_url)
    upload_dir, target = Path(upload_dir), Path(target)
    if target.resolve().is_relative_to(upload_dir.resolve()):
        raise BackupError(f"write the backup outside the upload folder {upload_dir} (the next backup would hold it)")
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
                    manifest = _write_members(archive, kind, snapshot, upload_dir, now)
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


def _write_members(archive: tarfile.TarFile, kind: DatabaseKind, snapshot: Snapshot, upload_dir: Path,
                   now: dt.datetime) -> dict:
    """The database and the stored files, in that order; returns the manifest that describes them."""
    with open(snapshot.path, "rb") as fh:
        database = {"kind": kind.name, "member": kind.member, **add_file(archive, kind.member, fh),
                    **snapshot.details}
    files, missing, mismatches = [], [], []
    on_disk = set(stored_files(upload_dir)) if upload_dir.exists() else set()
    for path in sorted(on_disk | set(snapshot.references)):
        if not safe_relative(path):
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
                     **add_file(archive, FILES_PREFIX + path, fh)}
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

"""The archive format: a tar file (gzip-compressed when its name ends in .gz or .tgz) holding

  database.sqlite3 | database.pgdump   a consistent snapshot of the database (kinds.DATABASE_MEMBERS)
  files/<name>, files/scans/<name>     every stored file, by its storage key (the same in a folder and in
                                       a bucket, so a backup of one restores into the other)
  manifest.json                        what the rest must be: sizes, SHA-256 hashes, row counts

and the rules both sides keep: which paths may be in it, how members are hashed on the way in and
out, and what a manifest must hold."""
from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path

from .errors import BackupError
from .kinds import DATABASE_MEMBERS

FORMAT = "smilepass-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FILES_PREFIX = "files/"
CHUNK = 1024 * 1024
# About 2 million files' entries; anything larger is not a manifest this code wrote.
MAX_MANIFEST_BYTES = 512 * CHUNK
# Temp names of uploads and repairs in progress: never complete files, never backed up.
TEMP_SUFFIXES = (".part", ".tmp")
# Paths inside the upload folder, as a backup writes them and a restore accepts them: relative, no
# "." or ".." parts, nothing hidden (staging areas and temp files are). Stored names are random tokens,
# but the rule does not rely on that, so a folder a newer feature adds backs up and restores as well.
MAX_DEPTH = 16


def safe_relative(path: str) -> bool:
    parts = path.split("/")
    return 1 <= len(parts) <= MAX_DEPTH and all(part and not part.startswith(".") and "\x00" not in part
                                                for part in parts)


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


class _HashingReader:
    """A file object that hashes what tarfile reads from it."""

    def __init__(self, fileobj):
        self.fileobj = fileobj
        self.digest = hashlib.sha256()

    def read(self, size=-1):
        data = self.fileobj.read(size)
        self.digest.update(data)
        return data


def add_file(archive: tarfile.TarFile, name: str, fileobj, size: int | None = None,
             mtime: float | None = None) -> dict:
    """Write an open file as member `name` (size and mtime from the file itself unless given, e.g. for
    an object read from a bucket); returns its manifest entry (size and SHA-256)."""
    if size is None:
        stat = os.fstat(fileobj.fileno())
        size, mtime = stat.st_size, stat.st_mtime
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(mtime or 0), 0o600
    reader = _HashingReader(fileobj)
    archive.addfile(info, reader)
    return {"size": size, "sha256": reader.digest.hexdigest()}


def copy_hashing(source, destination: Path) -> dict:
    """Write a member read from an archive to `destination`; returns its size and SHA-256."""
    digest, size = hashlib.sha256(), 0
    with open(destination, "wb") as out:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())  # renamed into place later: the rename must not outrun the data
    return {"sha256": digest.hexdigest(), "size": size}


def manifest_bytes(manifest: dict) -> bytes:
    return json.dumps(manifest, indent=1, sort_keys=True).encode()


def parse_manifest(data: bytes) -> dict:
    """The manifest, once it is sure to be one this code can read."""
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
        assert all(safe_relative(f["path"]) and isinstance(f["size"], int) and isinstance(f["sha256"], str)
                   for f in manifest["files"])
    except (KeyError, TypeError, AssertionError, AttributeError):
        raise BackupError("the manifest is incomplete: the archive was damaged or altered") from None
    return manifest

"""Stored scan files: an upload is streamed to disk in chunks (never whole in memory), hashed and
checked before anything else reads it; repaired outputs sit beside the originals under random names."""
import hashlib
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from flask_babel import gettext

from ..mesh import MeshRejected, inspect_file
from .text import rejection_text

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024
SCAN_EXTENSIONS = (".stl", ".ply")


class ScanRefused(Exception):
    pass


@dataclass
class StoredScan:
    stored_name: str
    size: int
    sha256: str
    file_format: str
    triangles: int


def scan_dir(upload_dir: str) -> Path:
    path = Path(upload_dir) / "scans"
    path.mkdir(parents=True, exist_ok=True)
    return path


def store_scan(stream, upload_dir: str, max_bytes: int) -> StoredScan:
    """Copy the upload to disk in chunks (never whole in memory), hashing as it goes, then check its
    structure before anything else reads it. A refused file leaves nothing behind."""
    directory = scan_dir(upload_dir)
    token = secrets.token_hex(16)
    part = directory / f"{token}.part"
    digest, size = hashlib.sha256(), 0
    try:
        with open(part, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise ScanRefused(gettext("The scan is larger than the %(size)s this server accepts.",
                                              size=_megabytes(max_bytes)))
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise ScanRefused(gettext("The scan file is empty."))
        try:
            info = inspect_file(part)
        except MeshRejected as exc:
            raise ScanRefused(rejection_text(exc)) from None
        stored_name = token + info.extension
        os.replace(part, directory / stored_name)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return StoredScan(stored_name, size, digest.hexdigest(), info.format, info.triangles)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB" if size >= 1024 * 1024 else f"{size / (1024 * 1024):.1f} MB"


def remove_files(upload_dir: str, names) -> None:
    directory = scan_dir(upload_dir)
    for name in names:
        if name:
            (directory / name).unlink(missing_ok=True)



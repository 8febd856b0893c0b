"""Stored scan files: an upload is streamed to this host's disk in chunks (never whole in memory), hashed
and checked there, and only then put into the file storage (a folder or a bucket) under "scans/<random
name>"; repaired outputs sit beside the originals, named after the input's hash (see repair.py)."""
import hashlib
import logging
import secrets
from dataclasses import dataclass

from flask_babel import gettext

from ..mesh import MeshRejected, inspect_file
from ..storage import Storage, StorageUnavailable
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


SCAN_FOLDER = "scans"


def scan_key(name: str) -> str:
    """The storage key of a scan file (an upload, a repaired mesh or a preview) by its stored name."""
    return f"{SCAN_FOLDER}/{name}"


def store_scan(stream, storage: Storage, max_bytes: int) -> StoredScan:
    """Copy the upload to a work folder in chunks (never whole in memory), hashing as it goes, check its
    structure, then store it. A refused file leaves nothing behind."""
    token = secrets.token_hex(16)
    with storage.workdir() as folder:
        part = folder / f"{token}.part"
        digest, size = hashlib.sha256(), 0
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
        storage.put_file(scan_key(stored_name), part, move=True)
    return StoredScan(stored_name, size, digest.hexdigest(), info.format, info.triangles)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB" if size >= 1024 * 1024 else f"{size / (1024 * 1024):.1f} MB"


def remove_files(storage: Storage, names) -> None:
    """Remove scan files by stored name; with the storage unreachable they stay (`flask storage orphans`
    removes files no row names)."""
    for name in names:
        if name:
            try:
                storage.delete(scan_key(name))
            except StorageUnavailable:
                log.warning("a scan file stays in the storage for now (unreachable)")

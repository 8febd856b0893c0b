"""The storage interface both backends keep."""
from __future__ import annotations

import hashlib
import io
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1024 * 1024
MAX_DEPTH = 16


class StorageUnavailable(Exception):
    """The storage could not be reached (or refused us): nothing was stored or read; try again later."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    modified: float  # POSIX timestamp


def valid_key(key: str) -> bool:
    """Relative, no "." or ".." parts, nothing hidden: our own random names under a few folders."""
    parts = key.split("/")
    return 1 <= len(parts) <= MAX_DEPTH and all(part and not part.startswith(".") and "\x00" not in part
                                                for part in parts)


def check_key(key: str) -> str:
    if not valid_key(key):
        raise ValueError(f"not a storage key: {key!r}")
    return key


class Storage(ABC):
    """Files by key. Every method raises StorageUnavailable when the storage cannot be reached."""

    kind: str  # "local" or "s3"

    @abstractmethod
    def describe(self) -> str:
        """Where the files are, for messages (a folder, or s3://bucket/prefix at an endpoint)."""

    @abstractmethod
    def put_stream(self, key: str, stream, size_hint: int | None = None) -> int:
        """Store what `stream` gives (read in chunks, never whole in memory) under key, whole or not
        at all; returns the size."""

    def put_bytes(self, key: str, data: bytes) -> int:
        return self.put_stream(key, io.BytesIO(data), len(data))

    def put_file(self, key: str, path: Path, move: bool = False) -> int:
        """Store a local file under key; with move the local file is gone afterwards."""
        path = Path(path)
        with open(path, "rb") as fh:
            size = self.put_stream(key, fh, path.stat().st_size)
        if move:
            path.unlink(missing_ok=True)
        return size

    @abstractmethod
    def open(self, key: str):
        """A binary file object to read key from; FileNotFoundError when there is no such file."""

    def get_to(self, key: str, destination: Path) -> str:
        """Copy key into a local file; returns its SHA-256."""
        digest = hashlib.sha256()
        with self.open(key) as source, open(destination, "wb") as out:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
        return digest.hexdigest()

    def read_bytes(self, key: str) -> bytes:
        with self.open(key) as fh:
            return fh.read()

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Remove key; whether it was there (a missing key is no error)."""

    @abstractmethod
    def stat(self, key: str) -> StoredObject | None:
        """Size and time of key, or None when there is none."""

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def size(self, key: str) -> int:
        found = self.stat(key)
        if found is None:
            raise FileNotFoundError(key)
        return found.size

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        """Every complete file whose key starts with prefix (no temp files, nothing hidden), sorted by key."""

    def local_path(self, key: str) -> Path | None:
        """The file's path when it is on this server's disk (local backend), else None."""
        return None

    @abstractmethod
    def workdir(self) -> AbstractContextManager[Path]:
        """A private temp folder for files on their way in or out (removed when the block ends). Local:
        inside the storage folder, so moving a finished file in is an atomic rename."""

    @abstractmethod
    def probe(self) -> None:
        """Write, read back and delete a small object; raises StorageUnavailable saying what failed."""


def copy_between(source: Storage, target: Storage, key: str) -> str:
    """Copy one file from one storage to another through a temp file; returns its SHA-256."""
    with target.workdir() as folder:
        temporary = folder / "copy"
        digest = source.get_to(key, temporary)
        target.put_file(key, temporary, move=True)
    return digest

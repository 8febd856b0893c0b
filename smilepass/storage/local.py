"""Files in a folder on this server (UPLOAD_DIR): written under a hidden temp name and renamed into
place, so a file appears whole or not at all."""
from __future__ import annotations

import errno
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .base import CHUNK, Storage, StorageUnavailable, StoredObject, check_key
from .workdirs import WORK, folder_prefix

TEMP_SUFFIXES = (".part", ".tmp")


class LocalStorage(Storage):
    kind = "local"

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def describe(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _reachable(self) -> None:
        if not self.root.is_dir():
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageUnavailable(f"the upload folder {self.root} cannot be created: {exc}") from exc

    def put_stream(self, key: str, stream, size_hint: int | None = None) -> int:
        self._reachable()
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = final.with_name(f".{final.name}.{secrets.token_hex(4)}.part")
        size = 0
        try:
            with open(temporary, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, final)
        except BaseException:
            temporary.unlink(missing_ok=True)  # a full disk must not leave half a file behind
            raise
        return size

    def put_file(self, key: str, path: Path, move: bool = False) -> int:
        path = Path(path)
        if move:
            final = self._path(key)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                size = path.stat().st_size
                os.replace(path, final)  # the work folder is inside the root: one file system
                return size
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
        return super().put_file(key, path, move)

    def open(self, key: str):
        return open(self._path(key), "rb")

    def delete(self, key: str) -> bool:
        try:
            self._path(key).unlink()
            return True
        except FileNotFoundError:
            return False

    def stat(self, key: str) -> StoredObject | None:
        try:
            found = self._path(key).stat()
        except FileNotFoundError:
            return None
        return StoredObject(key, found.st_size, found.st_mtime)

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        found = []
        for folder, dirs, names in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in names:
                if name.startswith(".") or name.endswith(TEMP_SUFFIXES):
                    continue
                path = Path(folder, name)
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    try:
                        info = path.stat()
                    except FileNotFoundError:
                        continue
                    found.append(StoredObject(key, info.st_size, info.st_mtime))
        return iter(sorted(found, key=lambda o: o.key))

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    @contextmanager
    def workdir(self) -> Iterator[Path]:
        self._reachable()
        parent = self.root / WORK
        parent.mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(dir=parent, prefix=folder_prefix()) as folder:
            yield Path(folder)

    def probe(self) -> None:
        key = f"probe-{secrets.token_hex(6)}"
        path = self.root / WORK / key
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"probe")
            if path.read_bytes() != b"probe":
                raise StorageUnavailable(f"{self.root}: a probe file read back differently")
            path.unlink()
        except OSError as exc:
            path.unlink(missing_ok=True) if path.parent.is_dir() else None
            raise StorageUnavailable(f"{self.root}: {exc.strerror or exc}") from exc

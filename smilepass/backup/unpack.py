"""Reading an archive for a restore: every member is unpacked into a staging folder while it is
hashed, then the whole is held against the manifest, the target's database kind and the migrations
this code knows. Any doubt ends the restore here, before the target changes."""
from __future__ import annotations

import gzip
import tarfile
import zlib
from pathlib import Path

from ..db import MIGRATIONS_DIR
from . import kinds
from .archive import FILES_PREFIX, MANIFEST, MAX_MANIFEST_BYTES, copy_hashing, parse_manifest, safe_relative
from .errors import BackupError, one_line
from .kind import DatabaseKind


def unpack_and_verify(archive_path: Path, staging: Path, kind: DatabaseKind) -> dict:
    """Read the archive once, front to back, into `staging`; returns its manifest once all is checked."""
    seen, manifest_data = _unpack(archive_path, staging)
    if manifest_data is None:
        raise BackupError("the archive is damaged or incomplete: it has no manifest")
    manifest = parse_manifest(manifest_data)
    theirs = kinds.named(manifest["database"]["kind"])
    if theirs.name != kind.name:
        raise BackupError(f"this is a backup of a {theirs.label} database and the target is {kind.label}; "
                          f"restoring across database kinds is not supported")
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
    kind.check_can_restore(manifest["database"])
    return manifest


def _unpack(archive_path: Path, staging: Path) -> tuple[dict[str, dict], bytes | None]:
    """Each member written to `staging` (its size and SHA-256 by name), and the manifest's bytes."""
    seen: dict[str, dict] = {}
    manifest_data = None
    try:
        with tarfile.open(archive_path, mode="r|*") as archive:
            for member in archive:
                name = member.name
                if not member.isfile() or name in seen or (name == MANIFEST and manifest_data is not None):
                    raise BackupError(f"unexpected entry {name!r} in the archive: not a SmilePass backup")
                source = archive.extractfile(member)
                if name == MANIFEST:
                    if member.size > MAX_MANIFEST_BYTES:
                        raise BackupError("the manifest is implausibly large: not a SmilePass backup")
                    manifest_data = source.read()
                    continue
                if name in kinds.DATABASE_MEMBERS.values():
                    destination = staging / name
                elif name.startswith(FILES_PREFIX) and safe_relative(name[len(FILES_PREFIX):]):
                    destination = staging / "files" / name[len(FILES_PREFIX):]
                    destination.parent.mkdir(parents=True, exist_ok=True)
                else:
                    raise BackupError(f"unexpected entry {name!r} in the archive: not a SmilePass backup")
                seen[name] = copy_hashing(source, destination)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        # Other OSErrors (a full disk on our side) are not the archive's fault and propagate.
        reason = one_line(str(exc)) or type(exc).__name__
        raise BackupError(f"the archive is damaged or incomplete ({reason})") from None
    return seen, manifest_data


def _check_migrations_known(applied: list[str]) -> None:
    known = {path.stem for path in MIGRATIONS_DIR.glob("[0-9]*.py")}
    unknown = sorted(set(applied) - known)
    if unknown:
        raise BackupError(f"the backup comes from a newer SmilePass (migrations {', '.join(unknown)} are unknown "
                          f"here): upgrade this installation first")

"""Backups kept in one directory (BACKUP_DIR): each archive named `smilepass-<UTC time>.tar.gz`, so that the
name says when it was taken and sorts by it; `--keep N` removes the oldest of those names, never another
file; `doctor` reads the newest one's age from its name."""
from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

STAMP = "%Y%m%dT%H%M%SZ"
# smilepass-20261205T013000Z.tar.gz; a second backup within the same second gets -2, -3 ...
ARCHIVE_NAME = re.compile(r"smilepass-(\d{8}T\d{6}Z)(?:-(\d+))?\.tar\.gz")


@dataclass(frozen=True, order=True)
class Archive:
    taken_at: dt.datetime
    sequence: int
    path: Path


def archive_of(path: Path) -> Archive | None:
    """The archive a file in the backup directory is, or None when its name is not one of ours."""
    match = ARCHIVE_NAME.fullmatch(path.name)
    if match is None:
        return None
    try:
        taken_at = dt.datetime.strptime(match.group(1), STAMP).replace(tzinfo=dt.UTC)
    except ValueError:  # digits in the right places that make no date (month 13)
        return None
    return Archive(taken_at, int(match.group(2) or 1), path)


def archives(backup_dir: str | Path) -> list[Archive]:
    """Our archives in the directory, oldest first (none when the directory does not exist yet)."""
    backup_dir = Path(backup_dir)
    if not backup_dir.is_dir():
        return []
    found = (archive_of(entry) for entry in backup_dir.iterdir() if entry.is_file() and not entry.is_symlink())
    return sorted(archive for archive in found if archive is not None)


def newest(backup_dir: str | Path) -> Archive | None:
    found = archives(backup_dir)
    return found[-1] if found else None


def new_archive_path(backup_dir: str | Path, now: dt.datetime) -> Path:
    """Where the backup taken at `now` goes; creates the directory (owner only: patient data)."""
    backup_dir = Path(backup_dir)
    backup_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = now.astimezone(dt.UTC).strftime(STAMP)
    path, sequence = backup_dir / f"smilepass-{stamp}.tar.gz", 1
    while path.exists():
        sequence += 1
        path = backup_dir / f"smilepass-{stamp}-{sequence}.tar.gz"
    return path


def prune(backup_dir: str | Path, keep: int) -> list[Path]:
    """Delete the oldest of our archives so that `keep` remain; returns the paths removed. Files with other
    names (someone's copy, a restore test, a partial file of a backup in progress) are never touched."""
    if keep < 1:
        raise ValueError("keep at least one backup")
    found = archives(backup_dir)
    removed = []
    for archive in found[:-keep]:
        os.unlink(archive.path)
        removed.append(archive.path)
    return removed

"""Housekeeping of stored files:

- orphans: files no row names (an upload whose row was never committed while the storage went away
  before the file could be removed again). Only files older than a grace period go: a younger one may
  belong to an upload whose transaction is still running.
- copy_all: every file of one storage into another, each read back and checked by SHA-256 (`flask storage
  migrate-to-s3` moves a single server's upload folder into a bucket)."""
from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..models import Attachment, Scan
from .base import CHUNK, Storage, copy_between

ORPHAN_GRACE = dt.timedelta(hours=1)
# Folders whose files no row names on purpose (the deletion journals of smilepass/stewardship/cleanup.py).
UNREFERENCED_FOLDERS = ("pending-deletes/",)
SCAN_COLUMNS = (Scan.stored_name, Scan.repaired_name, Scan.repaired_stl_name, Scan.preview_before_name,
                Scan.preview_after_name, Scan.web_before_name, Scan.web_after_name)


def referenced_keys() -> set[str]:
    keys = set()
    for stored, thumb in Attachment.select(Attachment.stored_name, Attachment.thumb_name).tuples():
        keys.update(name for name in (stored, thumb) if name)
    for names in Scan.select(*SCAN_COLUMNS).tuples():
        keys.update(f"scans/{name}" for name in names if name)
    return keys


def remove_orphans(storage: Storage, now: float | None = None, dry_run: bool = False) -> list[str]:
    """Remove (or with dry_run only list) files older than ORPHAN_GRACE that no row names."""
    cutoff = (now if now is not None else time.time()) - ORPHAN_GRACE.total_seconds()
    candidates = [found.key for found in storage.list()
                  if found.modified < cutoff and not found.key.startswith(UNREFERENCED_FOLDERS)]
    if not candidates:
        return []
    referenced = referenced_keys()
    orphans = [key for key in candidates if key not in referenced]
    if not dry_run:
        for key in orphans:
            storage.delete(key)
    return orphans


@dataclass
class CopyReport:
    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already there with the same content
    failed: list[str] = field(default_factory=list)


def copy_all(source: Storage, target: Storage, progress: Callable[[str], None] | None = None) -> CopyReport:
    """Copy every file of source into target and check each by SHA-256 read back from the target. A file
    the target already holds with the same content is skipped, so an interrupted copy can simply run
    again. Nothing is deleted from the source."""
    report = CopyReport()
    for found in source.list():
        there = target.stat(found.key)
        if there is not None and there.size == found.size and _digest(target, found.key) == _digest(source, found.key):
            report.skipped.append(found.key)
            continue
        written = copy_between(source, target, found.key)
        if _digest(target, found.key) != written:
            report.failed.append(found.key)
        else:
            report.copied.append(found.key)
        if progress is not None:
            progress(found.key)
    return report


def _digest(storage: Storage, key: str) -> str:
    digest = hashlib.sha256()
    with storage.open(key) as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()

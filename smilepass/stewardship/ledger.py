"""The erasure ledger: erasures survive a restore.

A backup taken before an erasure still holds the erased patient, and the audit tombstone of the
erasure is not in it. So each erasure also appends one line to a file in the instance folder,
outside the database and the upload folder, which a restore replaces: `erasure-ledger.jsonl`
(config ERASURE_LEDGER, so it follows SMILEPASS_INSTANCE). After a restore has migrated the
database, every entry whose cases are back is erased again by the same code as the first time.

A line holds no patient identifier: when, the case ids, each case's creation time, and the ids of
the tombstone audit rows. The creation time is there because SQLite may give a deleted case's id to
the next case created: a case counts as "back" only when its id and its creation time both match.

Flask-free: the erasure passes the path, the restore command passes the app's config."""
import datetime as dt
import fcntl
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..models import Case

log = logging.getLogger(__name__)

LEDGER_NAME = "erasure-ledger.jsonl"
FORMAT = 1


def case_stamp(case: Case) -> str:
    """What tells this case apart from a later case that got the same id."""
    return case.created_at.isoformat()


@dataclass
class Entry:
    erased_at: str
    case_created_at: dict[int, str]  # case id -> case_stamp
    tombstone_ids: list[int]

    @property
    def case_ids(self) -> list[int]:
        return sorted(self.case_created_at)

    def line(self) -> str:
        return json.dumps({"format": FORMAT, "erased_at": self.erased_at, "case_ids": self.case_ids,
                           "case_created_at": {str(k): v for k, v in sorted(self.case_created_at.items())},
                           "tombstone_ids": self.tombstone_ids}, separators=(",", ":"))

    @classmethod
    def parse(cls, line: str) -> "Entry":
        data = json.loads(line)
        stamps = {int(k): str(v) for k, v in data["case_created_at"].items()}
        if sorted(stamps) != sorted(int(i) for i in data["case_ids"]):
            raise ValueError("case ids and creation times disagree")
        return cls(str(data["erased_at"]), stamps, [int(i) for i in data["tombstone_ids"]])


def entry_for(cases: list[Case], tombstone_ids: list[int], now: dt.datetime | None = None) -> Entry:
    now = now or dt.datetime.now(dt.UTC)
    return Entry(now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), {case.id: case_stamp(case) for case in cases},
                 list(tombstone_ids))


def append(path: str | Path, entry: Entry) -> None:
    """Add one line and make it durable (file and, when new, its folder) before returning.
    Web workers may erase at the same moment: the lock keeps their lines whole and apart."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        data = (entry.line() + "\n").encode()
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # a line torn by a crash stays on its own (and is skipped when read)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def read(path: str | Path) -> tuple[list[Entry], int]:
    """The entries, oldest first, and how many lines could not be read (torn or edited by hand)."""
    path = Path(path)
    if not path.is_file():
        return [], 0
    entries, unreadable = [], 0
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append(Entry.parse(line))
        except (ValueError, KeyError, TypeError, AttributeError):
            unreadable += 1
            log.warning("erasure ledger %s: line %d is not an entry, skipped", path, number)
    return entries, unreadable


@dataclass
class Reapplied:
    ledger: Path
    found: bool
    entries: int = 0
    unreadable: int = 0
    erasures: int = 0
    case_ids: list[int] = field(default_factory=list)

    def lines(self) -> list[str]:
        if not self.found:
            return [f"erasure ledger: none at {self.ledger}; no erasure was re-applied"]
        lines = [f"erasure ledger: {self.erasures} of {self.entries} erasures re-applied "
                 f"({len(self.case_ids)} cases were back in the restored database)"]
        if self.unreadable:
            lines.append(f"erasure ledger: {self.unreadable} unreadable lines skipped (see the log)")
        return lines


def cases_back(entry: Entry) -> list[Case]:
    """The entry's cases that exist in this database as the very cases that were erased."""
    candidates = Case.select().where(Case.id.in_(entry.case_ids)).order_by(Case.id)
    return [case for case in candidates if case_stamp(case) == entry.case_created_at[case.id]]

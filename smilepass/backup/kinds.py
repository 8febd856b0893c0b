"""The database kinds a backup knows, and the one place that picks one: from a DATABASE_URL, or from
the name a manifest records. Everything else asks the kind object and never looks at the name."""
from __future__ import annotations

from urllib.parse import urlparse

from .errors import BackupError
from .kind import DatabaseKind
from .postgres import PostgresKind
from .sqlite import SQLiteKind

KINDS: tuple[DatabaseKind, ...] = (SQLiteKind(), PostgresKind())
BY_NAME = {kind.name: kind for kind in KINDS}
# The archive member that holds each kind's snapshot.
DATABASE_MEMBERS = {kind.name: kind.member for kind in KINDS}


def for_url(url: str) -> DatabaseKind:
    scheme = urlparse(url).scheme
    for kind in KINDS:
        if kind.handles(scheme):
            return kind
    raise BackupError(f"DATABASE_URL scheme {scheme!r} is not supported (use sqlite:/// or postgresql://)")


def named(name: str) -> DatabaseKind:
    """The kind a manifest names (parse_manifest has made sure it is one of KINDS)."""
    return BY_NAME[name]


# For callers (tests, tools) that hold a cursor and the kind's name, as the manifest spells it.

def database_kind(url: str) -> str:
    return for_url(url).name


def row_counts(cursor, kind: str) -> dict[str, int]:
    return named(kind).row_counts(cursor)


def applied_migrations(cursor, kind: str) -> list[str]:
    return named(kind).applied_migrations(cursor)


def referenced_files(cursor, kind: str) -> dict[str, str | None]:
    return named(kind).referenced_files(cursor)

"""One peewee database for the app: SQLite (WAL) by default, PostgreSQL when DATABASE_URL says so.

The schema changes only through the numbered scripts in migrations/, applied with peewee's own
migration runner (the same one `pwmigrate` drives)."""
import sqlite3
from pathlib import Path
from urllib.parse import urlparse

import peewee
from playhouse.db_url import connect
from playhouse.migrations import Runner

database = peewee.DatabaseProxy()

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "normal",
    "cache_size": -16000,
}
# How long a statement waits for SQLite's write lock before it gives up (SMILEPASS_SQLITE_BUSY_TIMEOUT_MS).
DEFAULT_BUSY_TIMEOUT_MS = 5000
# SQLite's primary result code for "another connection holds the lock" (extended codes share the low byte).
SQLITE_BUSY = 5


class DatabaseBusy(peewee.OperationalError):
    """SQLite's "database is locked": another connection held the write lock past the busy timeout.
    Nothing of the transaction was written, and the same request a moment later can succeed (the web
    side answers 503 with Retry-After and keeps what the user typed)."""


def _is_busy(exc: peewee.OperationalError) -> bool:
    original = getattr(exc, "orig", None)  # the driver's exception, which peewee wraps
    return isinstance(original, sqlite3.OperationalError) and (original.sqlite_errorcode & 0xFF) == SQLITE_BUSY


class SqliteDatabase(peewee.SqliteDatabase):
    """peewee's SqliteDatabase, raising DatabaseBusy (an OperationalError) for "database is locked"."""

    def execute_sql(self, sql, params=None):
        try:
            return super().execute_sql(sql, params)
        except peewee.OperationalError as exc:
            if _is_busy(exc):
                raise DatabaseBusy(exc.orig, *exc.args) from exc
            raise

    def begin(self, lock_type=None):
        try:
            super().begin(lock_type)
        except peewee.OperationalError as exc:
            if _is_busy(exc):
                raise DatabaseBusy(exc.orig, *exc.args) from exc
            raise


# PostgreSQL connections per process (SMILEPASS_DB_POOL_SIZE) and how long a request waits for a free one
# (SMILEPASS_DB_POOL_WAIT_SECONDS). Size the server's max_connections for processes × pool size.
POOL_SIZE = 16
POOL_WAIT_SECONDS = 10.0


def open_database(url: str, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, pool_size: int = POOL_SIZE,
                  pool_wait_s: float = POOL_WAIT_SECONDS) -> peewee.Database:
    scheme = urlparse(url).scheme
    if scheme.startswith("sqlite"):
        path = url.split("sqlite:///", 1)[1]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Every transaction begins IMMEDIATE, i.e. takes the write lock first (and waits up to the busy
        # timeout for it). A deferred one that reads and then writes cannot wait: when another writer got
        # there first SQLite answers BUSY at once rather than risk a deadlock, and the request is lost.
        # Reads outside atomic() stay lock-free (WAL readers never wait for writers).
        return SqliteDatabase(path, pragmas={**SQLITE_PRAGMAS, "busy_timeout": busy_timeout_ms},
                              timeout=busy_timeout_ms / 1000, lock_type="IMMEDIATE")
    if scheme in ("postgres", "postgresql"):
        # A small pool per process: gunicorn's gthread workers run requests in threads, each holding a
        # connection only while it runs (an open ticket page's stream gives it back, docs/live.md). When all
        # are taken, a request waits for one up to the pool's wait and then gets the busy answer (busy.py,
        # a 503 that keeps the form) rather than a 500: without a wait peewee refuses it at once.
        pooled = "postgresql+pool://" + url.split("://", 1)[1]
        return connect(pooled, max_connections=pool_size, timeout=pool_wait_s, stale_timeout=300)
    raise ValueError(f"DATABASE_URL scheme {scheme!r} is not supported (use sqlite:/// or postgresql://)")


def bind(url: str, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, pool_size: int = POOL_SIZE,
         pool_wait_s: float = POOL_WAIT_SECONDS) -> peewee.Database:
    db = open_database(url, busy_timeout_ms, pool_size, pool_wait_s)
    database.initialize(db)
    return db


def is_postgres() -> bool:
    return isinstance(database.obj, peewee.PostgresqlDatabase)


def migrate() -> list[str]:
    """Apply pending migrations; returns the names applied."""
    with database.connection_context():
        applied = Runner(database.obj, str(MIGRATIONS_DIR)).up()
    refresh_statistics()
    return applied


# Rows SQLite's ANALYZE samples per index (see refresh_statistics; a restore uses it too).
SQLITE_ANALYSIS_LIMIT = 10_000


def refresh_statistics() -> None:
    """Let the query planner see the tables' current shape. Without statistics SQLite picks an
    equality index and sorts thousands of rows where walking the sort index would stop after one page
    (e.g. the case list filtered by state). SQLite samples up to 10,000 rows per index (0.15 s at 200,000
    tickets and 1,000,000 replies): with 1,000 its estimates at that size were so far off (one index saying
    109,052 tickets, another 1,116,696) that staff's ticket table walked every clinician's tickets and
    sorted them, 500 ms a page instead of 1 ms. PostgreSQL samples anyway. Runs after migrations, after
    bulk loads and hourly from `rq cron`."""
    with database.connection_context():
        if is_postgres():
            database.execute_sql("ANALYZE")
        else:
            database.execute_sql(f"PRAGMA analysis_limit = {SQLITE_ANALYSIS_LIMIT}")
            database.execute_sql("ANALYZE")


def migration_status():
    with database.connection_context():
        return Runner(database.obj, str(MIGRATIONS_DIR)).status()


class Param:
    """A named slot in a prepared query (see `prepared`)."""

    def __init__(self, name: str):
        self.name = name
        self.marker = f"\x00{name}\x00"


_prepared: dict = {}


def _prepared_statement(key, build, values):
    """The query's model, its SQL text (built once per dialect and key) and the parameters for these values."""
    # The text depends only on the dialect (quoting, placeholders), not on which database object.
    cache_key = (type(database.obj), key)
    entry = _prepared.get(cache_key)
    if entry is None:
        markers = type("Params", (), {name: Param(name).marker for name in values})
        query = build(markers)
        sql, template = query.sql()
        slots = [next((name for name in values if p == getattr(markers, name)), None) for p in template]
        entry = _prepared[cache_key] = (query.model, sql, template, slots)
    model, sql, template, slots = entry
    return model, sql, [values[slot] if slot else fixed for slot, fixed in zip(slots, template, strict=True)]


def prepared(key, build, raw_rows=False, **values):
    """peewee turns its expression tree into SQL text on every call; for the few queries every page
    view runs, build the text once per SQL dialect and reuse it with fresh values.

    `build(params)` returns the query, using `params.NAME` (a marker value) where a value goes; the
    result is run as a raw query of the same model, so fields convert as usual; with raw_rows the
    driver's rows come back untouched (the caller converts, e.g. SQLite's text timestamps)."""
    model, sql, params = _prepared_statement(key, build, values)
    if raw_rows:
        return database.execute_sql(sql, params).fetchall()
    return model.raw(sql, *params)


def prepared_write(key, build, **values) -> int:
    """An UPDATE or DELETE built once per dialect like `prepared`'s queries (for a write a page view may
    make each time, e.g. the remembered sort); returns how many rows it changed."""
    _, sql, params = _prepared_statement(key, build, values)
    return database.execute_sql(sql, params).rowcount

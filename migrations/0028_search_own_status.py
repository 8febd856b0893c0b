"""Search, SQLite: a ticket's own terms (the column `mine`, migration 0026) carry its status: "7o1tray"
instead of "7otray" (smilepass/search/index.py: own_terms). A clinician's table then counts each status's
matches from the index alone, one list per status, instead of looking up the status of every ticket found
(577 "scan*" tickets of a clinician at 100,000: 0.34 -> 0.08 ms). A trigger writes the terms again on every
status change, in the same transaction.

Every existing entry is rewritten in one statement (9.8 s at 100,000 demo tickets, the index's merge
included). PostgreSQL: nothing to do (no column `mine`). On a database that 0016 built with today's code,
the terms already carry the status and the trigger is there."""
from peewee import PostgresqlDatabase

TRIGGER = "search_ticket_status"
# The trigger as index.STATUS_TRIGGER wrote it on this day (a migration keeps its own copy).
CREATE_TRIGGER = (
    f"CREATE TRIGGER {TRIGGER} AFTER UPDATE OF status ON ticket WHEN old.status IS NOT new.status "
    "BEGIN UPDATE search_ticket SET mine = substr(replace(' ' || mine, "
    "' ' || old.requester_id || 'o' || old.status, ' ' || new.requester_id || 'o' || new.status), 2) "
    "WHERE rowid = new.id; END")


def _rewrite(db, old: str, new: str) -> None:
    """Every entry's own terms with the prefix `old` (SQL over t, the ticket) replaced by `new`: each term
    begins with it, and only there does one follow a space."""
    db.execute_sql(f"UPDATE search_ticket SET mine = substr(replace(' ' || mine, ' ' || {old}, ' ' || {new}), 2) "
                   "FROM ticket t WHERE t.id = search_ticket.rowid")
    db.execute_sql("INSERT INTO search_ticket (search_ticket) VALUES ('optimize')")


def _has_trigger(db) -> bool:
    return db.execute_sql("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?", [TRIGGER]).fetchone()


def up(migrator, db):
    if isinstance(db, PostgresqlDatabase) or _has_trigger(db):
        return
    _rewrite(db, "t.requester_id || 'o'", "t.requester_id || 'o' || t.status")
    db.execute_sql(CREATE_TRIGGER)


def down(migrator, db):
    if isinstance(db, PostgresqlDatabase) or not _has_trigger(db):
        return
    db.execute_sql(f"DROP TRIGGER {TRIGGER}")
    _rewrite(db, "t.requester_id || 'o' || t.status", "t.requester_id || 'o'")

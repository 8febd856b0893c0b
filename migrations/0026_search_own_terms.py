"""Search, SQLite: the ticket index gets the column `mine`, the title's and public text's terms once more,
each as the requester's own (smilepass/search/index.py: own_terms), so that a clinician's table search
reads the lists of their own terms instead of a word's list across the portal ANDed with their requester
term ("scan" at 100,000 tickets: 0.36 -> 0.11 ms for a clinician's 577 matches).

FTS5 cannot add a column: the table is made again and filled from the old one's stored terms (nothing is
stemmed again), a batch of entries at a time (5.7 s at 100,000 demo tickets; the search table 76 -> 149 MB).
PostgreSQL: nothing to do there (GIN intersects the requester lexeme with the word's). On a database that
0016 built with today's code the column is already there.

Both: an index of each requester's tickets by id with their status, from which the clinician's table reads
the status of the tickets found (for the filter counts) instead of each ticket's row (SQLite, 577 of them:
0.74 -> 0.28 ms)."""
from peewee import PostgresqlDatabase

from smilepass.search import index

BATCH = 2000
COLUMNS = ["title", "body", "internal", "owner"]


def _own_terms(requester: int, title_terms: str, body_terms: str) -> str:
    """The title's and public text's terms as the requester's own ("7otray"), a lone "7o" between them: the
    form of this day (0028 adds the ticket's status)."""
    prefix = f"{int(requester)}o"
    return " ".join([*(prefix + term for term in title_terms.split()), prefix,
                     *(prefix + term for term in body_terms.split())])


def _columns(db) -> list[str]:
    return [row[1] for row in db.execute_sql("PRAGMA table_info(search_ticket)").fetchall()]


def _remake(db, columns: list[str], entry) -> None:
    """search_ticket again with these columns, each old entry (rowid, title, body, internal, owner, requester)
    written as entry(row) gives it."""
    db.execute_sql("DROP TRIGGER IF EXISTS search_ticket_gone")
    db.execute_sql(f"CREATE VIRTUAL TABLE search_ticket_next USING fts5({', '.join(columns)}, {index.TICKET_OPTIONS})")
    insert = (f"INSERT INTO search_ticket_next (rowid, {', '.join(columns)}) "
              f"VALUES ({', '.join(['?'] * (len(columns) + 1))})")
    last = 0
    while True:
        rows = db.execute_sql(
            "SELECT s.rowid, s.title, s.body, s.internal, s.owner, t.requester_id FROM search_ticket s "
            "JOIN ticket t ON t.id = s.rowid WHERE s.rowid > ? ORDER BY s.rowid LIMIT ?", [last, BATCH]).fetchall()
        if not rows:
            break
        db.cursor().executemany(insert, [entry(row) for row in rows])
        last = rows[-1][0]
    db.execute_sql("DROP TABLE search_ticket")
    db.execute_sql("ALTER TABLE search_ticket_next RENAME TO search_ticket")
    db.execute_sql(index.TICKET_TRIGGER)
    db.execute_sql("INSERT INTO search_ticket (search_ticket) VALUES ('optimize')")


STATUS_INDEX = "CREATE INDEX ticket_requester_id_id_status ON ticket (requester_id, id, status)"


def up(migrator, db):
    db.execute_sql(STATUS_INDEX)
    if isinstance(db, PostgresqlDatabase) or "mine" in _columns(db):
        return
    _remake(db, [*COLUMNS, "mine"],
            lambda row: [*row[:5], _own_terms(row[5], row[1] or "", row[2] or "")])


def down(migrator, db):
    db.execute_sql("DROP INDEX IF EXISTS ticket_requester_id_id_status")
    if not isinstance(db, PostgresqlDatabase) and "mine" in _columns(db):
        _remake(db, COLUMNS, lambda row: list(row[:5]))

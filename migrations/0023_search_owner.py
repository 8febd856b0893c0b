"""Search: the ticket's requester becomes a term of its index entry (smilepass/search/index.py:
owner_term), so a clinician's search is answered by the index alone instead of reading every match in
the portal and joining it back to their tickets. SQLite's table also gets a prefix index (a word being
typed: one doclist instead of a merge of every term it begins; 0.65 -> 0.12 ms for staff's "tray" at
200,000 tickets).

SQLite: FTS5 cannot add a column; the table is made again with `owner` and filled from the old one's
stored terms (nothing is stemmed again). PostgreSQL: the lexeme is added to both documents (adding a
lexeme a document already has changes nothing). Migration 0016 builds the index with today's code, so
on a new database the column is already there and this has nothing to do."""
from peewee import PostgresqlDatabase

# The terms are index.owner_term's ("owner7" / "=7"), written in SQL here to fill the index in one statement.
TRIGGER = ("CREATE TRIGGER search_ticket_gone AFTER DELETE ON ticket BEGIN "
           "DELETE FROM search_ticket WHERE rowid = old.id; END")
TOKENIZE = "tokenize = 'unicode61 remove_diacritics 2'"
# With the owner column comes a prefix index (terms' first 2, 3 and 4 characters: a word being typed).
TICKET_OPTIONS = "prefix = '2 3 4', " + TOKENIZE


def _sqlite_columns(db) -> list[str]:
    return [row[1] for row in db.execute_sql("PRAGMA table_info(search_ticket)").fetchall()]


def _sqlite_remake(db, columns: list[str], select: str, options: str = TOKENIZE) -> None:
    """search_ticket again with these columns and options, filled by select (from the old table, aliased s)."""
    db.execute_sql("DROP TRIGGER IF EXISTS search_ticket_gone")
    db.execute_sql(f"CREATE VIRTUAL TABLE search_ticket_next USING fts5({', '.join(columns)}, {options})")
    db.execute_sql(f"INSERT INTO search_ticket_next (rowid, {', '.join(columns)}) {select}")
    db.execute_sql("DROP TABLE search_ticket")
    db.execute_sql("ALTER TABLE search_ticket_next RENAME TO search_ticket")
    db.execute_sql(TRIGGER)
    db.execute_sql("INSERT INTO search_ticket (search_ticket) VALUES ('optimize')")


def up(migrator, db):
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql(
            "UPDATE search_ticket s SET public_doc = s.public_doc || array_to_tsvector(ARRAY['=' || t.requester_id]), "
            "staff_doc = s.staff_doc || array_to_tsvector(ARRAY['=' || t.requester_id]) "
            "FROM ticket t WHERE t.id = s.ticket_id")
        return
    if "owner" in _sqlite_columns(db):
        return
    _sqlite_remake(db, ["title", "body", "internal", "owner"],
                   "SELECT s.rowid, s.title, s.body, s.internal, 'owner' || t.requester_id "
                   "FROM search_ticket s JOIN ticket t ON t.id = s.rowid", TICKET_OPTIONS)


def down(migrator, db):
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql(
            "UPDATE search_ticket s SET public_doc = ts_delete(s.public_doc, '=' || t.requester_id), "
            "staff_doc = ts_delete(s.staff_doc, '=' || t.requester_id) FROM ticket t WHERE t.id = s.ticket_id")
        return
    if "owner" in _sqlite_columns(db):
        _sqlite_remake(db, ["title", "body", "internal"], "SELECT s.rowid, s.title, s.body, s.internal FROM search_ticket s")

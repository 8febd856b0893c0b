"""Search, PostgreSQL: every two adjacent terms of a ticket's documents become one more lexeme
(smilepass/search/index.py: pair_term), so a phrase is found through the GIN index instead of checking
the positions of every ticket that holds its words ("upper arch": 48,992 of 200,000 demo tickets with a
million replies). Every ticket's entry is written again with today's code (as migration 0016 built it),
the GIN indexes dropped first and built once afterwards (as `flask demo` does). SQLite: nothing to do,
FTS5 checks a phrase's positions in its own index."""
from peewee import PostgresqlDatabase

from smilepass.search import index

INDEXES = {name: statement for statement in index.POSTGRES_DDL
           for name in ("search_ticket_public", "search_ticket_staff") if f"INDEX {name} " in statement}


def up(migrator, db):
    if not isinstance(db, PostgresqlDatabase):
        return
    for name in INDEXES:
        db.execute_sql(f"DROP INDEX {name}")
    index.reindex_every_ticket(db)
    db.execute_sql("SET LOCAL maintenance_work_mem = '256MB'")  # for the index builds
    for statement in INDEXES.values():
        db.execute_sql(statement)


def down(migrator, db):
    if isinstance(db, PostgresqlDatabase):
        pairs = "ARRAY(SELECT lexeme FROM unnest({0}) WHERE left(lexeme, 1) = '" + index.PAIR_MARK + "')"
        db.execute_sql(f"UPDATE search_ticket SET public_doc = ts_delete(public_doc, {pairs.format('public_doc')}), "
                       f"staff_doc = ts_delete(staff_doc, {pairs.format('staff_doc')})")

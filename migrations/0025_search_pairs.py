"""Search, PostgreSQL: every two adjacent terms of a ticket's texts become a lexeme of two new columns with
GIN indexes, public_pairs and staff_pairs (smilepass/search/index.py: pair_term), so a phrase is found
through the index instead of checking the positions of every ticket that holds its words ("upper arch":
48,992 of 200,000 demo tickets with a million replies). Every ticket's entry is written again with
today's code (as migration 0016 built it), the GIN indexes dropped first and built once afterwards (as
`flask demo` does). On a database that 0016 built with today's code the columns are already there.
SQLite: nothing to do, FTS5 checks a phrase's positions in its own index."""
from peewee import PostgresqlDatabase

from smilepass.search import index


def up(migrator, db):
    if not isinstance(db, PostgresqlDatabase):
        return
    for column in index.PAIR_COLUMNS.values():
        db.execute_sql(f"ALTER TABLE search_ticket ADD COLUMN IF NOT EXISTS {column}")
    db.execute_sql(index.TICKET_STORAGE)  # before the rows are written again: it applies to new rows
    for name in index.TICKET_INDEXES:
        db.execute_sql(f"DROP INDEX IF EXISTS {name}")
    index.reindex_every_ticket(db)
    db.execute_sql("SET LOCAL maintenance_work_mem = '256MB'")  # for the index builds
    for statement in index.TICKET_INDEXES.values():
        db.execute_sql(statement)


def down(migrator, db):
    if isinstance(db, PostgresqlDatabase):
        for column in index.PAIR_COLUMNS:  # their indexes go with them
            db.execute_sql(f"ALTER TABLE search_ticket DROP COLUMN IF EXISTS {column}")
        db.execute_sql("ALTER TABLE search_ticket ALTER COLUMN public_doc SET STORAGE EXTENDED, "
                       "ALTER COLUMN staff_doc SET STORAGE EXTENDED")

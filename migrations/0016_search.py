"""Full-text search (smilepass/search): the index tables (SQLite FTS5, PostgreSQL tsvector + GIN), filled
with every existing ticket and case."""
from smilepass.search import index


def up(migrator, db):
    index.create(db)
    index.rebuild(db)


def down(migrator, db):
    index.drop(db)

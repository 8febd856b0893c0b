"""The staff queue's Unassigned tab (its default) reads its page through an index of its own.

ticket_queue_assignee (migration 0022) starts with assignee_id, and the Unassigned tab asks for
`assignee_id IS NULL`. SQLite walks that index in queue order; PostgreSQL does not treat IS NULL as
fixing the first column, so it cannot take the order from the index: it read every open ticket and
sorted them (52 ms a page at 100,000 demo tickets, 60,000 of them open and unassigned). A partial
index of the unassigned tickets in queue order gives both databases the page in index order (0.24 ms)."""

INDEX = ("CREATE INDEX ticket_queue_unassigned ON ticket (queue_rank, next_due_at, id) "
         "WHERE assignee_id IS NULL")


def up(migrator, db):
    db.execute_sql(INDEX)


def down(migrator, db):
    db.execute_sql("DROP INDEX IF EXISTS ticket_queue_unassigned")

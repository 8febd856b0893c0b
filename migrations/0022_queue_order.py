"""The staff queue reads one page through an index (issue 15 §3): its order, except for the part that
depends on the current time, is a generated column (ticket.queue_rank) indexed after each tab's
filter; its tab counts are kept by triggers (queue_count). See smilepass/staff/listing.py.

queue_rank is NULL for tickets not open (Resolved, Closed) and otherwise, ascending in queue order:
the tier (Enterprise first), then breached (a breach flag set) before not, then the priority (Urgent
first), then dated before undated (no running deadline: paused). Within one rank the index orders by
next_due_at and id. A running deadline already past without a flag yet (the SLA job marks it within
a minute) moves a ticket up into the breached rank; listing.py merges those in on each view.

Written by hand, once per dialect (SQLite: a virtual generated column, indexed; PostgreSQL: a stored one)."""
from peewee import *

RANK = """CASE WHEN status IN (0, 1, 2) THEN
            ((2 - tier) * 8 + CASE WHEN response_breached OR resolution_breached THEN 0 ELSE 4 END + (3 - priority)) * 2
            + CASE WHEN next_due_at IS NULL THEN 1 ELSE 0 END
          END"""

INDEXES = [
    'CREATE INDEX ticket_queue_assignee ON ticket (assignee_id, queue_rank, next_due_at, id)',
    'CREATE INDEX ticket_queue_escalation ON ticket (escalation_owner_id, queue_rank, next_due_at, id)',
]

# Open tickets per tab owner: kind 0 counts by assignee (owner 0: unassigned), kind 1 by escalation owner.
OPEN = "IN (0, 1, 2)"
SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER queue_count_insert AFTER INSERT ON ticket WHEN NEW.status {OPEN} BEGIN
         INSERT INTO queue_count (kind, owner_id, n) VALUES (0, COALESCE(NEW.assignee_id, 0), 1)
           ON CONFLICT (kind, owner_id) DO UPDATE SET n = n + 1;
         INSERT INTO queue_count (kind, owner_id, n) VALUES (1, COALESCE(NEW.escalation_owner_id, 0), 1)
           ON CONFLICT (kind, owner_id) DO UPDATE SET n = n + 1;
       END""",
    f"""CREATE TRIGGER queue_count_delete AFTER DELETE ON ticket WHEN OLD.status {OPEN} BEGIN
         UPDATE queue_count SET n = n - 1 WHERE kind = 0 AND owner_id = COALESCE(OLD.assignee_id, 0);
         UPDATE queue_count SET n = n - 1 WHERE kind = 1 AND owner_id = COALESCE(OLD.escalation_owner_id, 0);
       END""",
    f"""CREATE TRIGGER queue_count_update AFTER UPDATE OF status, assignee_id, escalation_owner_id ON ticket
       WHEN (OLD.status {OPEN}) IS NOT (NEW.status {OPEN}) OR OLD.assignee_id IS NOT NEW.assignee_id
            OR OLD.escalation_owner_id IS NOT NEW.escalation_owner_id BEGIN
         UPDATE queue_count SET n = n - 1
           WHERE OLD.status {OPEN} AND kind = 0 AND owner_id = COALESCE(OLD.assignee_id, 0);
         UPDATE queue_count SET n = n - 1
           WHERE OLD.status {OPEN} AND kind = 1 AND owner_id = COALESCE(OLD.escalation_owner_id, 0);
         INSERT INTO queue_count (kind, owner_id, n) SELECT 0, COALESCE(NEW.assignee_id, 0), 1
           WHERE NEW.status {OPEN} ON CONFLICT (kind, owner_id) DO UPDATE SET n = n + 1;
         INSERT INTO queue_count (kind, owner_id, n) SELECT 1, COALESCE(NEW.escalation_owner_id, 0), 1
           WHERE NEW.status {OPEN} ON CONFLICT (kind, owner_id) DO UPDATE SET n = n + 1;
       END""",
]

POSTGRES_TRIGGERS = [
    f"""CREATE FUNCTION queue_count_keep() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status {OPEN} THEN
           UPDATE queue_count SET n = n - 1 WHERE kind = 0 AND owner_id = COALESCE(OLD.assignee_id, 0);
           UPDATE queue_count SET n = n - 1 WHERE kind = 1 AND owner_id = COALESCE(OLD.escalation_owner_id, 0);
         END IF;
         IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.status {OPEN} THEN
           INSERT INTO queue_count (kind, owner_id, n) VALUES (0, COALESCE(NEW.assignee_id, 0), 1)
             ON CONFLICT (kind, owner_id) DO UPDATE SET n = queue_count.n + 1;
           INSERT INTO queue_count (kind, owner_id, n) VALUES (1, COALESCE(NEW.escalation_owner_id, 0), 1)
             ON CONFLICT (kind, owner_id) DO UPDATE SET n = queue_count.n + 1;
         END IF;
         RETURN NULL;
       END $$""",
    """CREATE TRIGGER queue_count_insert_delete AFTER INSERT OR DELETE ON ticket
       FOR EACH ROW EXECUTE FUNCTION queue_count_keep()""",
    f"""CREATE TRIGGER queue_count_update AFTER UPDATE OF status, assignee_id, escalation_owner_id ON ticket
       FOR EACH ROW WHEN ((OLD.status {OPEN}) IS DISTINCT FROM (NEW.status {OPEN})
                          OR OLD.assignee_id IS DISTINCT FROM NEW.assignee_id
                          OR OLD.escalation_owner_id IS DISTINCT FROM NEW.escalation_owner_id)
       EXECUTE FUNCTION queue_count_keep()""",
]

FILL = [
    f"INSERT INTO queue_count (kind, owner_id, n) SELECT 0, COALESCE(assignee_id, 0), COUNT(*) FROM ticket "
    f"WHERE status {OPEN} GROUP BY COALESCE(assignee_id, 0)",
    f"INSERT INTO queue_count (kind, owner_id, n) SELECT 1, COALESCE(escalation_owner_id, 0), COUNT(*) FROM ticket "
    f"WHERE status {OPEN} GROUP BY COALESCE(escalation_owner_id, 0)",
]


def up(migrator, db):
    postgres = isinstance(db, PostgresqlDatabase)
    if postgres:
        db.execute_sql(f"ALTER TABLE ticket ADD COLUMN queue_rank integer GENERATED ALWAYS AS ({RANK}) STORED")
    else:
        db.execute_sql(f"ALTER TABLE ticket ADD COLUMN queue_rank INTEGER GENERATED ALWAYS AS ({RANK}) VIRTUAL")
    for statement in INDEXES:
        db.execute_sql(statement)

    class QueueCount(Model):
        kind = SmallIntegerField()
        owner_id = IntegerField()
        n = IntegerField(default=0)

        class Meta:
            database = db
            table_name = 'queue_count'
            primary_key = CompositeKey('kind', 'owner_id')
    db.create_tables([QueueCount])
    for statement in (POSTGRES_TRIGGERS if postgres else SQLITE_TRIGGERS) + FILL:
        db.execute_sql(statement)


def down(migrator, db):
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql("DROP TRIGGER IF EXISTS queue_count_insert_delete ON ticket")
        db.execute_sql("DROP TRIGGER IF EXISTS queue_count_update ON ticket")
        db.execute_sql("DROP FUNCTION IF EXISTS queue_count_keep()")
    else:
        for name in ["queue_count_insert", "queue_count_delete", "queue_count_update"]:
            db.execute_sql(f"DROP TRIGGER IF EXISTS {name}")
    db.execute_sql("DROP TABLE IF EXISTS queue_count")
    db.execute_sql("DROP INDEX IF EXISTS ticket_queue_escalation")
    db.execute_sql("DROP INDEX IF EXISTS ticket_queue_assignee")
    db.execute_sql("ALTER TABLE ticket DROP COLUMN queue_rank")

"""The audit trail becomes append-only in the database itself: triggers refuse every UPDATE and
DELETE of audit_log rows (TRUNCATE, used only to empty test databases, fires no row trigger). The
actor's foreign key loses its ON DELETE SET NULL, which would be such an UPDATE (users are
deactivated, never deleted). Indexes for the audit page's filters, each ending in id so a filtered
page walks its index newest first. Written by hand: SQLite changes a foreign key only by rebuilding
the table."""
from peewee import *

SQLITE_TRIGGERS = [
    """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN
         SELECT RAISE(ABORT, 'audit_log is append-only: rows cannot be changed');
       END""",
    """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN
         SELECT RAISE(ABORT, 'audit_log is append-only: rows cannot be deleted');
       END""",
]

POSTGRES_TRIGGERS = [
    """CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION USING ERRCODE = 'restrict_violation',
           MESSAGE = 'audit_log is append-only: ' || TG_OP || ' refused';
       END $$""",
    """CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
       FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
]

# The table as 0001 made it, with the foreign key's ON DELETE clause left to fill in.
SQLITE_TABLE = (
    'CREATE TABLE "audit_log_rebuilt" ("id" INTEGER NOT NULL PRIMARY KEY, "actor_id" INTEGER, '
    '"actor_email" VARCHAR(254) NOT NULL, "action" VARCHAR(60) NOT NULL, "object_type" VARCHAR(40) NOT NULL, '
    '"object_id" VARCHAR(40) NOT NULL, "detail" TEXT NOT NULL, "ip" VARCHAR(64) NOT NULL, '
    '"created_at" DATETIME NOT NULL, FOREIGN KEY ("actor_id") REFERENCES "user" ("id"){on_delete})'
)
COLUMNS = '"id", "actor_id", "actor_email", "action", "object_type", "object_id", "detail", "ip", "created_at"'

OLD_INDEXES = [("auditlog_action", ("action",)), ("auditlog_object_type_object_id", ("object_type", "object_id"))]
NEW_INDEXES = [("action", "id"), ("actor_email", "id"), ("object_type", "object_id", "id"), ("ip", "id")]
KEPT_INDEXES = [("auditlog_actor_id", ("actor_id",)), ("auditlog_created_at", ("created_at",))]


def _rebuild_sqlite(db, on_delete: str) -> None:
    """Copy audit_log into a table whose foreign key says `on_delete`. The migration runner has
    foreign keys off and a transaction open; the table's indexes and triggers go with the old table."""
    db.execute_sql(SQLITE_TABLE.format(on_delete=on_delete))
    db.execute_sql(f'INSERT INTO "audit_log_rebuilt" ({COLUMNS}) SELECT {COLUMNS} FROM "audit_log"')
    db.execute_sql('DROP TABLE "audit_log"')
    db.execute_sql('ALTER TABLE "audit_log_rebuilt" RENAME TO "audit_log"')


def _create_indexes(db, indexes) -> None:
    for name, columns in indexes:
        quoted = ", ".join(f'"{c}"' for c in columns)
        db.execute_sql(f'CREATE INDEX "{name}" ON "audit_log" ({quoted})')


def up(migrator, db):
    if isinstance(db, PostgresqlDatabase):
        migrator.migrate(migrator.drop_foreign_key_constraint('audit_log', 'actor_id'))
        migrator.migrate(migrator.add_foreign_key_constraint('audit_log', 'actor_id', 'user', 'id',
                                                             constraint_name='audit_log_actor_id_fkey'))
        for name, _ in OLD_INDEXES:
            migrator.migrate(migrator.drop_index('audit_log', name))
    else:
        _rebuild_sqlite(db, "")
        _create_indexes(db, KEPT_INDEXES)
    for columns in NEW_INDEXES:
        migrator.migrate(migrator.add_index('audit_log', columns))
    for statement in POSTGRES_TRIGGERS if isinstance(db, PostgresqlDatabase) else SQLITE_TRIGGERS:
        db.execute_sql(statement)


def down(migrator, db):
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        db.execute_sql("DROP FUNCTION IF EXISTS audit_log_append_only()")
        migrator.migrate(migrator.drop_foreign_key_constraint('audit_log', 'actor_id'))
        migrator.migrate(migrator.add_foreign_key_constraint('audit_log', 'actor_id', 'user', 'id',
                                                             on_delete='SET NULL',
                                                             constraint_name='audit_log_actor_id_fkey'))
        for columns in NEW_INDEXES:
            migrator.migrate(migrator.drop_index('audit_log', 'audit_log_' + '_'.join(columns)))
        _create_indexes(db, OLD_INDEXES)
    else:
        db.execute_sql("DROP TRIGGER IF EXISTS audit_log_no_update")
        db.execute_sql("DROP TRIGGER IF EXISTS audit_log_no_delete")
        _rebuild_sqlite(db, " ON DELETE SET NULL")
        _create_indexes(db, KEPT_INDEXES + OLD_INDEXES)

"""Migrations build the schema the models describe, and the counts backfill is right."""
import peewee
from playhouse.migrations import Runner

from smilepass import db
from smilepass.models import ALL_MODELS


def test_migrations_match_the_models(tmp_path):
    database = peewee.SqliteDatabase(str(tmp_path / "m.db"))
    Runner(database, str(db.MIGRATIONS_DIR)).up()
    tables = set(database.get_tables())
    assert {m._meta.table_name for m in ALL_MODELS} <= tables
    for model in ALL_MODELS:
        columns = {c.name for c in database.get_columns(model._meta.table_name)}
        assert {f.column_name for f in model._meta.sorted_fields} == columns, model


def test_ticket_count_backfill(tmp_path):
    database = peewee.SqliteDatabase(str(tmp_path / "m.db"), pragmas={"foreign_keys": 1})
    runner = Runner(database, str(db.MIGRATIONS_DIR))
    runner.up("0001_initial")
    database.execute_sql(
        "INSERT INTO user (email, name, role, password_hash, session_stamp, is_active, ticket_sort, created_at) "
        "VALUES ('a@x.test', '', 'clinician', 'h', 's', 1, '-date', '2026-01-01')")
    for status in (0, 0, 3):
        database.execute_sql(
            "INSERT INTO ticket (requester_id, title, description, priority, category, status, created_at, updated_at) "
            f"VALUES (1, 't', 'd', 0, 'c', {status}, '2026-01-01', '2026-01-01')")
    runner.up()
    rows = database.execute_sql("SELECT requester_id, status, n FROM ticket_count ORDER BY status").fetchall()
    assert rows == [(1, 0, 2), (1, 3, 1)]

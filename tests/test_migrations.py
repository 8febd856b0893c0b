"""Migrations build the schema the models describe (tables, columns, primary keys and every index, on
the pass's database: SQLite or PostgreSQL), and the counts backfill is right."""
import peewee
from playhouse.migrations import Runner

from smilepass import db
from smilepass.models import ALL_MODELS, Draft, Ticket

from .conftest import legacy_database


def declared_indexes(database, model) -> dict:
    """The indexes the model asks for (index=True / unique=True fields, foreign keys, Meta.indexes and
    add_index, partial ones included, and those on a generated column named in Meta.generated_indexes),
    as {(columns, unique, where): name}."""
    found = {}
    for index in model._meta.fields_to_index():
        columns = tuple(expression.column_name for expression in index._expressions)
        where = ""
        if index._where is not None:
            # The dialect's own CREATE INDEX text, so the condition reads like the introspected one.
            where = database.get_sql_context().sql(index).query()[0].split(" WHERE ", 1)[1]
        found[(columns, bool(index._unique), squeeze(where))] = index._name
    for name, (columns, where) in getattr(model._meta, "generated_indexes", {}).items():
        found[(columns, False, squeeze(where))] = name
    return found


def built_indexes(database, model) -> dict:
    """The indexes the migrations built on the model's table, in the same form; the primary key's own
    index (SQLite's autoindex of a composite or text key, PostgreSQL's *_pkey) is compared separately."""
    table = model._meta.table_name
    primary_key = tuple(database.get_primary_keys(table))
    found = {}
    for index in database.get_indexes(table):
        if index.unique and tuple(index.columns) == primary_key:
            continue
        where = index.sql.split(" WHERE ", 1)[1] if index.sql and " WHERE " in index.sql else ""
        found[(tuple(index.columns), bool(index.unique), squeeze(where))] = index.name
    return found


def built_columns(database, table: str) -> set[str]:
    """Every column of the table; SQLite's table_info (behind get_columns) leaves out generated ones."""
    if isinstance(getattr(database, "obj", database), peewee.SqliteDatabase):  # db.database is a proxy
        return {row[1] for row in database.execute_sql(f'PRAGMA table_xinfo("{table}")')}
    return {c.name for c in database.get_columns(table)}


def squeeze(condition: str) -> str:
    """A WHERE condition without quoting, brackets, spacing or case: SQLite keeps the text as written,
    PostgreSQL hands back its own rendering."""
    return "".join(ch for ch in condition.lower() if ch not in '"`() \n')


def schema_differences(database, model) -> list[str]:
    table = model._meta.table_name
    problems = []
    columns = built_columns(database, table)
    wanted_columns = {f.column_name for f in model._meta.sorted_fields}
    wanted_columns |= set(getattr(model._meta, "generated_columns", ()))
    if columns != wanted_columns:
        problems.append(f"{table}: columns {sorted(columns)} but the model has {sorted(wanted_columns)}")
    primary_key = database.get_primary_keys(table)
    wanted_key = [f.column_name for f in model._meta.get_primary_keys()]
    if primary_key != wanted_key:
        problems.append(f"{table}: primary key {primary_key} but the model has {wanted_key}")
    built, declared = built_indexes(database, model), declared_indexes(database, model)
    for key in declared.keys() - built.keys():
        problems.append(f"{table}: the migrations lack index {declared[key]} {key}")
    for key in built.keys() - declared.keys():
        problems.append(f"{table}: the migrations built index {built[key]} {key} that no model declares")
    return problems


def test_migrations_match_the_models(app):
    """On the database of this pass (migrated by the app fixture or, on PostgreSQL, once per process)."""
    database = db.database
    with database.connection_context():
        assert {m._meta.table_name for m in ALL_MODELS} <= set(database.get_tables())
        problems = [problem for model in ALL_MODELS for problem in schema_differences(database, model)]
        compared = sum(len(declared_indexes(database, model)) for model in ALL_MODELS)
    assert problems == []
    assert compared >= 40  # every model's indexes were looked at, not an empty list


def test_the_comparison_sees_a_missing_or_extra_index(tmp_path):
    """The check above would notice a migration that forgot an index, or one no model knows about."""
    database = peewee.SqliteDatabase(str(tmp_path / "m.db"))
    Runner(database, str(db.MIGRATIONS_DIR)).up()
    partial = next(name for (_, _, where), name in built_indexes(database, Draft).items() if where)
    database.execute_sql(f'DROP INDEX "{partial}"')
    database.execute_sql('CREATE INDEX "draft_stray" ON "draft" ("content")')
    problems = sorted(schema_differences(database, Draft))
    assert len(problems) == 2, problems
    assert "built index draft_stray" in problems[0]
    assert "lack index draft_user_kind_without_ticket" in problems[1]


def test_ticket_count_backfill(tmp_path):
    database, runner = legacy_database(tmp_path / "m.db", [("t", "d", status) for status in (0, 0, 3)])
    runner.up()
    rows = database.execute_sql("SELECT requester_id, status, n FROM ticket_count ORDER BY status").fetchall()
    assert rows == [(1, 0, 2), (1, 3, 1)]


def test_the_comparison_holds_the_generated_queue_rank_and_its_indexes(tmp_path):
    """queue_rank is no field, but the migrations must still build it and the indexes named for it."""
    database = peewee.SqliteDatabase(str(tmp_path / "m.db"))
    Runner(database, str(db.MIGRATIONS_DIR)).up()
    assert schema_differences(database, Ticket) == []
    database.execute_sql('DROP INDEX "ticket_queue_assignee"')
    problems = schema_differences(database, Ticket)
    assert len(problems) == 1 and "lack index ticket_queue_assignee" in problems[0], problems

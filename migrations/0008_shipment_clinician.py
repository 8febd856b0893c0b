"""Each shipment carries its case's clinician, kept by triggers, so a clinician's Shipments view walks
an index instead of joining through all their cases. Column and indexes generated with `pwmigrate
generate`; the triggers, the backfill and the down-migration's care for SQLite are written by hand."""
import importlib.util
from pathlib import Path

from peewee import *

SQLITE_TRIGGERS = [
    """CREATE TRIGGER shipment_clinician_insert AFTER INSERT ON shipment BEGIN
         UPDATE shipment SET clinician_id = (SELECT clinician_id FROM "case" WHERE id = NEW.case_id)
         WHERE id = NEW.id;
       END""",
    """CREATE TRIGGER shipment_clinician_move AFTER UPDATE OF case_id ON shipment BEGIN
         UPDATE shipment SET clinician_id = (SELECT clinician_id FROM "case" WHERE id = NEW.case_id)
         WHERE id = NEW.id;
       END""",
    """CREATE TRIGGER case_clinician_to_shipments AFTER UPDATE OF clinician_id ON "case"
       WHEN OLD.clinician_id IS NOT NEW.clinician_id BEGIN
         UPDATE shipment SET clinician_id = NEW.clinician_id WHERE case_id = NEW.id;
       END""",
]

POSTGRES_TRIGGERS = [
    """CREATE FUNCTION shipment_clinician_copy() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         NEW.clinician_id := (SELECT clinician_id FROM "case" WHERE id = NEW.case_id);
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER shipment_clinician_copy BEFORE INSERT OR UPDATE OF case_id ON shipment
       FOR EACH ROW EXECUTE FUNCTION shipment_clinician_copy()""",
    """CREATE FUNCTION case_clinician_to_shipments() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         UPDATE shipment SET clinician_id = NEW.clinician_id WHERE case_id = NEW.id;
         RETURN NULL;
       END $$""",
    """CREATE TRIGGER case_clinician_to_shipments AFTER UPDATE OF clinician_id ON "case" FOR EACH ROW
       WHEN (OLD.clinician_id IS DISTINCT FROM NEW.clinician_id) EXECUTE FUNCTION case_clinician_to_shipments()""",
]

BACKFILL = 'UPDATE shipment SET clinician_id = (SELECT clinician_id FROM "case" WHERE "case".id = shipment.case_id)'


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = 'user'

    migrator.migrate(migrator.add_column('shipment', 'clinician_id', ForeignKeyField(User, field=User.id, null=True, on_delete='CASCADE')))
    migrator.migrate(migrator.add_index('shipment', ('clinician_id', 'state', 'delivered_at')))
    migrator.migrate(migrator.add_index('shipment', ('clinician_id', 'target_ship_date', 'id')))
    postgres = isinstance(db, PostgresqlDatabase)
    for statement in POSTGRES_TRIGGERS if postgres else SQLITE_TRIGGERS:
        db.execute_sql(statement)
    db.execute_sql(BACKFILL)


def down(migrator, db):
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql("DROP TRIGGER IF EXISTS shipment_clinician_copy ON shipment")
        db.execute_sql('DROP TRIGGER IF EXISTS case_clinician_to_shipments ON "case"')
        db.execute_sql("DROP FUNCTION IF EXISTS shipment_clinician_copy()")
        db.execute_sql("DROP FUNCTION IF EXISTS case_clinician_to_shipments()")
    else:
        for name in ["shipment_clinician_insert", "shipment_clinician_move", "case_clinician_to_shipments"]:
            db.execute_sql(f"DROP TRIGGER IF EXISTS {name}")
    migrator.migrate(migrator.drop_index('shipment', 'shipment_clinician_id_target_ship_date_id'))
    migrator.migrate(migrator.drop_index('shipment', 'shipment_clinician_id_state_delivered_at'))
    migrator.migrate(migrator.drop_index('shipment', 'shipment_clinician_id'))
    migrator.migrate(migrator.drop_column('shipment', 'clinician_id'))
    if not isinstance(db, PostgresqlDatabase):
        # Depending on its version SQLite drops a column in place or by rebuilding the table, which
        # drops the table's triggers too: make sure the shipment counting triggers of 0006 are there.
        path = Path(__file__).with_name("0006_state_counts.py")
        spec = importlib.util.spec_from_file_location("state_counts_0006", path)
        counts = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(counts)
        for statement in counts.SQLITE_TRIGGERS:
            if "ON shipment" in statement:
                db.execute_sql(statement.replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS", 1))

"""Counts per state for the case list and the Shipments view, kept by triggers; indexes for listing
shipments by target date. Tables and indexes generated with `pwmigrate generate`; the triggers and
the initial fill are written by hand, once per dialect."""
from peewee import *

# SQLite: one trigger per event. An UPDATE trigger fires only when the counted columns change.
SQLITE_TRIGGERS = [
    """CREATE TRIGGER case_count_insert AFTER INSERT ON "case" BEGIN
         INSERT INTO case_count (clinician_id, state, n) VALUES (NEW.clinician_id, NEW.latest_state, 1)
           ON CONFLICT (clinician_id, state) DO UPDATE SET n = n + 1;
       END""",
    """CREATE TRIGGER case_count_delete AFTER DELETE ON "case" BEGIN
         UPDATE case_count SET n = n - 1 WHERE clinician_id = OLD.clinician_id AND state = OLD.latest_state;
       END""",
    """CREATE TRIGGER case_count_update AFTER UPDATE OF clinician_id, latest_state ON "case"
       WHEN OLD.clinician_id IS NOT NEW.clinician_id OR OLD.latest_state IS NOT NEW.latest_state BEGIN
         UPDATE case_count SET n = n - 1 WHERE clinician_id = OLD.clinician_id AND state = OLD.latest_state;
         INSERT INTO case_count (clinician_id, state, n) VALUES (NEW.clinician_id, NEW.latest_state, 1)
           ON CONFLICT (clinician_id, state) DO UPDATE SET n = n + 1;
       END""",
    """CREATE TRIGGER shipment_count_insert AFTER INSERT ON shipment BEGIN
         INSERT INTO shipment_count (state, n) VALUES (NEW.state, 1) ON CONFLICT (state) DO UPDATE SET n = n + 1;
       END""",
    """CREATE TRIGGER shipment_count_delete AFTER DELETE ON shipment BEGIN
         UPDATE shipment_count SET n = n - 1 WHERE state = OLD.state;
       END""",
    """CREATE TRIGGER shipment_count_update AFTER UPDATE OF state ON shipment WHEN OLD.state IS NOT NEW.state BEGIN
         UPDATE shipment_count SET n = n - 1 WHERE state = OLD.state;
         INSERT INTO shipment_count (state, n) VALUES (NEW.state, 1) ON CONFLICT (state) DO UPDATE SET n = n + 1;
       END""",
]

# PostgreSQL: one function per counted table; OLD is counted out, NEW counted in.
POSTGRES_TRIGGERS = [
    """CREATE FUNCTION case_count_keep() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP IN ('UPDATE', 'DELETE') THEN
           UPDATE case_count SET n = n - 1 WHERE clinician_id = OLD.clinician_id AND state = OLD.latest_state;
         END IF;
         IF TG_OP IN ('UPDATE', 'INSERT') THEN
           INSERT INTO case_count (clinician_id, state, n) VALUES (NEW.clinician_id, NEW.latest_state, 1)
             ON CONFLICT (clinician_id, state) DO UPDATE SET n = case_count.n + 1;
         END IF;
         RETURN NULL;
       END $$""",
    """CREATE TRIGGER case_count_insert_delete AFTER INSERT OR DELETE ON "case"
       FOR EACH ROW EXECUTE FUNCTION case_count_keep()""",
    """CREATE TRIGGER case_count_update AFTER UPDATE OF clinician_id, latest_state ON "case" FOR EACH ROW
       WHEN (OLD.clinician_id IS DISTINCT FROM NEW.clinician_id OR OLD.latest_state IS DISTINCT FROM NEW.latest_state)
       EXECUTE FUNCTION case_count_keep()""",
    """CREATE FUNCTION shipment_count_keep() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP IN ('UPDATE', 'DELETE') THEN
           UPDATE shipment_count SET n = n - 1 WHERE state = OLD.state;
         END IF;
         IF TG_OP IN ('UPDATE', 'INSERT') THEN
           INSERT INTO shipment_count (state, n) VALUES (NEW.state, 1)
             ON CONFLICT (state) DO UPDATE SET n = shipment_count.n + 1;
         END IF;
         RETURN NULL;
       END $$""",
    """CREATE TRIGGER shipment_count_insert_delete AFTER INSERT OR DELETE ON shipment
       FOR EACH ROW EXECUTE FUNCTION shipment_count_keep()""",
    """CREATE TRIGGER shipment_count_update AFTER UPDATE OF state ON shipment FOR EACH ROW
       WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION shipment_count_keep()""",
]

FILL = [
    'INSERT INTO case_count (clinician_id, state, n) SELECT clinician_id, latest_state, COUNT(*) FROM "case" '
    'GROUP BY clinician_id, latest_state',
    "INSERT INTO shipment_count (state, n) SELECT state, COUNT(*) FROM shipment GROUP BY state",
]


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = 'user'

    class CaseCount(Model):
        clinician = ForeignKeyField(User, on_delete='CASCADE')
        state = CharField(max_length=16)
        n = IntegerField(default=0)
        class Meta:
            database = db
            table_name = 'case_count'
            primary_key = CompositeKey('clinician', 'state')
    db.create_tables([CaseCount])

    class ShipmentCount(Model):
        state = CharField(primary_key=True, max_length=16)
        n = IntegerField(default=0)
        class Meta:
            database = db
            table_name = 'shipment_count'
    db.create_tables([ShipmentCount])

    migrator.migrate(migrator.add_index('shipment', ('state', 'target_ship_date', 'id')))
    migrator.migrate(migrator.add_index('shipment', ('target_ship_date', 'id')))

    postgres = isinstance(db, PostgresqlDatabase)
    for statement in (POSTGRES_TRIGGERS if postgres else SQLITE_TRIGGERS) + FILL:
        db.execute_sql(statement)


def down(migrator, db):
    if isinstance(db, PostgresqlDatabase):
        for table, name in [("case", "case_count_insert_delete"), ("case", "case_count_update"),
                            ("shipment", "shipment_count_insert_delete"), ("shipment", "shipment_count_update")]:
            db.execute_sql(f'DROP TRIGGER IF EXISTS {name} ON "{table}"')
        db.execute_sql("DROP FUNCTION IF EXISTS case_count_keep()")
        db.execute_sql("DROP FUNCTION IF EXISTS shipment_count_keep()")
    else:
        for name in ["case_count_insert", "case_count_delete", "case_count_update", "shipment_count_insert",
                     "shipment_count_delete", "shipment_count_update"]:
            db.execute_sql(f"DROP TRIGGER IF EXISTS {name}")
    migrator.migrate(migrator.drop_index('shipment', 'shipment_target_ship_date_id'))
    migrator.migrate(migrator.drop_index('shipment', 'shipment_state_target_ship_date_id'))
    migrator.migrate(migrator.drop_table('shipment_count'))
    migrator.migrate(migrator.drop_table('case_count'))

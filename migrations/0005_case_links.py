"""Tickets and scans link to cases; a request's structured case details; clinic settings.
Generated with `pwmigrate generate`; the scan's ticket becoming optional was added by hand (the
diff does not see nullability changes). Python-side defaults (updated_at) need no column default."""
from peewee import *


def up(migrator, db):
    class Case(Model):
        class Meta:
            database = db
            table_name = 'case'

    class Ticket(Model):
        class Meta:
            database = db
            table_name = 'ticket'

    class CaseDetails(Model):
        ticket = ForeignKeyField(Ticket, primary_key=True, on_delete='CASCADE')
        teeth = CharField(max_length=200, default='')
        last_aligner_delivered = DateField(null=True)
        aligner_step = SmallIntegerField(null=True)
        tracking_number = CharField(max_length=80, default='')
        preferred_resolution = CharField(max_length=16, default='')
        class Meta:
            database = db
            table_name = 'case_details'
    db.create_tables([CaseDetails])

    class Setting(Model):
        key = CharField(primary_key=True, max_length=60)
        value = TextField()
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'setting'
    db.create_tables([Setting])

    migrator.migrate(migrator.add_column('ticket', 'case_id', ForeignKeyField(Case, field=Case.id, null=True, on_delete='SET NULL')))
    migrator.migrate(migrator.add_column('scan', 'case_id', ForeignKeyField(Case, field=Case.id, null=True, on_delete='SET NULL')))
    migrator.migrate(migrator.add_index('ticket', ('case_id', 'id')))
    migrator.migrate(migrator.add_index('scan', ('case_id', 'id')))
    # A scan uploaded on a case page belongs to no ticket.
    migrator.migrate(migrator.drop_not_null('scan', 'ticket_id'))


def down(migrator, db):
    migrator.migrate(migrator.add_not_null('scan', 'ticket_id'))
    migrator.migrate(migrator.drop_index('scan', 'scan_case_id_id'))
    migrator.migrate(migrator.drop_index('scan', 'scan_case_id'))
    migrator.migrate(migrator.drop_index('ticket', 'ticket_case_id_id'))
    migrator.migrate(migrator.drop_index('ticket', 'ticket_case_id'))
    migrator.migrate(migrator.drop_column('scan', 'case_id'))
    migrator.migrate(migrator.drop_column('ticket', 'case_id'))
    migrator.migrate(migrator.drop_table('setting'))
    migrator.migrate(migrator.drop_table('case_details'))

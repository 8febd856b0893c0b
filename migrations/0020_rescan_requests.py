"""Rescan requests (issue 18): staff ask the clinician to scan again for coded reasons; the new scan sent
in the ticket's thread answers the request."""
from peewee import *


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = 'user'

    class Ticket(Model):
        class Meta:
            database = db
            table_name = 'ticket'

    class Message(Model):
        class Meta:
            database = db
            table_name = 'message'

    class Scan(Model):
        class Meta:
            database = db
            table_name = 'scan'

    class RescanRequest(Model):
        scan = ForeignKeyField(Scan, backref='rescan_requests', on_delete='CASCADE')
        ticket = ForeignKeyField(Ticket, on_delete='CASCADE')
        clinician = ForeignKeyField(User, backref='rescans_asked_of', on_delete='CASCADE')
        reasons = CharField(max_length=200)
        note = TextField(default='')
        message = ForeignKeyField(Message, null=True, on_delete='SET NULL')
        requested_by = ForeignKeyField(User, backref='rescans_requested', on_delete='RESTRICT')
        requested_at = DateTimeField()
        fulfilled_by_scan = ForeignKeyField(Scan, null=True, backref='fulfilled_requests', on_delete='SET NULL')
        fulfilled_at = DateTimeField(null=True)
        wait_minutes = IntegerField(null=True)

        class Meta:
            database = db
            table_name = 'rescan_request'
            indexes = ((('requested_at', 'clinician'), False), (('fulfilled_at', 'wait_minutes', 'clinician'), False))

    db.create_tables([RescanRequest])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('rescan_request'))

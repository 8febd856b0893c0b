"""Scans (STL/PLY) attached to tickets, with the state and results of their repair jobs.
Generated with `pwmigrate generate`."""
from peewee import *


def up(migrator, db):
    class Message(Model):
        class Meta:
            database = db
            table_name = 'message'

    class Ticket(Model):
        class Meta:
            database = db
            table_name = 'ticket'

    class User(Model):
        class Meta:
            database = db
            table_name = 'user'

    class Scan(Model):
        ticket = ForeignKeyField(Ticket, on_delete='CASCADE')
        message = ForeignKeyField(Message, null=True, on_delete='CASCADE')
        uploader = ForeignKeyField(User, on_delete='RESTRICT')
        original_name = CharField()
        stored_name = CharField(unique=True, max_length=64)
        size = BigIntegerField()
        sha256 = CharField(max_length=64)
        file_format = CharField(max_length=16)
        triangles = IntegerField()
        state = CharField(index=True, max_length=16, default='queued')
        stage = CharField(max_length=32, default='')
        progress = FloatField(default=0.0)
        run = IntegerField(default=1)
        attempts = IntegerField(default=0)
        options = TextField(default='{}')
        error = TextField(default='')
        verdict = CharField(max_length=16, default='')
        verdict_reason = TextField(default='')
        report = TextField(default='')
        output_stem = CharField(max_length=64, default='')
        repaired_name = CharField(max_length=80, default='')
        repaired_stl_name = CharField(max_length=80, default='')
        preview_before_name = CharField(max_length=80, default='')
        preview_after_name = CharField(max_length=80, default='')
        created_at = DateTimeField()
        updated_at = DateTimeField()
        started_at = DateTimeField(null=True)
        finished_at = DateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'scan'
            indexes = ((('ticket',), False),)
    db.create_tables([Scan])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('scan'))

"""Ticket counts per requester and status, for the quick filters; filled from existing tickets.
Generated with `pwmigrate generate`, plus the backfill."""
from peewee import *


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = 'user'

    class TicketCount(Model):
        requester = ForeignKeyField(User, on_delete='CASCADE')
        status = SmallIntegerField()
        n = IntegerField(default=0)
        class Meta:
            database = db
            table_name = 'ticket_count'
            primary_key = CompositeKey('requester', 'status')
    db.create_tables([TicketCount])
    db.execute_sql(
        'INSERT INTO "ticket_count" ("requester_id", "status", "n") '
        'SELECT "requester_id", "status", COUNT(*) FROM "ticket" GROUP BY "requester_id", "status"'
    )


def down(migrator, db):
    migrator.migrate(migrator.drop_table('ticket_count'))

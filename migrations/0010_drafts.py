"""Drafts of the New Request form and of replies, one per user, kind and ticket. Table generated with
`pwmigrate generate`; the partial unique index (New Request drafts have no ticket, and NULLs never
collide in a plain unique index) is written by hand."""
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

    class Draft(Model):
        user = ForeignKeyField(User, on_delete='CASCADE')
        kind = CharField(max_length=20)
        ticket = ForeignKeyField(Ticket, null=True, on_delete='CASCADE')
        content = TextField()
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'draft'
            indexes = ((('user', 'kind', 'ticket'), True),)
    db.create_tables([Draft])
    db.execute_sql('CREATE UNIQUE INDEX draft_user_kind_without_ticket ON draft (user_id, kind) '
                   'WHERE ticket_id IS NULL')


def down(migrator, db):
    migrator.migrate(migrator.drop_table('draft'))

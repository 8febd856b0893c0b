"""Supervisors answer a Contact us message in the app: each reply is kept with the message (its
thread) and points at the outbox mail that carried it to the sender."""
from peewee import *


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = 'user'

    class ContactRequest(Model):
        class Meta:
            database = db
            table_name = 'contact_request'

    class OutboxMail(Model):
        class Meta:
            database = db
            table_name = 'outbox_mail'

    class ContactReply(Model):
        contact = ForeignKeyField(ContactRequest, on_delete='CASCADE')
        author = ForeignKeyField(User, null=True, on_delete='SET NULL')
        body = TextField()
        mail = ForeignKeyField(OutboxMail, null=True, on_delete='SET NULL')
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = 'contact_reply'
            indexes = ((('contact', 'id'), False),)
    db.create_tables([ContactReply])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('contact_reply'))

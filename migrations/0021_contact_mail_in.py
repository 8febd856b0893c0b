"""Answers by email for Contact us messages (#16): the sender's reply to a supervisor's answer joins the
message's thread (contact_reply.from_sender), and the incoming mail's row names the message it went to."""
from peewee import *


def up(migrator, db):
    class ContactRequest(Model):
        class Meta:
            database = db
            table_name = 'contact_request'

    migrator.migrate(
        migrator.add_column('contact_reply', 'from_sender', BooleanField(default=False)),
        migrator.add_column('inbound_mail', 'contact_id',
                            ForeignKeyField(ContactRequest, null=True, on_delete='SET NULL', field=ContactRequest.id)),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_column('inbound_mail', 'contact_id'),
        migrator.drop_column('contact_reply', 'from_sender'),
    )

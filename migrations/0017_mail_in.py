"""Answers by email (#16): outgoing mails keep their Message-ID, thread root and tokened Reply-To, and
every incoming mail leaves a row (its Message-ID is taken once only)."""
from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_column('outbox_mail', 'message_id', CharField(max_length=255, default='')),
        migrator.add_column('outbox_mail', 'in_reply_to', CharField(max_length=255, default='')),
        migrator.add_column('outbox_mail', 'reply_to', CharField(max_length=254, default='')),
        migrator.add_column('outbox_mail', 'automatic', BooleanField(default=False)),
    )

    class User(Model):
        class Meta:
            database = db
            table_name = 'user'

    class Ticket(Model):
        class Meta:
            database = db
            table_name = 'ticket'

    class InboundMail(Model):
        message_id = CharField(max_length=255, unique=True)
        status = CharField(max_length=20)
        reason = CharField(max_length=300, default='')
        sender = CharField(max_length=254, default='')
        ticket = ForeignKeyField(Ticket, null=True, on_delete='SET NULL')
        user = ForeignKeyField(User, null=True, on_delete='SET NULL')
        authentication = CharField(max_length=300, default='')
        received_at = DateTimeField(index=True)

        class Meta:
            database = db
            table_name = 'inbound_mail'
    db.create_tables([InboundMail])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('inbound_mail'))
    migrator.migrate(
        migrator.drop_column('outbox_mail', 'message_id'),
        migrator.drop_column('outbox_mail', 'in_reply_to'),
        migrator.drop_column('outbox_mail', 'reply_to'),
        migrator.drop_column('outbox_mail', 'automatic'),
    )

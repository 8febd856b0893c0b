"""Initial schema: users, sign-in throttle, password resets, mail outbox, tickets and their threads,
attachments and the audit log. Generated with `pwmigrate initial`; timestamps get their defaults
in the application models."""
from peewee import *


def up(migrator, db):
    class User(Model):
        email = CharField(unique=True, max_length=254)
        name = CharField(max_length=120, default='')
        role = CharField(index=True, max_length=20, default='clinician')
        password_hash = CharField()
        session_stamp = CharField(max_length=64)
        is_active = BooleanField(default=True)
        ticket_sort = CharField(max_length=20, default='-date')
        created_at = DateTimeField()
        last_login_at = DateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'user'
    db.create_tables([User])

    class Ticket(Model):
        requester = ForeignKeyField(User, on_delete='RESTRICT')
        title = CharField(max_length=120)
        description = TextField()
        priority = SmallIntegerField(default=0)
        category = CharField(max_length=60, default='Technical Issues & Bugs')
        status = SmallIntegerField(default=0)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        response_due_at = DateTimeField(null=True)
        first_response_at = DateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'ticket'
            indexes = ((('created_at', 'id'), False), (('priority', 'id'), False), (('title', 'id'), False), (('category', 'id'), False), (('status', 'id'), False), (('requester', 'created_at', 'id'), False), (('requester', 'priority', 'id'), False), (('requester', 'title', 'id'), False), (('requester', 'category', 'id'), False), (('requester', 'status', 'id'), False))
    db.create_tables([Ticket])

    class Message(Model):
        ticket = ForeignKeyField(Ticket, on_delete='CASCADE')
        author = ForeignKeyField(User, on_delete='RESTRICT')
        body = TextField()
        internal = BooleanField(default=False)
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'message'
            indexes = ((('ticket', 'created_at'), False),)
    db.create_tables([Message])

    class Attachment(Model):
        ticket = ForeignKeyField(Ticket, on_delete='CASCADE')
        message = ForeignKeyField(Message, null=True, on_delete='CASCADE')
        uploader = ForeignKeyField(User, on_delete='RESTRICT')
        original_name = CharField()
        stored_name = CharField(unique=True, max_length=64)
        thumb_name = CharField(null=True, max_length=64)
        content_type = CharField(max_length=64)
        size = IntegerField()
        sha256 = CharField(max_length=64)
        width = IntegerField(null=True)
        height = IntegerField(null=True)
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'attachment'
            indexes = ((('ticket',), False),)
    db.create_tables([Attachment])

    class AuditLog(Model):
        actor = ForeignKeyField(User, null=True, on_delete='SET NULL')
        actor_email = CharField(max_length=254, default='')
        action = CharField(index=True, max_length=60)
        object_type = CharField(max_length=40, default='')
        object_id = CharField(max_length=40, default='')
        detail = TextField(default='')
        ip = CharField(max_length=64, default='')
        created_at = DateTimeField(index=True)
        class Meta:
            database = db
            table_name = 'audit_log'
            indexes = ((('object_type', 'object_id'), False),)
    db.create_tables([AuditLog])

    class LoginThrottle(Model):
        email = CharField(unique=True, max_length=254)
        failures = IntegerField(default=0)
        locked_until = DateTimeField(null=True)
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'login_throttle'
    db.create_tables([LoginThrottle])

    class OutboxMail(Model):
        to_addr = CharField(max_length=254)
        subject = CharField(max_length=200)
        body = TextField()
        created_at = DateTimeField(index=True)
        sent_at = DateTimeField(null=True)
        attempts = IntegerField(default=0)
        last_error = TextField(default='')
        class Meta:
            database = db
            table_name = 'outbox_mail'
    db.create_tables([OutboxMail])

    class PasswordReset(Model):
        user = ForeignKeyField(User, on_delete='CASCADE')
        token_hash = CharField(unique=True, max_length=64)
        created_at = DateTimeField()
        expires_at = DateTimeField()
        used_at = DateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'password_reset'
    db.create_tables([PasswordReset])

    class StatusChange(Model):
        ticket = ForeignKeyField(Ticket, on_delete='CASCADE')
        actor = ForeignKeyField(User, on_delete='RESTRICT')
        from_status = SmallIntegerField()
        to_status = SmallIntegerField()
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'status_change'
            indexes = ((('ticket', 'created_at'), False),)
    db.create_tables([StatusChange])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('status_change'))
    migrator.migrate(migrator.drop_table('password_reset'))
    migrator.migrate(migrator.drop_table('outbox_mail'))
    migrator.migrate(migrator.drop_table('login_throttle'))
    migrator.migrate(migrator.drop_table('audit_log'))
    migrator.migrate(migrator.drop_table('attachment'))
    migrator.migrate(migrator.drop_table('message'))
    migrator.migrate(migrator.drop_table('ticket'))
    migrator.migrate(migrator.drop_table('user'))

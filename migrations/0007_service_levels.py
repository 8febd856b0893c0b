"""Service levels: clinics and tiers, escalation roles and steps, ticket SLA clocks and assignment,
canned replies, in-app notifications, urgent contact requests. Generated with `pwmigrate generate`
(Python-side defaults such as created_at need no column default); the backfill of the running
deadline for open tickets is written by hand."""
from peewee import *


def up(migrator, db):
    class Ticket(Model):
        class Meta:
            database = db
            table_name = 'ticket'

    class User(Model):
        class Meta:
            database = db
            table_name = 'user'

    class CannedReply(Model):
        title = CharField(unique=True, max_length=120)
        body = TextField()
        created_by = ForeignKeyField(User, null=True, on_delete='SET NULL')
        created_at = DateTimeField()
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'canned_reply'
    db.create_tables([CannedReply])

    class Clinic(Model):
        name = CharField(unique=True, max_length=120)
        tier = SmallIntegerField(default=0)
        account_manager = ForeignKeyField(User, null=True, on_delete='SET NULL')
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'clinic'
    db.create_tables([Clinic])

    class ClinicMember(Model):
        user = ForeignKeyField(User, primary_key=True, on_delete='CASCADE')
        clinic = ForeignKeyField(Clinic, on_delete='CASCADE')
        class Meta:
            database = db
            table_name = 'clinic_member'
    db.create_tables([ClinicMember])

    class ContactRequest(Model):
        name = CharField(max_length=120)
        email = CharField(max_length=254)
        user = ForeignKeyField(User, null=True, on_delete='SET NULL')
        topic = CharField(max_length=20)
        message = TextField()
        ip = CharField(max_length=64, default='')
        created_at = DateTimeField(index=True)
        handled_by = ForeignKeyField(User, null=True, on_delete='SET NULL')
        handled_at = DateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'contact_request'
    db.create_tables([ContactRequest])

    class Escalation(Model):
        ticket = ForeignKeyField(Ticket, on_delete='CASCADE')
        level = SmallIntegerField()
        owner = ForeignKeyField(User, null=True, on_delete='SET NULL')
        actor = ForeignKeyField(User, null=True, on_delete='SET NULL')
        reason = TextField()
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'escalation'
            indexes = ((('ticket', 'created_at'), False),)
    db.create_tables([Escalation])

    class Notification(Model):
        user = ForeignKeyField(User, on_delete='CASCADE')
        ticket = ForeignKeyField(Ticket, null=True, on_delete='CASCADE')
        kind = CharField(max_length=40)
        text = CharField(max_length=300)
        created_at = DateTimeField()
        read_at = DateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'notification'
            indexes = ((('user', 'read_at', 'id'), False),)
    db.create_tables([Notification])

    migrator.migrate(migrator.add_column('user', 'escalation_role', CharField(index=True, max_length=20, default='')))
    migrator.migrate(migrator.add_column('ticket', 'assignee_id', ForeignKeyField(User, field=User.id, null=True, on_delete='SET NULL')))
    migrator.migrate(migrator.add_column('ticket', 'tier', SmallIntegerField(default=0)))
    migrator.migrate(migrator.add_column('ticket', 'resolution_due_at', DateTimeField(null=True)))
    migrator.migrate(migrator.add_column('ticket', 'next_due_at', DateTimeField(null=True)))
    migrator.migrate(migrator.add_column('ticket', 'sla_paused_at', DateTimeField(null=True)))
    migrator.migrate(migrator.add_column('ticket', 'resolved_at', DateTimeField(null=True)))
    migrator.migrate(migrator.add_column('ticket', 'response_minutes', IntegerField(null=True)))
    migrator.migrate(migrator.add_column('ticket', 'resolution_minutes', IntegerField(null=True)))
    migrator.migrate(migrator.add_column('ticket', 'response_breached', BooleanField(default=False)))
    migrator.migrate(migrator.add_column('ticket', 'resolution_breached', BooleanField(default=False)))
    migrator.migrate(migrator.add_column('ticket', 'escalation_level', SmallIntegerField(default=0)))
    migrator.migrate(migrator.add_column('ticket', 'escalation_owner_id', ForeignKeyField(User, field=User.id, null=True, on_delete='SET NULL')))
    migrator.migrate(migrator.add_column('ticket', 'tried', TextField(default='')))
    migrator.migrate(migrator.add_column('ticket', 'client', CharField(max_length=160, default='')))
    # Open tickets not yet answered keep their first-response deadline as the running one.
    db.execute_sql("UPDATE ticket SET next_due_at = response_due_at WHERE first_response_at IS NULL AND status < 3")
    migrator.migrate(migrator.add_index('ticket', ('assignee_id', 'status')))
    migrator.migrate(migrator.add_index('ticket', ('escalation_owner_id', 'status')))
    migrator.migrate(migrator.add_index('ticket', ('next_due_at',)))


def down(migrator, db):
    migrator.migrate(migrator.drop_index('ticket', 'ticket_next_due_at'))
    migrator.migrate(migrator.drop_index('ticket', 'ticket_escalation_owner_id_status'))
    migrator.migrate(migrator.drop_index('ticket', 'ticket_escalation_owner_id'))
    migrator.migrate(migrator.drop_index('ticket', 'ticket_assignee_id_status'))
    migrator.migrate(migrator.drop_index('ticket', 'ticket_assignee_id'))
    migrator.migrate(migrator.drop_index('user', 'user_escalation_role'))
    migrator.migrate(migrator.drop_column('ticket', 'client'))
    migrator.migrate(migrator.drop_column('ticket', 'tried'))
    migrator.migrate(migrator.drop_column('ticket', 'escalation_owner_id'))
    migrator.migrate(migrator.drop_column('ticket', 'escalation_level'))
    migrator.migrate(migrator.drop_column('ticket', 'resolution_breached'))
    migrator.migrate(migrator.drop_column('ticket', 'response_breached'))
    migrator.migrate(migrator.drop_column('ticket', 'resolution_minutes'))
    migrator.migrate(migrator.drop_column('ticket', 'response_minutes'))
    migrator.migrate(migrator.drop_column('ticket', 'resolved_at'))
    migrator.migrate(migrator.drop_column('ticket', 'sla_paused_at'))
    migrator.migrate(migrator.drop_column('ticket', 'next_due_at'))
    migrator.migrate(migrator.drop_column('ticket', 'resolution_due_at'))
    migrator.migrate(migrator.drop_column('ticket', 'tier'))
    migrator.migrate(migrator.drop_column('ticket', 'assignee_id'))
    migrator.migrate(migrator.drop_column('user', 'escalation_role'))
    migrator.migrate(migrator.drop_table('notification'))
    migrator.migrate(migrator.drop_table('escalation'))
    migrator.migrate(migrator.drop_table('contact_request'))
    migrator.migrate(migrator.drop_table('clinic_member'))
    migrator.migrate(migrator.drop_table('clinic'))
    migrator.migrate(migrator.drop_table('canned_reply'))

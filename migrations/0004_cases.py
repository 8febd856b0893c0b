"""Cases with their shipment trackers, labels, holidays, per-user preferences and patients'
status links. Generated with `pwmigrate generate`."""
from peewee import *


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = 'user'

    class Case(Model):
        case_number = CharField(unique=True, max_length=40)
        patient_name = CharField(max_length=120)
        patient_dob = DateField()
        clinic_patient_id = CharField(max_length=60, default='')
        clinician = ForeignKeyField(User, on_delete='RESTRICT')
        treatment_plan = CharField(max_length=200, default='')
        arches = CharField(max_length=8, default='both')
        notes = TextField(default='')
        latest_state = CharField(max_length=16, default='')
        created_at = DateTimeField()
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'case'
            indexes = ((('created_at', 'id'), False), (('patient_name', 'id'), False), (('treatment_plan', 'id'), False), (('latest_state', 'id'), False), (('clinician', 'created_at', 'id'), False), (('clinician', 'case_number'), False), (('clinician', 'patient_name', 'id'), False), (('clinician', 'treatment_plan', 'id'), False), (('clinician', 'latest_state', 'id'), False))
    db.create_tables([Case])

    class Label(Model):
        owner = ForeignKeyField(User, on_delete='CASCADE')
        name = CharField(max_length=40)
        color = CharField(max_length=16, default='teal')
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'label'
            indexes = ((('owner', 'name'), True),)
    db.create_tables([Label])

    class CaseLabel(Model):
        case = ForeignKeyField(Case, on_delete='CASCADE')
        label = ForeignKeyField(Label, on_delete='CASCADE')
        class Meta:
            database = db
            table_name = 'case_label'
            primary_key = CompositeKey('case', 'label')
            indexes = ((('label', 'case'), False),)
    db.create_tables([CaseLabel])

    class Holiday(Model):
        date = DateField(unique=True)
        name = CharField(max_length=80, default='')
        class Meta:
            database = db
            table_name = 'holiday'
    db.create_tables([Holiday])

    class Shipment(Model):
        case = ForeignKeyField(Case, on_delete='CASCADE')
        phases = CharField(max_length=200)
        state = CharField(max_length=16, default='in_production')
        target_ship_date = DateField()
        in_production_at = DateTimeField()
        in_transit_at = DateTimeField(null=True)
        delivered_at = DateTimeField(null=True)
        carrier = CharField(max_length=60, default='')
        tracking_number = CharField(max_length=80, default='')
        carrier_eta = DateField(null=True)
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'shipment'
            indexes = ((('case', 'id'), False), (('state', 'id'), False), (('delivered_at',), False))
    db.create_tables([Shipment])

    class PatientLink(Model):
        shipment = ForeignKeyField(Shipment, on_delete='CASCADE')
        token_hash = CharField(unique=True, max_length=64)
        created_by = ForeignKeyField(User, on_delete='RESTRICT')
        created_at = DateTimeField()
        revoked_at = DateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'patient_link'
    db.create_tables([PatientLink])

    class UserPreference(Model):
        user = ForeignKeyField(User, on_delete='CASCADE')
        key = CharField(max_length=40)
        value = CharField(max_length=200)
        class Meta:
            database = db
            table_name = 'user_preference'
            primary_key = CompositeKey('user', 'key')
    db.create_tables([UserPreference])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('user_preference'))
    migrator.migrate(migrator.drop_table('patient_link'))
    migrator.migrate(migrator.drop_table('shipment'))
    migrator.migrate(migrator.drop_table('holiday'))
    migrator.migrate(migrator.drop_table('case_label'))
    migrator.migrate(migrator.drop_table('label'))
    migrator.migrate(migrator.drop_table('case'))

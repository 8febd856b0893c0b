"""The 3D viewer (issue 18): each scan's web copies (.glb, as uploaded and repaired), and pins: a point on a
scan and the camera that looked at it, carried by a reply or internal note in the ticket's thread."""
from peewee import *


def up(migrator, db):
    class Scan(Model):
        class Meta:
            database = db
            table_name = 'scan'

    class Message(Model):
        class Meta:
            database = db
            table_name = 'message'

    class ScanPin(Model):
        message = ForeignKeyField(Message, unique=True, on_delete='CASCADE')
        scan = ForeignKeyField(Scan, on_delete='CASCADE')
        x = FloatField()
        y = FloatField()
        z = FloatField()
        camera_x = FloatField()
        camera_y = FloatField()
        camera_z = FloatField()
        target_x = FloatField()
        target_y = FloatField()
        target_z = FloatField()
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = 'scan_pin'

    migrator.migrate(migrator.add_column('scan', 'web_before_name', CharField(max_length=80, default='')),
                     migrator.add_column('scan', 'web_after_name', CharField(max_length=80, default='')))
    db.create_tables([ScanPin])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('scan_pin'))
    migrator.migrate(migrator.drop_column('scan', 'web_after_name'), migrator.drop_column('scan', 'web_before_name'))

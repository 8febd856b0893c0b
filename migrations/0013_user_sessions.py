"""Signed-in sessions kept on the server (issue 12 §2): one row per browser, the hash of the cookie's
random key, when it was made and last seen, and which browser and address it came from. Ending a
session deletes its row, which refuses a copied cookie afterwards."""
from peewee import *


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = 'user'

    class UserSession(Model):
        user = ForeignKeyField(User, on_delete='CASCADE')
        key_hash = CharField(max_length=64, unique=True)
        created_at = DateTimeField()
        last_seen_at = DateTimeField()
        user_agent = CharField(max_length=255)
        address = CharField(max_length=64)

        class Meta:
            database = db
            table_name = 'user_session'
    db.create_tables([UserSession])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('user_session'))

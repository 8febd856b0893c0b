"""A temporary password set by an admin must be replaced at the next sign-in."""
from peewee import *


def up(migrator, db):
    migrator.migrate(migrator.add_column('user', 'password_change_required', BooleanField(default=False)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column('user', 'password_change_required'))

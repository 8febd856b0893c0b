"""The user's UI language (My Account → Language); "" follows the browser. Generated with
`pwmigrate generate`."""
from peewee import *


def up(migrator, db):
    migrator.migrate(migrator.add_column('user', 'language', CharField(max_length=10, default='')))


def down(migrator, db):
    migrator.migrate(migrator.drop_column('user', 'language'))

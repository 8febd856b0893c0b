"""What every model shares: the database it is bound to and the clock it stores."""
import datetime as dt

import peewee as pw

from ..db import database


def utcnow() -> dt.datetime:
    # Stored naive in UTC on both SQLite and PostgreSQL; templates format it.
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class BaseModel(pw.Model):
    class Meta:
        database = database
        legacy_table_names = False

    @classmethod
    def get_if_allowed(cls, allowed: bool, object_id: int):
        """The row with this id when the viewer may see rows of this kind at all, else None: for the
        records that only a role manages (clinics, holidays, canned replies), where every row is alike.
        Models whose rows belong to someone define get_visible with their own rule."""
        return cls.get_or_none(cls.id == object_id) if allowed else None

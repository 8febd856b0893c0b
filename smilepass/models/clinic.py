"""Clinic-wide configuration that admins change at run time: settings and holidays."""
import peewee as pw

from .base import BaseModel, utcnow


class Setting(BaseModel):
    """A clinic-wide setting admins change at run time. Keys, types and defaults are in settings.py."""
    key = pw.CharField(max_length=60, primary_key=True)
    value = pw.TextField()
    updated_at = pw.DateTimeField(default=utcnow)


class Holiday(BaseModel):
    date = pw.DateField(unique=True)
    name = pw.CharField(max_length=80, default="")

    @classmethod
    def get_visible(cls, holiday_id: int, viewer):
        """Holidays are kept by admins: only they open one by id."""
        return cls.get_if_allowed(viewer.is_admin, holiday_id)

    @classmethod
    def dates(cls) -> frozenset:
        return frozenset(h.date for h in cls.select(cls.date))

"""The audit trail's rows (smilepass.audit writes them)."""
import peewee as pw

from .accounts import User
from .base import BaseModel, utcnow


class AuditLogIsAppendOnly(Exception):
    """Audit rows are written once and never changed or removed."""


class AuditLog(BaseModel):
    """Who did what to which object, when, from where. Never the patient data itself (audit.record
    writes the rows). Rows are only ever added: whatever would change or remove one raises
    AuditLogIsAppendOnly, and triggers (migration 0009) make the database itself refuse."""
    # No ON DELETE action: SET NULL would be an UPDATE of audit rows. Users are deactivated, never
    # deleted, and actor_email says who it was in any case.
    actor = pw.ForeignKeyField(User, null=True)
    actor_email = pw.CharField(max_length=254, default="")
    action = pw.CharField(max_length=60)
    object_type = pw.CharField(max_length=40, default="")
    object_id = pw.CharField(max_length=40, default="")
    detail = pw.TextField(default="")
    ip = pw.CharField(max_length=64, default="")
    created_at = pw.DateTimeField(default=utcnow, index=True)

    class Meta:
        # Admin → Audit log lists newest first a page at a time (id below the last one shown); each
        # filter walks its own index in that order instead of sorting every matching row.
        indexes = (
            (("action", "id"), False),
            (("actor_email", "id"), False),
            (("object_type", "object_id", "id"), False),
            (("ip", "id"), False),
        )

    def save(self, *args, **kwargs):
        if self._pk is not None:
            raise AuditLogIsAppendOnly("An audit row cannot be changed once written.")
        return super().save(*args, **kwargs)

    def delete_instance(self, *args, **kwargs):
        raise AuditLogIsAppendOnly("Audit rows cannot be deleted.")

    @classmethod
    def update(cls, *args, **kwargs):
        raise AuditLogIsAppendOnly("Audit rows cannot be changed.")

    @classmethod
    def delete(cls):
        raise AuditLogIsAppendOnly("Audit rows cannot be deleted.")

    @classmethod
    def replace(cls, *args, **kwargs):
        raise AuditLogIsAppendOnly("Audit rows cannot be replaced.")

    @classmethod
    def replace_many(cls, *args, **kwargs):
        raise AuditLogIsAppendOnly("Audit rows cannot be replaced.")

    @classmethod
    def matching(cls, actor_email="", action="", object_type="", object_id="", since=None, until=None, ip=""):
        """Rows that pass every filter given (empty ones are ignored); since/until are datetimes,
        until exclusive."""
        query = cls.select()
        if actor_email:
            query = query.where(cls.actor_email == actor_email)
        if action:
            query = query.where(cls.action == action)
        if object_type:
            query = query.where(cls.object_type == object_type)
        if object_id:
            query = query.where(cls.object_id == object_id)
        if since is not None:
            query = query.where(cls.created_at >= since)
        if until is not None:
            query = query.where(cls.created_at < until)
        if ip:
            query = query.where(cls.ip == ip)
        return query

    @classmethod
    def newest_first(cls, query, before: int | None, limit: int) -> list:
        """One page of query, newest first, of rows older than the row `before` (keyset paging:
        the page costs the same however far back it is)."""
        if before is not None:
            query = query.where(cls.id < before)
        return list(query.order_by(cls.id.desc()).limit(limit))

    @classmethod
    def newest_id(cls) -> int:
        return cls.select(pw.fn.MAX(cls.id)).scalar() or 0

    @classmethod
    def distinct_values(cls, field) -> list[str]:
        """Every value one of the indexed text columns holds (action, object_type), in order. It hops
        from value to value along the column's index, one lookup each, instead of reading every row.
        `field` is one of this model's fields, never user input."""
        column = field.column_name
        table = cls._meta.table_name
        sql = (f'WITH RECURSIVE found(value) AS ('
               f'SELECT MIN("{column}") FROM "{table}" '
               f'UNION ALL SELECT (SELECT MIN("{column}") FROM "{table}" WHERE "{column}" > found.value) '
               f'FROM found WHERE found.value IS NOT NULL) '
               f'SELECT value FROM found WHERE value IS NOT NULL')
        return [row[0] for row in cls._meta.database.execute_sql(sql).fetchall()]

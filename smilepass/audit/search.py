"""Admin → Audit log: the filter (a GET form, so a filtered view is a link that can be shared and
works without JavaScript) and the CSV export of what it matches."""
import csv
import datetime as dt
import io
import ipaddress

from flask_babel import gettext, lazy_gettext
from wtforms import DateField, Form, SelectField, StringField
from wtforms.validators import Length, Optional, Regexp, ValidationError

from .. import audit
from ..models import AuditLog, normalize_email
from ..spreadsheet import spreadsheet_safe

# The query-string keys of the filter, in the order links are built.
FILTER_KEYS = ("actor", "action", "object_type", "object_id", "since", "until", "ip")
EXPORT_CHUNK = 500
CSV_HEADER = ["id", "time_utc", "actor_email", "action", "object_type", "object_id", "detail", "client_address"]


class AuditFilterForm(Form):
    actor = StringField(lazy_gettext("Who (email)"), validators=[Optional(), Length(max=254)],
                        filters=[normalize_email])
    action = SelectField(lazy_gettext("Action"), validators=[Optional()])
    object_type = SelectField(lazy_gettext("Object"), validators=[Optional()])
    object_id = StringField(lazy_gettext("Object id"), filters=[lambda v: (v or "").strip()],
                            validators=[Optional(), Length(max=40),
                                        Regexp(r"^\d+$", message=lazy_gettext("An object id is a number, e.g. 12."))])
    since = DateField(lazy_gettext("From (UTC)"), validators=[Optional()])
    until = DateField(lazy_gettext("To (UTC)"), validators=[Optional()])
    ip = StringField(lazy_gettext("Client address"), filters=[lambda v: (v or "").strip()],
                     validators=[Optional(), Length(max=64)])

    def __init__(self, formdata):
        super().__init__(formdata)
        self.action.choices = [("", gettext("Any action"))] + audit.action_choices()
        self.object_type.choices = [("", gettext("Any object"))] + audit.object_type_choices()

    def validate_since(self, field):
        if self.since.data and self.until.data and self.since.data > self.until.data:
            raise ValidationError(gettext("The start date is after the end date."))

    def validate_ip(self, field):
        try:
            field.data = str(ipaddress.ip_address(field.data))
        except ValueError:
            raise ValidationError(gettext("Give one full address, e.g. 192.0.2.10 or 2001:db8::1.")) from None

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        for field in (self.since, self.until):
            if field.errors and field.data is None:  # WTForms' own message says less
                field.errors = [gettext("Give a date as YYYY-MM-DD.")]
        return ok

    def criteria(self) -> dict:
        """Keyword arguments for AuditLog.matching (the form must have validated)."""
        def midnight(day):
            return dt.datetime.combine(day, dt.time()) if day else None

        return {
            "actor_email": self.actor.data or "",
            "action": self.action.data or "",
            "object_type": self.object_type.data or "",
            "object_id": self.object_id.data or "",
            "since": midnight(self.since.data),
            # The whole last day: up to (not including) midnight after it.
            "until": midnight(self.until.data + dt.timedelta(days=1) if self.until.data else None),
            "ip": self.ip.data or "",
        }

    def query_args(self) -> dict:
        """The filter as query-string arguments (empty ones left out), for the page's links."""
        values = {"actor": self.actor.data, "action": self.action.data, "object_type": self.object_type.data,
                  "object_id": self.object_id.data, "ip": self.ip.data,
                  "since": self.since.data.isoformat() if self.since.data else "",
                  "until": self.until.data.isoformat() if self.until.data else ""}
        return {key: values[key] for key in FILTER_KEYS if values[key]}

    def summary(self) -> str:
        """The filter in a few words, for the export's own audit row."""
        args = self.query_args()
        return ", ".join(f"{key}={value}" for key, value in args.items()) or "no filter"


def csv_lines(criteria: dict, upto: int):
    """The matching rows with ids up to `upto`, newest first, as CSV text a chunk at a time (the
    export never holds the whole trail in memory). Starts with a byte-order mark, so spreadsheet
    programs read it as UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    yield "\ufeff" + buffer.getvalue()
    query = AuditLog.matching(**criteria)
    before = upto + 1
    while True:
        rows = AuditLog.newest_first(query, before, EXPORT_CHUNK)
        buffer.seek(0)
        buffer.truncate()
        for row in rows:
            writer.writerow([row.id, row.created_at.strftime("%Y-%m-%d %H:%M:%S")] + [
                spreadsheet_safe(v) for v in (row.actor_email, row.action, row.object_type, row.object_id,
                                              row.detail, row.ip)])
        if rows:
            yield buffer.getvalue()
        if len(rows) < EXPORT_CHUNK:
            return
        before = rows[-1].id

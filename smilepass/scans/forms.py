"""The scan panel's forms: a scan uploaded on a case page, and staff re-running a repair."""
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import DecimalField, SelectMultipleField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange

from ..i18n import lazy_gettext
from ..models import RESCAN_REASONS


class CaseScanForm(FlaskForm):
    scan = FileField(lazy_gettext("Intraoral scan (STL or PLY)"),
                     validators=[FileRequired(lazy_gettext("Choose an STL or PLY file to upload."))])


class RerunForm(FlaskForm):
    """Staff: repair a scan again with other settings (percent of the scan's size)."""
    hole_percent = DecimalField(lazy_gettext("Fill holes up to (percent of the scan's boundary)"), places=1, default=5,
                                validators=[NumberRange(0, 50)])
    debris_percent = DecimalField(
        lazy_gettext("Remove pieces smaller than (percent of the main surface)"),
        places=1,
        default=1,
        validators=[NumberRange(0, 50)],
    )


NOTE_MAX = 1000


class RescanForm(FlaskForm):
    """Staff: ask the clinician to scan again, for one or more coded reasons and a note (rescans.py).
    The template draws the checkboxes itself, so that each scan panel's ids are its own."""
    reasons = SelectMultipleField(lazy_gettext("Reasons"),
                                  choices=[SelectChoice(code, label) for code, label in RESCAN_REASONS.items()],
                                  validators=[InputRequired(lazy_gettext("Choose at least one reason."))])
    note = TextAreaField(lazy_gettext("Note for the clinician (optional)"), validators=[
        Length(max=NOTE_MAX, message=lazy_gettext("The note can be at most %(count)s characters long.",
                                                  count=NOTE_MAX))])

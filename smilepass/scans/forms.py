"""The scan panel's forms: a scan uploaded on a case page, and staff re-running a repair."""
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import DecimalField
from wtforms.validators import NumberRange

from ..i18n import lazy_gettext


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

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, DecimalField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, ValidationError

from ..models import CATEGORIES, DEFAULT_CATEGORY, Priority

TITLE_MAX = 120
DESCRIPTION_MAX = 500
REPLY_MAX = 5000


def _one_line(form, field):
    if field.data and ("\n" in field.data or "\r" in field.data):
        raise ValidationError("The title must be one line.")


class TicketForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired("Give the request a title."), Length(max=TITLE_MAX), _one_line])
    description = TextAreaField(
        "Description",
        validators=[DataRequired("Describe what you were doing and what happened."), Length(max=DESCRIPTION_MAX)],
    )
    priority = SelectField(
        "Priority",
        choices=[SelectChoice(p.value, p.label) for p in Priority],
        coerce=int,
        default=Priority.LOW.value,
    )
    category = SelectField("Support Category", choices=[SelectChoice(c) for c in CATEGORIES], default=DEFAULT_CATEGORY)
    image = FileField("Upload Image")
    scan = FileField("Intraoral scan (STL or PLY)")


class ReplyForm(FlaskForm):
    body = TextAreaField("Reply", validators=[DataRequired("Write a reply first."), Length(max=REPLY_MAX)])
    internal = BooleanField("Internal note (staff only)")
    scan = FileField("Attach a scan (STL or PLY)")


class StatusForm(FlaskForm):
    pass


class RerunForm(FlaskForm):
    """Staff: repair a scan again with other settings (percent of the scan's size)."""
    hole_percent = DecimalField("Fill holes up to (% of the scan's boundary)", places=1, default=5,
                                validators=[NumberRange(0, 50)])
    debris_percent = DecimalField("Remove pieces smaller than (% of the main surface)", places=1, default=1,
                                  validators=[NumberRange(0, 50)])

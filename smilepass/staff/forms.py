from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError
from flask_babel import gettext

from .canned import BODY_MAX, TITLE_MAX
from ..i18n import lazy_gettext


def _one_line(form, field):
    if field.data and ("\n" in field.data or "\r" in field.data):
        raise ValidationError(gettext("The title must be one line."))


class CannedForm(FlaskForm):
    title = StringField(lazy_gettext("Title"), validators=[DataRequired(lazy_gettext("Give the canned reply a title.")),
                                             Length(max=TITLE_MAX), _one_line])
    body = TextAreaField(lazy_gettext("Text"), validators=[DataRequired(lazy_gettext("Write the reply's text.")),
                                                         Length(max=BODY_MAX)])


class PostForm(FlaskForm):
    """A form with nothing but its CSRF token (buttons that post)."""

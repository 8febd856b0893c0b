from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from ..i18n import lazy_gettext
from ..validators import one_line
from .canned import BODY_MAX, TITLE_MAX


class CannedForm(FlaskForm):
    title = StringField(lazy_gettext("Title"), validators=[DataRequired(lazy_gettext("Give the canned reply a title.")),
                                             Length(max=TITLE_MAX), one_line])
    body = TextAreaField(lazy_gettext("Text"), validators=[DataRequired(lazy_gettext("Write the reply's text.")),
                                                         Length(max=BODY_MAX)])


class PostForm(FlaskForm):
    """A form with nothing but its CSRF token (buttons that post)."""

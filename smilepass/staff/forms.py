from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError

from .canned import BODY_MAX, TITLE_MAX


def _one_line(form, field):
    if field.data and ("\n" in field.data or "\r" in field.data):
        raise ValidationError("The title must be one line.")


class CannedForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired("Give the canned reply a title."),
                                             Length(max=TITLE_MAX), _one_line])
    body = TextAreaField("Text", validators=[DataRequired("Write the reply's text."), Length(max=BODY_MAX)])


class PostForm(FlaskForm):
    """A form with nothing but its CSRF token (buttons that post)."""

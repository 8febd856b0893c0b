"""Forms of the second step and of enrolment."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Length

from ..i18n import lazy_gettext


class CodeForm(FlaskForm):
    code = StringField(lazy_gettext("Code from your authenticator app, or a recovery code"),
                       validators=[DataRequired(), Length(max=40)])
    trust = BooleanField(lazy_gettext("Trust this browser for 30 days"))


class EnrolForm(FlaskForm):
    code = StringField(lazy_gettext("Code from the app"), validators=[DataRequired(), Length(max=40)])


class PlainForm(FlaskForm):
    """CSRF only: remove, regenerate, reset."""

import re

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp, ValidationError

from ..i18n import lazy_gettext
from .security import PASSWORD_MAX, password_problem

# Deliberately loose: clinics run internal domains (.local, .lan) that strict validators refuse.
looks_like_email = Regexp(r"^[^@\s]+@[^@\s]+$", re.UNICODE, lazy_gettext("Enter an email address."))


class LoginForm(FlaskForm):
    email = EmailField(lazy_gettext("Email"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(lazy_gettext("Password"), validators=[DataRequired(), Length(max=PASSWORD_MAX)])


class ForgotForm(FlaskForm):
    email = EmailField(lazy_gettext("Email"), validators=[DataRequired(), looks_like_email, Length(max=254)])


class NewPasswordForm(FlaskForm):
    """Also used by the reset page; the account form adds the current password."""

    password = PasswordField(lazy_gettext("New password"), validators=[DataRequired()])
    confirm = PasswordField(lazy_gettext("Repeat new password"),
                            validators=[DataRequired(), EqualTo("password", lazy_gettext("The passwords differ."))])

    def __init__(self, *args, email: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self._email = email

    def validate_password(self, field):
        problem = password_problem(field.data or "", self._email)
        if problem:
            raise ValidationError(problem)


class ChangePasswordForm(NewPasswordForm):
    current = PasswordField(lazy_gettext("Current password"), validators=[DataRequired()])

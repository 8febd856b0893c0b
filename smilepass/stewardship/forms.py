from flask_babel import lazy_gettext
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length


class ReauthForm(FlaskForm):
    # A fresh password entry: a session left open on a shared clinic computer is not enough.
    password = PasswordField(lazy_gettext("Your password"), validators=[
        DataRequired(lazy_gettext("Enter your password to continue.")), Length(max=128)])


class EraseForm(ReauthForm):
    confirm_number = StringField(lazy_gettext("Type the case number to confirm"), validators=[
        DataRequired(lazy_gettext("Type the case number to confirm.")), Length(max=40)])

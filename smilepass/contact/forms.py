from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from ..auth.forms import looks_like_email
from ..i18n import lazy_gettext
from .urgent import MESSAGE_MAX, TOPICS


class ContactForm(FlaskForm):
    name = StringField(
        lazy_gettext("Your name"), validators=[DataRequired(lazy_gettext("Tell us your name.")), Length(max=120)]
    )
    email = EmailField(lazy_gettext("Email"), validators=[DataRequired(lazy_gettext("Give an address we can answer.")),
                                                          looks_like_email,
                                            Length(max=254)])
    topic = SelectField(
        lazy_gettext("Topic"),
        choices=[SelectChoice("", lazy_gettext("Choose a topic"))] + [SelectChoice(*t) for t in TOPICS],
        validators=[DataRequired(lazy_gettext("Choose what this is about."))],
    )
    message = TextAreaField(
        lazy_gettext("Message"), validators=[DataRequired(lazy_gettext("Say what happened.")), Length(max=MESSAGE_MAX)]
    )
    # A honeypot: hidden from people, filled in by form-spamming robots.
    website = StringField(lazy_gettext("Leave this empty"))


class HandledForm(FlaskForm):
    pass


class AnswerForm(FlaskForm):
    """A supervisor's answer to a Contact us message, mailed to the sender."""
    body = TextAreaField(lazy_gettext("Your answer"), validators=[DataRequired(lazy_gettext("Write the answer first.")),
                                                                 Length(max=MESSAGE_MAX)])
    handled = BooleanField(lazy_gettext("Mark the message handled"), default=True)

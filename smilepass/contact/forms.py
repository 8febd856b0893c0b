from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from ..auth.forms import looks_like_email
from .urgent import MESSAGE_MAX, TOPICS


class ContactForm(FlaskForm):
    name = StringField("Your name", validators=[DataRequired("Tell us your name."), Length(max=120)])
    email = EmailField("Email", validators=[DataRequired("Give an address we can answer."), looks_like_email,
                                            Length(max=254)])
    topic = SelectField("Topic", choices=[SelectChoice("", "Choose a topic")] + [SelectChoice(*t) for t in TOPICS],
                        validators=[DataRequired("Choose what this is about.")])
    message = TextAreaField("Message", validators=[DataRequired("Say what happened."), Length(max=MESSAGE_MAX)])
    # A honeypot: hidden from people, filled in by form-spamming robots.
    website = StringField("Leave this empty")


class HandledForm(FlaskForm):
    pass

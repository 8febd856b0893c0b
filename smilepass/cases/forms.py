from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp

from .models import ARCHES, PALETTE
from .shipments import CARRIER_MAX, PHASES_MAX, TRACKING_MAX


class CaseForm(FlaskForm):
    case_number = StringField("Case number", validators=[
        DataRequired("Give the case number."), Length(max=40),
        Regexp(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$", message="Letters, digits and . _ / - only.")])
    patient_name = StringField("Patient name", validators=[DataRequired("Give the patient's name."), Length(max=120)])
    patient_dob = DateField("Date of birth", validators=[DataRequired("Give the date of birth (YYYY-MM-DD).")])
    clinic_patient_id = StringField("Clinic patient ID", validators=[Optional(), Length(max=60)])
    treatment_plan = StringField("Treatment plan", validators=[Optional(), Length(max=200)])
    arches = SelectField("Arches", choices=[SelectChoice(v, label) for v, label in ARCHES], default="both")
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=5000)])
    # Staff only: the treating clinician (choices are filled in by the view).
    clinician = SelectField("Treating clinician", coerce=int, validate_choice=False)


class ShipmentForm(FlaskForm):
    phases = StringField("Phases", validators=[DataRequired("Say which phases ship together."),
                                               Length(max=PHASES_MAX)])
    target_ship_date = DateField("Target shipping date", validators=[DataRequired("Give the target date.")])


class TransitForm(FlaskForm):
    carrier = StringField("Carrier", validators=[Optional(), Length(max=CARRIER_MAX)])
    tracking_number = StringField("Tracking number", validators=[Optional(), Length(max=TRACKING_MAX)])
    carrier_eta = DateField("Carrier's delivery date", validators=[Optional()])


class ReopenForm(FlaskForm):
    reason = TextAreaField("Reason", validators=[DataRequired("Write why."), Length(max=1000)])


class LabelForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired("Name the label."), Length(max=40)])
    color = SelectField("Colour", choices=[SelectChoice(c, c.capitalize()) for c in PALETTE], default=PALETTE[0])


class PlainForm(FlaskForm):
    """Buttons without fields (CSRF only)."""


class ImportForm(FlaskForm):
    file = FileField("CSV file")

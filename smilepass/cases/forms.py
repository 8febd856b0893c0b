from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp

from ..i18n import lazy_gettext
from ..models import ARCHES, COLOUR_LABELS, PALETTE
from .shipments import CARRIER_MAX, PHASES_MAX, TRACKING_MAX


class CaseForm(FlaskForm):
    case_number = StringField(lazy_gettext("Case number"), validators=[
        DataRequired(lazy_gettext("Give the case number.")), Length(max=40),
        Regexp(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$", message=lazy_gettext("Letters, digits and . _ / - only."))])
    patient_name = StringField(lazy_gettext("Patient name"),
                               validators=[DataRequired(lazy_gettext("Give the patient's name.")), Length(max=120)])
    patient_dob = DateField(lazy_gettext("Date of birth"),
                            validators=[DataRequired(lazy_gettext("Give the date of birth (YYYY-MM-DD)."))])
    clinic_patient_id = StringField(lazy_gettext("Clinic patient ID"), validators=[Optional(), Length(max=60)])
    treatment_plan = StringField(lazy_gettext("Treatment plan"), validators=[Optional(), Length(max=200)])
    arches = SelectField(
        lazy_gettext("Arches"), choices=[SelectChoice(v, label) for v, label in ARCHES], default="both"
    )
    notes = TextAreaField(lazy_gettext("Notes"), validators=[Optional(), Length(max=5000)])
    # Staff only: the treating clinician (choices are filled in by the view).
    clinician = SelectField(lazy_gettext("Treating clinician"), coerce=int, validate_choice=False)


class ShipmentForm(FlaskForm):
    phases = StringField(
        lazy_gettext("Phases"),
        validators=[DataRequired(lazy_gettext("Say which phases ship together.")), Length(max=PHASES_MAX)],
    )
    target_ship_date = DateField(lazy_gettext("Target shipping date"),
                                 validators=[DataRequired(lazy_gettext("Give the target date."))])


class TransitForm(FlaskForm):
    carrier = StringField(lazy_gettext("Carrier"), validators=[Optional(), Length(max=CARRIER_MAX)])
    tracking_number = StringField(lazy_gettext("Tracking number"), validators=[Optional(), Length(max=TRACKING_MAX)])
    carrier_eta = DateField(lazy_gettext("Carrier's delivery date"), validators=[Optional()])


class CarrierDateForm(FlaskForm):
    """The carrier's date for a shipment already in transit (often known only after pick-up)."""
    carrier_eta = DateField(lazy_gettext("Carrier's delivery date"), validators=[Optional()])


class ReopenForm(FlaskForm):
    reason = TextAreaField(
        lazy_gettext("Reason"), validators=[DataRequired(lazy_gettext("Write why.")), Length(max=1000)]
    )


class LabelForm(FlaskForm):
    name = StringField(lazy_gettext("Name"), validators=[DataRequired(lazy_gettext("Name the label.")), Length(max=40)])
    color = SelectField(
        lazy_gettext("Colour"), choices=[SelectChoice(c, COLOUR_LABELS[c]) for c in PALETTE], default=PALETTE[0]
    )


class PlainForm(FlaskForm):
    """Buttons without fields (CSRF only)."""


class ImportForm(FlaskForm):
    file = FileField(lazy_gettext("CSV file"))

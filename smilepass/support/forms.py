from flask_babel import gettext
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, DateField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from ..i18n import lazy_gettext
from ..models import CATEGORIES, DEFAULT_CATEGORY, PRIORITY_LABELS, RESOLUTIONS, CaseDetails, Priority
from ..service.sla import clinic_today
from ..validators import one_line
from . import teeth as tooth_numbers

TITLE_MAX = 120
DESCRIPTION_MAX = 500
TRIED_MAX = 500
REPLY_MAX = 5000
CASE_NUMBER_MAX = 40
TEETH_TEXT_MAX = 200
TRACKING_MAX = CaseDetails.tracking_number.max_length
STEP_MIN, STEP_MAX = 1, 100


def _typed(field) -> bool:
    if field.raw_data:
        return str(field.raw_data[0]).strip() != ""
    return field.data not in (None, "")


class TicketForm(FlaskForm):
    title = StringField(lazy_gettext("Title"), validators=[DataRequired(lazy_gettext("Give the request a title.")),
                                                        Length(max=TITLE_MAX), one_line])
    description = TextAreaField(
        lazy_gettext("Description"),
        validators=[DataRequired(lazy_gettext("Describe what you were doing and what happened.")),
                    Length(max=DESCRIPTION_MAX)],
    )
    # Optional: a request without it is still filed, and the confirmation asks for it (good tickets).
    tried = TextAreaField(lazy_gettext("What have you tried?"), validators=[Optional(), Length(max=TRIED_MAX)])
    priority = SelectField(
        lazy_gettext("Priority"),
        choices=[SelectChoice(p.value, PRIORITY_LABELS[p]) for p in Priority],
        coerce=int,
        default=Priority.LOW.value,
    )
    category = SelectField(lazy_gettext("Support Category"), choices=[SelectChoice(c) for c in CATEGORIES],
                           default=DEFAULT_CATEGORY)
    image = FileField(lazy_gettext("Upload Image"))
    scan = FileField(lazy_gettext("Intraoral scan (STL or PLY)"))
    # The case the request is about, typed as its number (the view resolves it among the cases
    # this user may see), and the structured details that only make sense with a case.
    case_number = StringField(lazy_gettext("Case"), validators=[Optional(), Length(max=CASE_NUMBER_MAX)])
    teeth = StringField(lazy_gettext("Tooth numbers"), validators=[Optional(), Length(max=TEETH_TEXT_MAX)])
    # Which notation the tooth numbers are typed in (checked when there are tooth numbers to read).
    notation = SelectField(lazy_gettext("Notation"), choices=[SelectChoice(key, tooth_numbers.NOTATION_LABELS[key])
                                                for key in tooth_numbers.NOTATIONS],
                           default=tooth_numbers.FDI, validate_choice=False)
    last_aligner_delivered = DateField(lazy_gettext("Last aligner delivered"), validators=[Optional()])
    aligner_step = IntegerField(lazy_gettext("Aligner step"), validators=[
        Optional(), NumberRange(STEP_MIN, STEP_MAX, lazy_gettext("Enter a step from %(low)s to %(high)s.", low=STEP_MIN,
                                                                 high=STEP_MAX))])
    tracking_number = StringField(lazy_gettext("Tracking number"), validators=[Optional(), Length(max=TRACKING_MAX)])
    preferred_resolution = SelectField(lazy_gettext("Preferred resolution"), default="",
                                       choices=[SelectChoice("", lazy_gettext("No preference"))]
                                       + [SelectChoice(key, label) for key, label in RESOLUTIONS])

    DETAIL_FIELDS = ("teeth", "last_aligner_delivered", "aligner_step", "tracking_number", "preferred_resolution")

    def validate_teeth(self, field):
        try:
            self.teeth_stored = tooth_numbers.canonical(field.data or "", self.notation.data)
        except tooth_numbers.TeethRefused as exc:
            raise ValidationError(str(exc)) from None

    def validate_last_aligner_delivered(self, field):
        if field.data and field.data > clinic_today():
            raise ValidationError(gettext("The delivery date cannot be in the future."))

    def has_details(self) -> bool:
        """Whether anything was typed into the structured case fields (valid or not)."""
        return any(_typed(self[name]) for name in self.DETAIL_FIELDS)

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        if self.has_details() and not (self.case_number.data or "").strip():
            # Never drop what the clinician typed: ask which case it belongs to.
            self.case_number.errors = list(self.case_number.errors) + [
                gettext("Enter the case these details are about.")
            ]
            valid = False
        return valid

    def case_details(self) -> dict:
        """The structured fields as CaseDetails columns; empty when nothing was filled."""
        if not self.has_details():
            return {}
        return {
            "teeth": getattr(self, "teeth_stored", ""),
            "last_aligner_delivered": self.last_aligner_delivered.data,
            "aligner_step": self.aligner_step.data,
            "tracking_number": (self.tracking_number.data or "").strip(),
            "preferred_resolution": self.preferred_resolution.data or "",
        }


class ReplyForm(FlaskForm):
    body = TextAreaField(lazy_gettext("Reply"), validators=[DataRequired(lazy_gettext("Write a reply first.")),
                                                          Length(max=REPLY_MAX)])
    internal = BooleanField(lazy_gettext("Internal note (staff only)"))
    scan = FileField(lazy_gettext("Attach a scan (STL or PLY)"))
    # Checked and re-encoded like the New Request's screenshot (scans.staging → images.store_image).
    image = FileField(lazy_gettext("Attach a screenshot"))


class StatusForm(FlaskForm):
    pass

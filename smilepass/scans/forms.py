"""The scan panel's forms: a scan uploaded on a case page, staff re-running a repair, and a pin on the scan."""
import math

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, DecimalField, HiddenField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, ValidationError

from ..i18n import lazy_gettext
from ..models import RESCAN_REASONS


class CaseScanForm(FlaskForm):
    scan = FileField(lazy_gettext("Intraoral scan (STL or PLY)"),
                     validators=[FileRequired(lazy_gettext("Choose an STL or PLY file to upload."))])


class RerunForm(FlaskForm):
    """Staff: repair a scan again with other settings (percent of the scan's size)."""
    hole_percent = DecimalField(lazy_gettext("Fill holes up to (percent of the scan's boundary)"), places=1, default=5,
                                validators=[NumberRange(0, 50)])
    debris_percent = DecimalField(
        lazy_gettext("Remove pieces smaller than (percent of the main surface)"),
        places=1,
        default=1,
        validators=[NumberRange(0, 50)],
    )


NOTE_MAX = 1000


class RescanForm(FlaskForm):
    """Staff: ask the clinician to scan again, for one or more coded reasons and a note (rescans.py).
    The template draws the checkboxes itself, so that each scan panel's ids are its own."""
    reasons = SelectMultipleField(lazy_gettext("Reasons"),
                                  choices=[SelectChoice(code, label) for code, label in RESCAN_REASONS.items()],
                                  validators=[InputRequired(lazy_gettext("Choose at least one reason."))])
    note = TextAreaField(lazy_gettext("Note for the clinician (optional)"), validators=[
        Length(max=NOTE_MAX, message=lazy_gettext("The note can be at most %(count)s characters long.",
                                                  count=NOTE_MAX))])
    # An optional pin (one per request: ScanPin.message is unique). The viewer fills the hidden fields and
    # shows the box once staff place a pin; without JS the box stays hidden and the request has no pin.
    pin = BooleanField(lazy_gettext("Add the pin placed in the 3D view"))
    pin_x = HiddenField()
    pin_y = HiddenField()
    pin_z = HiddenField()
    pin_camera_x = HiddenField()
    pin_camera_y = HiddenField()
    pin_camera_z = HiddenField()
    pin_target_x = HiddenField()
    pin_target_y = HiddenField()
    pin_target_z = HiddenField()

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if self.pin.data and self.pin_point() is None:
            self.pin.errors = [*self.pin.errors, lazy_gettext("Place the pin on the scan in the 3D view first.")]
            return False
        return valid

    def pin_point(self):
        """The pin's point, or None when any coordinate is missing or not a finite number."""
        return _numbers(self[f"pin_{axis}"].data for axis in "xyz")

    def pin_camera(self):
        """(camera, target) as sent, or None (then the pin looks down at its point)."""
        values = _numbers(self["pin_" + name].data for name in CAMERA_FIELDS)
        return None if values is None else (values[:3], values[3:])


def _numbers(texts):
    """The texts as finite numbers, or None when any is not one."""
    values = []
    for text in texts:
        try:
            value = float((text or "").strip())
        except ValueError:
            return None
        if not math.isfinite(value):
            return None
        values.append(value)
    return tuple(values)


PIN_COMMENT_MAX = 2000
CAMERA_FIELDS = ("camera_x", "camera_y", "camera_z", "target_x", "target_y", "target_z")


def _finite(form, field):
    """A coordinate: a finite number (the viewer fills these; without JS they are typed)."""
    try:
        value = float((field.data or "").strip().replace(",", "."))
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValidationError(lazy_gettext("Enter a number in millimetres."))
    field.number = value


class PinForm(FlaskForm):
    """A comment on a point of a scan, posted into the ticket's thread. The viewer fills the point and the
    camera when the scan is clicked; without JS the point is typed and the camera is the default view."""

    x = StringField("x", validators=[_finite])
    y = StringField("y", validators=[_finite])
    z = StringField("z", validators=[_finite])
    camera_x = HiddenField()
    camera_y = HiddenField()
    camera_z = HiddenField()
    target_x = HiddenField()
    target_y = HiddenField()
    target_z = HiddenField()
    body = TextAreaField(lazy_gettext("Comment on this point"),
                         validators=[DataRequired(lazy_gettext("Write a comment first.")),
                                     Length(max=PIN_COMMENT_MAX)])
    internal = BooleanField(lazy_gettext("Internal note (staff only)"))

    def point(self) -> tuple[float, float, float]:
        return (self.x.number, self.y.number, self.z.number)

    def camera(self):
        """(camera, target) as sent, or None when any is missing or not a finite number."""
        values = _numbers(self[name].data for name in CAMERA_FIELDS)
        return None if values is None else (values[:3], values[3:])

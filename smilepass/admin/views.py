"""Admin screens: users, the mail outbox (where reset links wait when there is no SMTP server), clinic
settings and clinic holidays. The audit log is in audit_views.py."""
from flask import Blueprint, flash, render_template, request, url_for
from flask_babel import gettext, ngettext
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, ValidationError

from .. import audit, sessions, settings, twofa
from ..auth.forms import looks_like_email
from ..auth.guards import role_required, visible_or_404
from ..auth.security import password_problem
from ..auth.users import UserExists, create_user
from ..db import database
from ..htmx import see_other
from ..i18n import lazy_gettext
from ..models import ROLE_LABELS, Holiday, OutboxMail, Role, User
from ..service import escalation, sla
from ..support import drafts
from . import holidays as clinic_holidays

bp = Blueprint("admin", __name__, url_prefix="/admin")

PAGE = 50


class NewUserForm(FlaskForm):
    email = EmailField(lazy_gettext("Email"), validators=[DataRequired(), looks_like_email, Length(max=254)])
    name = StringField(lazy_gettext("Name"), validators=[Length(max=120)])
    role = SelectField(lazy_gettext("Role"), choices=[SelectChoice(r.value, ROLE_LABELS[r.value]) for r in Role])
    password = PasswordField(lazy_gettext("Temporary password"), validators=[DataRequired()])

    def validate_password(self, field):
        problem = password_problem(field.data or "", self.email.data or "")
        if problem:
            raise ValidationError(problem)


class ToggleForm(FlaskForm):
    pass


@bp.route("/users", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def users():
    form = NewUserForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = create_user(form.email.data, form.password.data, form.role.data, form.name.data, temporary=True)
        except UserExists as exc:
            form.email.errors.append(str(exc))
        else:
            audit.record("user_created", user, detail=f"role={user.role}")
            flash(gettext("%(email)s can now sign in.", email=user.email), "info")
            return see_other(url_for("admin.users"))
    if request.method == "POST":
        status = 422
    people = User.select().order_by(User.role, User.email)
    return render_template("admin/users.html", form=form, people=people, toggle=ToggleForm(),
                           escalation_roles=escalation.ROLE_CHOICES), status


@bp.post("/users/<int:user_id>/active")
@role_required(Role.ADMIN)
def toggle_active(user_id: int):
    ToggleForm().validate_on_submit()
    user = visible_or_404(User, user_id)
    if user.id == current_user.id:
        flash(gettext("You cannot deactivate your own account."), "error")
    else:
        user.is_active = not user.is_active
        user.save()
        if not user.is_active:
            sessions.end_all(user)
            drafts.forget_user(user)  # unreadable from now on, and they may name patients
        audit.record("user_activated" if user.is_active else "user_deactivated", user)
    return see_other(url_for("admin.users"))


@bp.post("/users/<int:user_id>/sign-out")
@role_required(Role.ADMIN)
def sign_out_everywhere(user_id: int):
    """End every session of a user (a lost laptop, a shared password): their copied cookies stop working."""
    ToggleForm().validate_on_submit()  # CSRF is checked app-wide
    user = visible_or_404(User, user_id)
    ended = sessions.end_all(user, keep_id=sessions.current_id() if user.id == current_user.id else None)
    twofa.forget_browsers(user)
    audit.record("sessions_ended", user, detail=f"count={ended}")
    flash(ngettext("%(email)s: %(num)d session signed out.", "%(email)s: %(num)d sessions signed out.", ended,
                   email=user.email), "info")
    return see_other(url_for("admin.users"))


@bp.post("/users/<int:user_id>/escalation-role")
@role_required(Role.ADMIN)
def set_escalation_role(user_id: int):
    ToggleForm().validate_on_submit()  # CSRF is checked app-wide
    user = visible_or_404(User, user_id)
    try:
        if escalation.set_role(user, request.form.get("escalation_role", ""), current_user._get_current_object()):
            label = dict(escalation.ROLE_CHOICES)[user.escalation_role]
            flash(gettext("%(email)s: escalation role is now %(role)s.", email=user.email, role=label), "info")
    except escalation.EscalationRefused as exc:
        flash(f"{user.email}: {exc}", "error")
    return see_other(url_for("admin.users"))


@bp.get("/outbox")
@role_required(Role.ADMIN)
def outbox():
    mails = OutboxMail.select().order_by(OutboxMail.id.desc()).limit(PAGE)
    return render_template("admin/outbox.html", mails=mails)


# Clinic settings -------------------------------------------------------------------------------

def _parsed_by(definition: settings.Definition):
    """A validator that checks the text exactly as the setting will read it back."""
    def check(form, field):
        try:
            definition.parse(field.data)
        except settings.SettingRefused as exc:
            raise ValidationError(str(exc)) from None
    return check


def _settings_form():
    """One field per entry of settings.DEFINITIONS: a select where the setting has choices."""
    class SettingsForm(FlaskForm):
        pass

    current = settings.get_all()
    for key, definition in settings.DEFINITIONS.items():
        if definition.choices:
            field = SelectField(definition.label, choices=[SelectChoice(v, label) for v, label in definition.choices],
                                default=current[key], validators=[_parsed_by(definition)], validate_choice=False)
        else:
            field = StringField(definition.label, default=str(current[key]), validators=[_parsed_by(definition)])
        setattr(SettingsForm, key, field)
    return SettingsForm()


@bp.route("/settings", methods=["GET", "POST"], endpoint="settings")
@role_required(Role.ADMIN)
def settings_page():
    form = _settings_form()
    if form.validate_on_submit():
        before = settings.get_all()
        actor = current_user._get_current_object()
        with database.atomic():  # all fields or none
            after = {key: settings.set_value(key, form[key].data, actor) for key in settings.DEFINITIONS}
        flash(gettext("Settings saved.") if after != before else gettext("Nothing changed."), "success")
        return see_other(url_for("admin.settings"))
    status = 422 if request.method == "POST" else 200
    return render_template("admin/settings.html", form=form, definitions=settings.DEFINITIONS), status



# Clinic holidays -------------------------------------------------------------------------------

class HolidayForm(FlaskForm):
    date = DateField(lazy_gettext("Date"), validators=[DataRequired(lazy_gettext("Give the date (YYYY-MM-DD)."))])
    name = StringField(lazy_gettext("Name"), validators=[DataRequired(lazy_gettext("Name the holiday.")),
                                                         Length(max=clinic_holidays.NAME_MAX)])


class HolidayListForm(FlaskForm):
    lines = TextAreaField(lazy_gettext("Several at once"),
                          validators=[DataRequired(lazy_gettext("Paste at least one line: YYYY-MM-DD Name."))])


def _holidays_page(form=None, list_form=None, status=200):
    today = sla.clinic_today()  # holidays are days in the clinic's calendar
    return render_template("admin/holidays.html", form=form or HolidayForm(formdata=None),
                           list_form=list_form or HolidayListForm(formdata=None),
                           upcoming=clinic_holidays.upcoming(today), past=clinic_holidays.past(today),
                           past_shown=clinic_holidays.PAST_SHOWN), status


@bp.get("/holidays")
@role_required(Role.ADMIN)
def holidays():
    return _holidays_page()


@bp.post("/holidays")
@role_required(Role.ADMIN)
def add_holiday():
    form = HolidayForm()
    if form.validate_on_submit():
        try:
            holiday = clinic_holidays.add_holiday(form.date.data, form.name.data, current_user._get_current_object())
        except clinic_holidays.HolidayRefused as exc:
            form.date.errors = [str(exc)]
        else:
            flash(
                gettext(
                    "%(date)s (%(name)s) is now a clinic holiday.", date=holiday.date.isoformat(), name=holiday.name
                ),
                "success",
            )
            return see_other(url_for("admin.holidays"))
    return _holidays_page(form=form, status=422)


@bp.post("/holidays/list")
@role_required(Role.ADMIN)
def add_holiday_list():
    list_form = HolidayListForm()
    if list_form.validate_on_submit():
        entries, errors = clinic_holidays.parse_list(list_form.lines.data)
        if not errors:
            try:
                added, skipped = clinic_holidays.add_many(entries, current_user._get_current_object())
            except clinic_holidays.HolidayRefused as exc:
                errors = [str(exc)]
            else:
                message = ngettext("Added %(num)d holiday.", "Added %(num)d holidays.", added)
                if skipped:
                    message += " " + gettext("Already holidays, left as they were: %(dates)s.",
                                             dates=", ".join(f"{d:%Y-%m-%d}" for d in skipped))
                flash(message, "success")
                return see_other(url_for("admin.holidays"))
        list_form.lines.errors = errors
    return _holidays_page(list_form=list_form, status=422)


@bp.post("/holidays/<int:holiday_id>/delete")
@role_required(Role.ADMIN)
def delete_holiday(holiday_id: int):
    ToggleForm().validate_on_submit()  # CSRF is checked app-wide
    holiday = visible_or_404(Holiday, holiday_id)
    clinic_holidays.delete_holiday(holiday, current_user._get_current_object())
    flash(
        gettext("%(date)s (%(name)s) is no longer a clinic holiday.", date=holiday.date.isoformat(), name=holiday.name),
        "info",
    )
    return see_other(url_for("admin.holidays"))

"""Admin → Clinics: the list with a New clinic form, and one clinic's page (name, tier, account
manager, members). Rules live in clinics.py."""
from flask import Blueprint, abort, flash, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from ..auth.forms import looks_like_email
from ..auth.guards import role_required, visible_or_404
from ..htmx import see_other
from ..i18n import lazy_gettext
from ..models import TIER_LABELS, Clinic, Role, Tier, User
from ..params import parse_int
from . import clinics
from .views import ToggleForm

bp = Blueprint("clinics", __name__, url_prefix="/admin")

LIST = "admin/clinics.html"
DETAIL = "admin/clinic.html"


class ClinicForm(FlaskForm):
    name = StringField(lazy_gettext("Name"), validators=[DataRequired(lazy_gettext("Name the clinic.")),
                                                       Length(max=clinics.NAME_MAX)])
    tier = SelectField(
        lazy_gettext("Tier"),
        choices=[SelectChoice(t.value, TIER_LABELS[t.value]) for t in Tier],
        coerce=int,
        default=Tier.STANDARD.value,
    )
    account_manager = SelectField(
        lazy_gettext("Account manager"), validate_choice=False,
        description=lazy_gettext("Required for Enterprise: new requests go to them, and so do escalations."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.account_manager.choices = [SelectChoice("", gettext("None"))] + [
            SelectChoice(str(user.id), f"{user.display_name} ({user.email})") for user in clinics.staff_choices()]

    def manager(self) -> User | None:
        user_id = parse_int(self.account_manager.data or "")
        return User.get_or_none(User.id == user_id) if user_id is not None else None


class MemberForm(FlaskForm):
    email = EmailField(
        lazy_gettext("Clinician's email"),
        validators=[DataRequired(lazy_gettext("Give the clinician's email.")), looks_like_email, Length(max=254)],
    )


def _actor():
    return current_user._get_current_object()


def _save(form: ClinicForm, clinic: Clinic | None):
    """Create or update; on refusal the message goes beside its field and None comes back."""
    try:
        if clinic is None:
            return clinics.create_clinic(form.name.data, form.tier.data, form.manager(), _actor())
        clinics.update_clinic(clinic, form.name.data, form.tier.data, form.manager(), _actor())
        return clinic
    except clinics.ClinicRefused as exc:
        form[exc.field].errors = list(form[exc.field].errors) + [str(exc)]
        return None


@bp.route("/clinics", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def clinic_list():
    form = ClinicForm()
    if form.validate_on_submit():
        clinic = _save(form, None)
        if clinic is not None:
            flash(gettext("Clinic %(name)s created. Add its clinicians here.", name=clinic.name), "success")
            return see_other(url_for("clinics.clinic", clinic_id=clinic.id))
    status = 422 if request.method == "POST" else 200
    return render_template(LIST, form=form, clinics=clinics.listing(), Tier=Tier), status


def _detail(clinic: Clinic, form=None, member_form=None, status=200):
    if form is None:
        form = ClinicForm(formdata=None, name=clinic.name, tier=clinic.tier,
                          account_manager=str(clinic.account_manager_id or ""))
    return render_template(DETAIL, clinic=clinic, form=form, member_form=member_form or MemberForm(formdata=None),
                           members=clinics.members(clinic), remove=ToggleForm(), Tier=Tier), status


@bp.get("/clinics/<int:clinic_id>")
@role_required(Role.ADMIN)
def clinic(clinic_id: int):
    return _detail(visible_or_404(Clinic, clinic_id))


@bp.post("/clinics/<int:clinic_id>")
@role_required(Role.ADMIN)
def update_clinic(clinic_id: int):
    clinic = visible_or_404(Clinic, clinic_id)
    form = ClinicForm()
    if form.validate_on_submit() and _save(form, clinic) is not None:
        flash(gettext("Clinic %(name)s saved.", name=clinic.name), "success")
        return see_other(url_for("clinics.clinic", clinic_id=clinic.id))
    return _detail(clinic, form=form, status=422)


@bp.post("/clinics/<int:clinic_id>/members")
@role_required(Role.ADMIN)
def add_clinic_member(clinic_id: int):
    clinic = visible_or_404(Clinic, clinic_id)
    form = MemberForm()
    if form.validate_on_submit():
        try:
            user = clinics.add_member(clinic, form.email.data, _actor())
        except clinics.ClinicRefused as exc:
            form.email.errors = [str(exc)]
        else:
            flash(gettext("%(email)s now belongs to %(clinic)s.", email=user.email, clinic=clinic.name), "success")
            return see_other(url_for("clinics.clinic", clinic_id=clinic.id))
    return _detail(clinic, member_form=form, status=422)


@bp.post("/clinics/<int:clinic_id>/members/<int:user_id>/remove")
@role_required(Role.ADMIN)
def remove_clinic_member(clinic_id: int, user_id: int):
    clinic = visible_or_404(Clinic, clinic_id)
    ToggleForm().validate_on_submit()  # CSRF is checked app-wide
    user = clinics.remove_member(clinic, visible_or_404(User, user_id).id, _actor())
    if user is None:
        abort(404)
    flash(gettext("%(email)s no longer belongs to %(clinic)s.", email=user.email, clinic=clinic.name), "info")
    return see_other(url_for("clinics.clinic", clinic_id=clinic.id))

"""Cases: the list, the case form, the case page (with its shipment trackers) and labels."""
import peewee as pw
from flask import Blueprint, abort, current_app, flash, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required
from wtforms.fields.choices import SelectChoice

from .. import audit
from ..auth.guards import STAFF, id_arg, require_role, visible_or_404
from ..db import database
from ..htmx import is_htmx, page_or_block, see_other
from ..models import PALETTE, Case, CaseLabel, Label, Role, Scan, Shipment, User, utcnow
from ..params import page_arg
from ..scans.forms import RerunForm
from ..search import index as search_index
from ..service import sla
from ..support.tickets import tickets_of_case
from .forms import CaseForm, LabelForm, PlainForm, ShipmentForm, TransitForm
from .listing import case_table, remembered_sort
from .lookup import acting_user, tracker
from .shipments import ShipmentRefused, create_shipment

bp = Blueprint("cases", __name__, url_prefix="/cases")

LIST = "cases/index.html"
FORM = "cases/form.html"
DETAIL = "cases/detail.html"
LABELS = "cases/labels.html"


# Case list -------------------------------------------------------------------------------------

def _table():
    user = acting_user()
    sort = remembered_sort(user, request.args.get("sort"))
    label = None
    label_id = id_arg(request.args.get("label"))
    if label_id is not None:
        label = Label.get_visible(label_id, user)
    return case_table(user, sort, request.args.get("state"), label, request.args.get("q", ""),
                      page_arg(), current_app.config["PAGE_SIZE"], url_for("cases.index"))


@bp.get("/")
@login_required
def index():
    # The label filter's choices are outside the table block: an htmx request does not need them.
    labels = [] if is_htmx() else list(Label.select().where(Label.owner == current_user.id).order_by(Label.name))
    return page_or_block(LIST, "case_table", table=_table(), labels=labels)


# Case form ------------------------------------------------------------------------------------

def _clinician_choices():
    clinicians = User.select(User.id, User.name, User.email).where(
        (User.role == Role.CLINICIAN.value) & User.is_active).order_by(User.name, User.email)
    return [SelectChoice(u.id, u.display_name) for u in clinicians]


def _prepare_form(form: CaseForm):
    if current_user.is_staff:
        form.clinician.choices = _clinician_choices()
    else:
        del form.clinician
    return form


def _save_case(form: CaseForm, case: Case | None):
    """Validate and save; returns the case, or None with errors on the form."""
    if not form.validate_on_submit():
        return None
    number = form.case_number.data.strip()
    taken = Case.select(Case.id).where(Case.case_number == number)
    if case is not None:
        taken = taken.where(Case.id != case.id)
    if taken.exists():
        form.case_number.errors = [gettext("This case number is already in use.")]
        return None
    if current_user.is_staff:
        owner = User.get_or_none((User.id == (form.clinician.data or 0)) & (User.role == Role.CLINICIAN.value))
        if owner is None:
            form.clinician.errors = [gettext("Choose the treating clinician.")]
            return None
        owner_id = owner.id
    else:
        owner_id = case.clinician_id if case is not None else current_user.id
    fields = dict(case_number=number, patient_name=form.patient_name.data.strip(),
                  patient_dob=form.patient_dob.data, clinic_patient_id=(form.clinic_patient_id.data or "").strip(),
                  treatment_plan=(form.treatment_plan.data or "").strip(), arches=form.arches.data,
                  notes=form.notes.data or "", clinician=owner_id)
    try:
        with database.atomic():
            if case is None:
                case = Case.create(**fields)
                audit.record("case_create", case)
            else:
                changed = _changed_fields(case, fields)
                for key, value in fields.items():
                    setattr(case, key, value)
                case.updated_at = utcnow()
                case.save()
                # Which fields changed, never their values (patient data).
                audit.record("case_update", case, "changed: " + (", ".join(changed) or "nothing"))
            search_index.reindex_cases([case.id])  # its number, also on the tickets about it
    except pw.IntegrityError:
        form.case_number.errors = [gettext("This case number is already in use.")]
        return None
    return case


def _changed_fields(case: Case, fields: dict) -> list[str]:
    current = {key: getattr(case, key) for key in fields if key != "clinician"}
    current["clinician"] = case.clinician_id
    return [key for key, value in fields.items() if current[key] != value]


@bp.get("/new")
@login_required
def new():
    form = _prepare_form(CaseForm(formdata=None))
    return render_template(FORM, form=form, case=None)


@bp.post("/new")
@login_required
def create():
    form = _prepare_form(CaseForm())
    case = _save_case(form, None)
    if case is None:
        return render_template(FORM, form=form, case=None), 422
    flash(gettext("Case %(number)s created.", number=case.case_number), "success")
    return see_other(url_for("cases.detail", case_id=case.id))


@bp.get("/<int:case_id>/edit")
@login_required
def edit(case_id: int):
    case = visible_or_404(Case, case_id)
    form = _prepare_form(CaseForm(formdata=None, obj=case))
    if current_user.is_staff:
        form.clinician.data = case.clinician_id
    return render_template(FORM, form=form, case=case)


@bp.post("/<int:case_id>/edit")
@login_required
def update(case_id: int):
    case = visible_or_404(Case, case_id)
    form = _prepare_form(CaseForm())
    saved = _save_case(form, case)
    if saved is None:
        return render_template(FORM, form=form, case=case), 422
    flash(gettext("Case %(number)s saved.", number=saved.case_number), "success")
    return see_other(url_for("cases.detail", case_id=case.id))


# Case detail, shipments ------------------------------------------------------------------------

def _detail_context(case: Case, shipment_form=None):
    schedule = sla.schedule()
    user = acting_user()
    own_labels = list(Label.select().where(Label.owner == user.id).order_by(Label.name))
    attached_ids = {cl.label_id for cl in CaseLabel.select(CaseLabel.label).join(Label).where(
        (CaseLabel.case == case.id) & (Label.owner == user.id))}
    return {
        "case": case,
        "trackers": [tracker(s, schedule) for s in case.shipments.order_by(Shipment.id.desc())],
        "shipment_form": shipment_form or ShipmentForm(formdata=None),
        "transit_form": TransitForm(formdata=None),
        "plain_form": PlainForm(formdata=None),
        "attached": [lab for lab in own_labels if lab.id in attached_ids],
        "attachable": [lab for lab in own_labels if lab.id not in attached_ids],
        "scans": Scan.of_case(case.id, acting_user()),
        "rerun_form": RerunForm(formdata=None),
        "new_link": None,
        "case_tickets": tickets_of_case(case.id, user),
    }


@bp.get("/<int:case_id>")
@login_required
def detail(case_id: int):
    case = visible_or_404(Case, case_id)
    audit.record("case_view", case)
    return render_template(DETAIL, **_detail_context(case))


@bp.post("/<int:case_id>/shipments")
@login_required
def add_shipment(case_id: int):
    case = visible_or_404(Case, case_id)
    require_role(*STAFF)
    form = ShipmentForm()
    if form.validate_on_submit():
        try:
            create_shipment(case, acting_user(), form.phases.data, form.target_ship_date.data)
        except ShipmentRefused as exc:
            form.phases.errors = [str(exc)]
        else:
            return see_other(url_for("cases.detail", case_id=case.id) + "#shipments")
    return render_template(DETAIL, **_detail_context(case, shipment_form=form)), 422


# Labels -------------------------------------------------------------------------------------

def _labels_page(form=None, status=200):
    labels = list(Label.select().where(Label.owner == current_user.id).order_by(Label.name))
    return render_template(LABELS, labels=labels, form=form or LabelForm(formdata=None),
                           plain_form=PlainForm(formdata=None), palette=PALETTE), status


def _save_label(form: LabelForm, label: Label | None):
    if not form.validate_on_submit():
        return False
    name = form.name.data.strip()
    clash = Label.select().where((Label.owner == current_user.id) & (Label.name == name))
    if label is not None:
        clash = clash.where(Label.id != label.id)
    if clash.exists():
        form.name.errors = [gettext("You already have a label with this name.")]
        return False
    with database.atomic():
        if label is None:
            label = Label.create(owner=current_user.id, name=name, color=form.color.data)
            audit.record("label_create", label)
        else:
            label.name, label.color = name, form.color.data
            label.save()
            audit.record("label_update", label)
    return True


@bp.get("/labels")
@login_required
def labels():
    return _labels_page()


@bp.post("/labels")
@login_required
def create_label():
    form = LabelForm()
    if _save_label(form, None):
        return see_other(url_for("cases.labels"))
    return _labels_page(form, 422)


@bp.post("/labels/<int:label_id>")
@login_required
def rename_label(label_id: int):
    label = visible_or_404(Label, label_id)
    form = LabelForm()
    if _save_label(form, label):
        return see_other(url_for("cases.labels"))
    return _labels_page(form, 422)


@bp.post("/labels/<int:label_id>/delete")
@login_required
def delete_label(label_id: int):
    label = visible_or_404(Label, label_id)
    PlainForm().validate_on_submit()
    with database.atomic():
        audit.record("label_delete", label)
        label.delete_instance(recursive=True)
    return see_other(url_for("cases.labels"))


@bp.post("/<int:case_id>/labels")
@login_required
def attach_label(case_id: int):
    case = visible_or_404(Case, case_id)
    PlainForm().validate_on_submit()
    label_id = id_arg(request.form.get("label"))
    label = Label.get_visible(label_id, current_user) if label_id is not None else None
    if label is None:
        abort(404)  # not one of the user's own labels, like a missing one
    with database.atomic():
        # Counted rows, not the new id: a label already on the case inserts nothing and is not audited.
        if CaseLabel.insert(case=case.id, label=label.id).on_conflict_ignore().as_rowcount().execute():
            audit.record("case_label_attach", case, f"label #{label.id}")
    return see_other(url_for("cases.detail", case_id=case.id) + "#labels")


@bp.post("/<int:case_id>/labels/<int:label_id>/detach")
@login_required
def detach_label(case_id: int, label_id: int):
    case = visible_or_404(Case, case_id)
    label = visible_or_404(Label, label_id)
    PlainForm().validate_on_submit()
    with database.atomic():
        if CaseLabel.delete().where((CaseLabel.case == case.id) & (CaseLabel.label == label.id)).execute():
            audit.record("case_label_detach", case, f"label #{label.id}")
    return see_other(url_for("cases.detail", case_id=case.id) + "#labels")

"""Cases (list, form, detail with shipment trackers), labels, the Shipments view and the CSV
import of tracking numbers."""
import io

import peewee as pw
import segno
from wtforms.fields.choices import SelectChoice
from flask import abort, current_app, flash, make_response, render_template, request, session, url_for
from flask_login import current_user, login_required

from .. import audit
from ..db import database
from ..htmx import is_htmx, page_or_block, see_other
from ..models import Role, User, utcnow
from . import bp, shipments_bp
from .forms import CaseForm, ImportForm, LabelForm, PlainForm, ReopenForm, ShipmentForm, TransitForm
from .listing import case_table, remembered_sort
from .models import PALETTE, Case, CaseLabel, Holiday, Label, PatientLink, Shipment, ShipmentState
from .shipments import (ShipmentRefused, active_condition, advance, create_link, create_shipment, estimate,
                        reopen, revoke_link, state_counts, visible_links)
from .tracking_import import ImportError_, apply_import, parse_import

LIST = "cases/index.html"
FORM = "cases/form.html"
DETAIL = "cases/detail.html"
SHIPMENT = "cases/shipment.html"
LABELS = "cases/labels.html"
SHIPMENTS = "cases/shipments.html"
IMPORT = "cases/import.html"


def _user() -> User:
    return current_user._get_current_object()


def _int_arg(name, default=None):
    value = request.args.get(name, "")
    return int(value) if value.isdigit() else default


def _case_or_404(case_id: int) -> Case:
    case = Case.get_visible(case_id, current_user)
    if case is None:
        abort(404)
    return case


def _shipment_or_404(shipment_id: int) -> Shipment:
    shipment = Shipment.get_visible(shipment_id, current_user)
    if shipment is None:
        abort(404)
    return shipment


def _staff_only():
    if not current_user.is_staff:
        abort(404)


# Case list -------------------------------------------------------------------------------------

def _table():
    user = _user()
    sort = remembered_sort(user, request.args.get("sort"))
    label = None
    label_id = _int_arg("label")
    if label_id is not None:
        label = Label.get_own(label_id, user)
    return case_table(user, sort, request.args.get("state"), label, request.args.get("q", ""),
                      _int_arg("page", 1), current_app.config["PAGE_SIZE"], url_for("cases.index"))


@bp.get("/")
@login_required
def index():
    labels = list(Label.select().where(Label.owner == current_user.id).order_by(Label.name))
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
        form.case_number.errors = ["This case number is already in use."]
        return None
    if current_user.is_staff:
        owner = User.get_or_none((User.id == (form.clinician.data or 0)) & (User.role == Role.CLINICIAN.value))
        if owner is None:
            form.clinician.errors = ["Choose the treating clinician."]
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
                audit.record("case_create", case, f"case {number}")
            else:
                for key, value in fields.items():
                    setattr(case, key, value)
                case.updated_at = utcnow()
                case.save()
                audit.record("case_update", case, f"case {number}")
    except pw.IntegrityError:
        form.case_number.errors = ["This case number is already in use."]
        return None
    return case


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
    return see_other(url_for("cases.detail", case_id=case.id))


@bp.get("/<int:case_id>/edit")
@login_required
def edit(case_id: int):
    case = _case_or_404(case_id)
    form = _prepare_form(CaseForm(formdata=None, obj=case))
    if current_user.is_staff:
        form.clinician.data = case.clinician_id
    return render_template(FORM, form=form, case=case)


@bp.post("/<int:case_id>/edit")
@login_required
def update(case_id: int):
    case = _case_or_404(case_id)
    form = _prepare_form(CaseForm())
    saved = _save_case(form, case)
    if saved is None:
        return render_template(FORM, form=form, case=case), 422
    flash(f"Case {saved.case_number} saved.", "success")
    return see_other(url_for("cases.detail", case_id=case.id))


# Case detail, shipments ------------------------------------------------------------------------

def _tracker(shipment: Shipment, holidays):
    kind, value = estimate(shipment, holidays)
    return {"shipment": shipment, "eta_kind": kind, "eta": value, "links": visible_links(shipment)}


def _detail_context(case: Case, shipment_form=None):
    holidays = Holiday.dates()
    user = _user()
    own_labels = list(Label.select().where(Label.owner == user.id).order_by(Label.name))
    attached_ids = {cl.label_id for cl in CaseLabel.select(CaseLabel.label).join(Label).where(
        (CaseLabel.case == case.id) & (Label.owner == user.id))}
    return {
        "case": case,
        "trackers": [_tracker(s, holidays) for s in case.shipments.order_by(Shipment.id.desc())],
        "shipment_form": shipment_form or ShipmentForm(formdata=None),
        "transit_form": TransitForm(formdata=None),
        "plain_form": PlainForm(formdata=None),
        "attached": [lab for lab in own_labels if lab.id in attached_ids],
        "attachable": [lab for lab in own_labels if lab.id not in attached_ids],
        "new_link": None,
    }


@bp.get("/<int:case_id>")
@login_required
def detail(case_id: int):
    case = _case_or_404(case_id)
    audit.record("case_view", case)
    return render_template(DETAIL, **_detail_context(case))


@bp.post("/<int:case_id>/shipments")
@login_required
def add_shipment(case_id: int):
    case = _case_or_404(case_id)
    _staff_only()
    form = ShipmentForm()
    if form.validate_on_submit():
        try:
            create_shipment(case, _user(), form.phases.data, form.target_ship_date.data)
        except ShipmentRefused as exc:
            form.phases.errors = [str(exc)]
        else:
            return see_other(url_for("cases.detail", case_id=case.id) + "#shipments")
    return render_template(DETAIL, **_detail_context(case, shipment_form=form)), 422


def _shipment_context(shipment: Shipment, error=None, transit_form=None, reopen_form=None, new_link=None):
    return {
        "t": _tracker(shipment, Holiday.dates()),
        "case": shipment.case,
        "error": error,
        "transit_form": transit_form or TransitForm(formdata=None),
        "reopen_form": reopen_form or ReopenForm(formdata=None),
        "plain_form": PlainForm(formdata=None),
        "new_link": new_link,
    }


def _shipment_response(shipment: Shipment, status=200, **extra):
    return page_or_block(SHIPMENT, "shipment", status=status, **_shipment_context(shipment, **extra))


def _after_shipment_change(shipment: Shipment):
    if is_htmx():
        return _shipment_response(shipment)
    return see_other(url_for("cases.shipment", shipment_id=shipment.id))


@bp.get("/shipments/<int:shipment_id>")
@login_required
def shipment(shipment_id: int):
    found = _shipment_or_404(shipment_id)
    new_link = None
    shown = session.pop("new_link", None)
    if shown and shown.get("shipment") == found.id:
        new_link = shown
    return _shipment_response(found, new_link=new_link)


@bp.post("/shipments/<int:shipment_id>/advance")
@login_required
def advance_shipment(shipment_id: int):
    found = _shipment_or_404(shipment_id)
    _staff_only()
    form = TransitForm()
    if not form.validate_on_submit():
        return _shipment_response(found, status=422, transit_form=form, error="Check the fields below.")
    try:
        advance(found, _user(), to_state=request.form.get("to") or None, carrier=form.carrier.data,
                tracking_number=form.tracking_number.data, carrier_eta=form.carrier_eta.data)
    except ShipmentRefused as exc:
        return _shipment_response(found, status=422, transit_form=form, error=str(exc))
    return _after_shipment_change(found)


@bp.post("/shipments/<int:shipment_id>/reopen")
@login_required
def reopen_shipment(shipment_id: int):
    found = _shipment_or_404(shipment_id)
    form = ReopenForm()
    if not current_user.is_admin:
        abort(403)
    if not form.validate_on_submit():
        return _shipment_response(found, status=422, reopen_form=form, error="Write why the shipment goes back.")
    try:
        reopen(found, _user(), form.reason.data)
    except ShipmentRefused as exc:
        return _shipment_response(found, status=422, reopen_form=form, error=str(exc))
    return _after_shipment_change(found)


# Patient links -------------------------------------------------------------------------------

def _link_or_404(link_id: int) -> PatientLink:
    link = PatientLink.get_or_none(PatientLink.id == link_id)
    if link is None or Shipment.get_visible(link.shipment_id, current_user) is None:
        abort(404)
    return link


@bp.post("/shipments/<int:shipment_id>/links")
@login_required
def create_patient_link(shipment_id: int):
    found = _shipment_or_404(shipment_id)
    PlainForm().validate_on_submit()  # CSRF is checked app-wide
    link, token = create_link(found, _user())
    new_link = {"shipment": found.id, "id": link.id, "url": url_for("patient.status", token=token, _external=True)}
    # The token is never stored on the server: the QR image route reads it from the signed session,
    # once.
    session["qr_token"] = {"id": link.id, "token": token}
    if is_htmx():
        return _shipment_response(found, new_link=new_link)
    session["new_link"] = new_link
    return see_other(url_for("cases.shipment", shipment_id=found.id))


@bp.get("/links/<int:link_id>/qr.svg")
@login_required
def link_qr(link_id: int):
    link = _link_or_404(link_id)
    pending = session.get("qr_token") or {}
    if pending.get("id") != link.id or link.revoked_at is not None:
        abort(404)
    session.pop("qr_token", None)
    url = url_for("patient.status", token=pending["token"], _external=True)
    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="svg", scale=5, border=2, xmldecl=False, svgclass=None,
                                    lineclass=None)
    response = make_response(buffer.getvalue())
    response.mimetype = "image/svg+xml"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.post("/links/<int:link_id>/revoke")
@login_required
def revoke_patient_link(link_id: int):
    link = _link_or_404(link_id)
    PlainForm().validate_on_submit()
    revoke_link(link, _user())
    found = Shipment.get_visible(link.shipment_id, current_user)
    return _after_shipment_change(found)


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
        form.name.errors = ["You already have a label with this name."]
        return False
    if label is None:
        Label.create(owner=current_user.id, name=name, color=form.color.data)
    else:
        label.name, label.color = name, form.color.data
        label.save()
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
    label = Label.get_own(label_id, current_user)
    if label is None:
        abort(404)
    form = LabelForm()
    if _save_label(form, label):
        return see_other(url_for("cases.labels"))
    return _labels_page(form, 422)


@bp.post("/labels/<int:label_id>/delete")
@login_required
def delete_label(label_id: int):
    label = Label.get_own(label_id, current_user)
    if label is None:
        abort(404)
    PlainForm().validate_on_submit()
    label.delete_instance(recursive=True)
    return see_other(url_for("cases.labels"))


@bp.post("/<int:case_id>/labels")
@login_required
def attach_label(case_id: int):
    case = _case_or_404(case_id)
    PlainForm().validate_on_submit()
    raw = request.form.get("label", "")
    label = Label.get_own(int(raw), current_user) if raw.isdigit() else None
    if label is None:
        abort(404)
    CaseLabel.insert(case=case.id, label=label.id).on_conflict_ignore().execute()
    return see_other(url_for("cases.detail", case_id=case.id) + "#labels")


@bp.post("/<int:case_id>/labels/<int:label_id>/detach")
@login_required
def detach_label(case_id: int, label_id: int):
    case = _case_or_404(case_id)
    label = Label.get_own(label_id, current_user)
    if label is None:
        abort(404)
    PlainForm().validate_on_submit()
    CaseLabel.delete().where((CaseLabel.case == case.id) & (CaseLabel.label == label.id)).execute()
    return see_other(url_for("cases.detail", case_id=case.id) + "#labels")


# Shipments view ------------------------------------------------------------------------------

STATE_SLUGS = {s.slug: s for s in ShipmentState}


@shipments_bp.get("/")
@login_required
def index():
    user = _user()
    history = request.args.get("history") == "1"
    base = Shipment.select().join(Case)
    if not user.is_staff:
        base = base.where(Case.clinician == user.id)
    if not history:
        base = base.where(active_condition())
    counts = state_counts(base)
    state = STATE_SLUGS.get(request.args.get("state", ""))
    query = base.select(Shipment, Case)
    if state is not None:
        query = query.where(Shipment.state == state.value)
    page = _int_arg("page", 1)
    size = current_app.config["PAGE_SIZE"]
    found = list(query.order_by(Shipment.target_ship_date.desc(), Shipment.id.desc())
                 .limit(size + 1).offset((page - 1) * size))
    holidays = Holiday.dates()

    def link(**changes):
        params = {"state": state.slug if state else None, "history": "1" if history else None, "page": None}
        params.update(changes)
        return url_for("shipments.index", **{k: v for k, v in params.items() if v not in (None, 1)})

    filters = [("All", link(state=None), state is None, "", sum(counts.values()))]
    filters += [(s.label, link(state=s.slug), state == s, "ship-" + s.slug, counts.get(s.value, 0))
                for s in ShipmentState]
    return page_or_block(SHIPMENTS, "shipment_table", trackers=[_tracker(s, holidays) for s in found[:size]],
                         filters=filters, history=history, page=page, has_next=len(found) > size, link=link)


@shipments_bp.get("/import")
@login_required
def import_form():
    _staff_only()
    return render_template(IMPORT, form=ImportForm(formdata=None), results=None, applied=False)


@shipments_bp.post("/import")
@login_required
def import_csv():
    _staff_only()
    form = ImportForm()
    form.validate_on_submit()
    upload = form.file.data
    if upload is None or not getattr(upload, "filename", ""):
        form.file.errors = ["Choose a CSV file."]
        return render_template(IMPORT, form=form, results=None, applied=False), 422
    data = upload.read(1024 * 1024 + 1)
    try:
        if len(data) > 1024 * 1024:
            raise ImportError_("The file is larger than 1 MB.")
        results = parse_import(data)
    except ImportError_ as exc:
        form.file.errors = [str(exc)]
        return render_template(IMPORT, form=form, results=None, applied=False), 422
    if any(r.error for r in results):
        return render_template(IMPORT, form=form, results=results, applied=False), 422
    apply_import(results, _user())
    return render_template(IMPORT, form=ImportForm(formdata=None), results=results, applied=True)

"""Shipments: one tracker's page and its state changes, patients' status links, the Shipments
view and the CSV import of tracking numbers."""
import io

import segno
from flask import abort, current_app, make_response, render_template, request, session, url_for
from flask_babel import gettext
from flask_login import current_user, login_required

from ..htmx import is_htmx, page_or_block, see_other
from . import bp, shipments_bp
from .forms import CarrierDateForm, ImportForm, PlainForm, ReopenForm, TransitForm
from .lookup import acting_user, int_arg, shipment_or_404, staff_only, tracker
from .models import Holiday, PatientLink, Shipment, ShipmentState
from .shipment_listing import STATE_SLUGS, shipment_page
from .shipments import ShipmentRefused, advance, create_link, reopen, revoke_link, set_carrier_eta
from .tracking_import import ImportError_, apply_import, parse_import

SHIPMENT = "cases/shipment.html"
SHIPMENTS = "cases/shipments.html"
IMPORT = "cases/import.html"


def _shipment_context(shipment: Shipment, error=None, transit_form=None, reopen_form=None, new_link=None,
                      eta_form=None):
    return {
        "t": tracker(shipment, Holiday.dates()),
        "case": shipment.case,
        "error": error,
        "transit_form": transit_form or TransitForm(formdata=None),
        "eta_form": eta_form or CarrierDateForm(formdata=None, carrier_eta=shipment.carrier_eta),
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
    found = shipment_or_404(shipment_id)
    new_link = None
    shown = session.pop("new_link", None)
    if shown and shown.get("shipment") == found.id:
        new_link = shown
    return _shipment_response(found, new_link=new_link)


@bp.post("/shipments/<int:shipment_id>/advance")
@login_required
def advance_shipment(shipment_id: int):
    found = shipment_or_404(shipment_id)
    staff_only()
    form = TransitForm()
    if not form.validate_on_submit():
        return _shipment_response(found, status=422, transit_form=form, error=gettext("Check the fields below."))
    try:
        advance(found, acting_user(), to_state=request.form.get("to") or None, carrier=form.carrier.data,
                tracking_number=form.tracking_number.data, carrier_eta=form.carrier_eta.data)
    except ShipmentRefused as exc:
        return _shipment_response(found, status=422, transit_form=form, error=str(exc))
    return _after_shipment_change(found)


@bp.post("/shipments/<int:shipment_id>/carrier-date")
@login_required
def carrier_date(shipment_id: int):
    """Set or clear the carrier's delivery date of a shipment in transit (clearing brings the
    estimated window back)."""
    found = shipment_or_404(shipment_id)
    staff_only()
    form = CarrierDateForm()
    if not form.validate_on_submit():
        return _shipment_response(found, status=422, eta_form=form, error=gettext("Check the fields below."))
    if found.state != ShipmentState.IN_TRANSIT.value:
        return _shipment_response(found, status=422, eta_form=form,
                                  error=gettext("The carrier's date applies while the shipment is in transit."))
    if form.carrier_eta.data != found.carrier_eta:
        set_carrier_eta(found, acting_user(), form.carrier_eta.data)
    return _after_shipment_change(found)


@bp.post("/shipments/<int:shipment_id>/reopen")
@login_required
def reopen_shipment(shipment_id: int):
    found = shipment_or_404(shipment_id)
    form = ReopenForm()
    if not current_user.is_admin:
        abort(403)
    if not form.validate_on_submit():
        return _shipment_response(found, status=422, reopen_form=form, error=gettext("Write why the shipment goes back."))
    try:
        reopen(found, acting_user(), form.reason.data)
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
    found = shipment_or_404(shipment_id)
    PlainForm().validate_on_submit()  # CSRF is checked app-wide
    link, token = create_link(found, acting_user())
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
    revoke_link(link, acting_user())
    found = Shipment.get_visible(link.shipment_id, current_user)
    return _after_shipment_change(found)

# Shipments view ------------------------------------------------------------------------------

@shipments_bp.get("/")
@login_required
def index():
    history = request.args.get("history") == "1"
    listing = shipment_page(acting_user(), STATE_SLUGS.get(request.args.get("state", "")), history,
                            int_arg("page", 1), current_app.config["PAGE_SIZE"], Holiday.dates())
    state = listing.state

    def link(**changes):
        params = {"state": state.slug if state else None, "history": "1" if history else None, "page": None}
        params.update(changes)
        return url_for("shipments.index", **{k: v for k, v in params.items() if v not in (None, 1)})

    counts = listing.counts
    filters = [(gettext("All"), link(state=None), state is None, "", sum(counts.values()))]
    filters += [(s.label, link(state=s.slug), state == s, "ship-" + s.slug, counts.get(s.value, 0))
                for s in ShipmentState]
    return page_or_block(SHIPMENTS, "shipment_table", listing=listing, filters=filters, history=history,
                         page=listing.page, has_next=listing.has_next, link=link)


@shipments_bp.get("/import")
@login_required
def import_form():
    staff_only()
    return render_template(IMPORT, form=ImportForm(formdata=None), results=None, applied=False)


@shipments_bp.post("/import")
@login_required
def import_csv():
    staff_only()
    form = ImportForm()
    form.validate_on_submit()
    upload = form.file.data
    if upload is None or not getattr(upload, "filename", ""):
        form.file.errors = [gettext("Choose a CSV file.")]
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
    apply_import(results, acting_user())
    return render_template(IMPORT, form=ImportForm(formdata=None), results=results, applied=True)

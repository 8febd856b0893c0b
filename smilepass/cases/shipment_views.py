"""Shipments: one tracker's page and its state changes, patients' status links, the Shipments
view and the CSV import of tracking numbers."""
import io

import segno
from flask import Blueprint, abort, current_app, make_response, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required

from .. import sessions
from ..auth.guards import STAFF, require_role, role_required, visible_or_404
from ..htmx import is_htmx, page_or_block, see_other
from ..models import PatientLink, Role, Shipment, ShipmentState
from ..params import page_arg
from ..service import sla
from .forms import CarrierDateForm, ImportForm, PlainForm, ReopenForm, TransitForm
from .lookup import acting_user, tracker
from .shipment_listing import STATE_SLUGS, shipment_page
from .shipments import ShipmentRefused, advance, create_link, reopen, revoke_link, set_carrier_eta
from .tracking_import import ImportError_, apply_import, parse_import

# Trackers live under their cases (/cases/shipments/…); the Shipments view and the CSV import under /shipments.
bp = Blueprint("shipments", __name__)

SHIPMENT = "cases/shipment.html"
SHIPMENTS = "cases/shipments.html"
IMPORT = "cases/import.html"


def _shipment_context(shipment: Shipment, error=None, transit_form=None, reopen_form=None, new_link=None,
                      eta_form=None):
    return {
        "t": tracker(shipment, sla.schedule()),
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
    return see_other(url_for("shipments.shipment", shipment_id=shipment.id))


@bp.get("/cases/shipments/<int:shipment_id>")
@login_required
def shipment(shipment_id: int):
    found = visible_or_404(Shipment, shipment_id)
    new_link = None
    shown = sessions.peek("new_link")
    if shown and shown.get("shipment") == found.id:
        new_link = sessions.take("new_link")
    return _shipment_response(found, new_link=new_link)


@bp.post("/cases/shipments/<int:shipment_id>/advance")
@login_required
def advance_shipment(shipment_id: int):
    found = visible_or_404(Shipment, shipment_id)
    require_role(*STAFF)
    form = TransitForm()
    if not form.validate_on_submit():
        return _shipment_response(found, status=422, transit_form=form, error=gettext("Check the fields below."))
    try:
        advance(found, acting_user(), to_state=request.form.get("to") or None, carrier=form.carrier.data,
                tracking_number=form.tracking_number.data, carrier_eta=form.carrier_eta.data)
    except ShipmentRefused as exc:
        return _shipment_response(found, status=422, transit_form=form, error=str(exc))
    return _after_shipment_change(found)


@bp.post("/cases/shipments/<int:shipment_id>/carrier-date")
@login_required
def carrier_date(shipment_id: int):
    """Set or clear the carrier's delivery date of a shipment in transit (clearing brings the
    estimated window back)."""
    found = visible_or_404(Shipment, shipment_id)
    require_role(*STAFF)
    form = CarrierDateForm()
    if not form.validate_on_submit():
        return _shipment_response(found, status=422, eta_form=form, error=gettext("Check the fields below."))
    if found.state != ShipmentState.IN_TRANSIT.value:
        return _shipment_response(found, status=422, eta_form=form,
                                  error=gettext("The carrier's date applies while the shipment is in transit."))
    if form.carrier_eta.data != found.carrier_eta:
        set_carrier_eta(found, acting_user(), form.carrier_eta.data)
    return _after_shipment_change(found)


@bp.post("/cases/shipments/<int:shipment_id>/reopen")
@login_required
def reopen_shipment(shipment_id: int):
    found = visible_or_404(Shipment, shipment_id)
    form = ReopenForm()
    require_role(Role.ADMIN, refused=403)  # staff see the button's page, so this is a refusal, not a 404
    if not form.validate_on_submit():
        return _shipment_response(
            found, status=422, reopen_form=form, error=gettext("Write why the shipment goes back.")
        )
    try:
        reopen(found, acting_user(), form.reason.data)
    except ShipmentRefused as exc:
        return _shipment_response(found, status=422, reopen_form=form, error=str(exc))
    return _after_shipment_change(found)

# Patient links -------------------------------------------------------------------------------

@bp.post("/cases/shipments/<int:shipment_id>/links")
@login_required
def create_patient_link(shipment_id: int):
    found = visible_or_404(Shipment, shipment_id)
    PlainForm().validate_on_submit()  # CSRF is checked app-wide
    link, token = create_link(found, acting_user())
    new_link = {"shipment": found.id, "id": link.id, "url": url_for("patient.status", token=token, _external=True)}
    # The token is never stored in the database (only its hash is) nor in the cookie, which anyone
    # holding it can read: the QR image route reads it once from this session's short-lived stash.
    kept = sessions.stash("qr_token", {"id": link.id, "token": token})
    if is_htmx():
        return _shipment_response(found, new_link=new_link)
    if not kept or not sessions.stash("new_link", new_link):
        # Without the stash (Redis down) the link can only be shown right now, not after a redirect.
        return _shipment_response(found, new_link=new_link)
    return see_other(url_for("shipments.shipment", shipment_id=found.id))


@bp.get("/cases/links/<int:link_id>/qr.svg")
@login_required
def link_qr(link_id: int):
    link = visible_or_404(PatientLink, link_id)
    pending = sessions.peek("qr_token") or {}
    if pending.get("id") != link.id or link.revoked_at is not None or not sessions.take("qr_token"):
        abort(404)
    url = url_for("patient.status", token=pending["token"], _external=True)
    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="svg", scale=5, border=2, xmldecl=False, svgclass=None,
                                    lineclass=None)
    response = make_response(buffer.getvalue())
    response.mimetype = "image/svg+xml"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.post("/cases/links/<int:link_id>/revoke")
@login_required
def revoke_patient_link(link_id: int):
    link = visible_or_404(PatientLink, link_id)
    PlainForm().validate_on_submit()
    revoke_link(link, acting_user())
    found = Shipment.get_visible(link.shipment_id, current_user)
    return _after_shipment_change(found)

# Shipments view ------------------------------------------------------------------------------

@bp.get("/shipments/")
@login_required
def index():
    history = request.args.get("history") == "1"
    listing = shipment_page(acting_user(), STATE_SLUGS.get(request.args.get("state", "")), history,
                            page_arg(), current_app.config["PAGE_SIZE"], sla.schedule())
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


@bp.get("/shipments/import")
@role_required(*STAFF)
def import_form():
    return render_template(IMPORT, form=ImportForm(formdata=None), results=None, applied=False)


@bp.post("/shipments/import")
@role_required(*STAFF)
def import_csv():
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

"""Shared by the case views: the signed-in user, query arguments, and objects by id for the
current user or 404 (another user's case or shipment is indistinguishable from a missing one)."""
from flask import abort, request
from flask_login import current_user

from ..models import User
from .models import Case, Shipment
from .shipments import estimate, visible_links


def acting_user() -> User:
    return current_user._get_current_object()


def int_arg(name, default=None):
    value = request.args.get(name, "")
    return int(value) if value.isdigit() else default


def case_or_404(case_id: int) -> Case:
    case = Case.get_visible(case_id, current_user)
    if case is None:
        abort(404)
    return case


def shipment_or_404(shipment_id: int) -> Shipment:
    shipment = Shipment.get_visible(shipment_id, current_user)
    if shipment is None:
        abort(404)
    return shipment


def staff_only():
    if not current_user.is_staff:
        abort(404)


def tracker(shipment: Shipment, holidays):
    kind, value = estimate(shipment, holidays)
    return {"shipment": shipment, "eta_kind": kind, "eta": value, "links": visible_links(shipment)}

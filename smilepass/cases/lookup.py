"""Shared by the case views: the signed-in user, query arguments and a shipment's tracker. Objects by
id come from auth.guards.visible_or_404 (another user's case is indistinguishable from a missing one)."""
from flask import request
from flask_login import current_user

from ..models import Shipment, User
from ..params import parse_int
from ..service.calendar import Schedule
from .eta import estimate
from .shipments import visible_links


def acting_user() -> User:
    return current_user._get_current_object()


def int_arg(name, default=None):
    value = parse_int(request.args.get(name, ""))
    return default if value is None else value


def tracker(shipment: Shipment, schedule: Schedule):
    kind, value = estimate(shipment, schedule)
    return {"shipment": shipment, "eta_kind": kind, "eta": value, "links": visible_links(shipment)}

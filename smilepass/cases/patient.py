"""The patient's status page: no sign-in, minimum necessary (clinic name, the three steps with
dates, the estimate, carrier and tracking number), rate-limited per client address."""
import logging

from flask import Blueprint, current_app, render_template
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from .. import audit
from ..models import ShipmentState
from .eta import estimate
from .shipments import shipment_for_token

log = logging.getLogger(__name__)
bp = Blueprint("patient", __name__, url_prefix="/p")
DEFAULT_LIMIT = "30 per minute"

# Redis-backed counts shared by all workers. If Redis is down the page still answers (fail open,
# with a warning in the log) and counting falls back to this process's memory.
limiter = Limiter(get_remote_address, swallow_errors=True, in_memory_fallback_enabled=True,
                  headers_enabled=False)


@bp.record_once
def _init_limiter(state):
    app = state.app
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"])
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "smilepass-patient")
    app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 1, "socket_timeout": 1})
    app.config.setdefault("PATIENT_PAGE_RATE_LIMIT", DEFAULT_LIMIT)
    limiter.init_app(app)


def _limit() -> str:
    return current_app.config["PATIENT_PAGE_RATE_LIMIT"]


def _private(response, status):
    response = current_app.make_response((response, status))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@bp.errorhandler(429)
def too_many(err):
    return _private(render_template("patient/too_many.html"), 429)


@bp.get("/<token>")
@limiter.limit(_limit)
def status(token: str):
    shipment = shipment_for_token(token)
    if shipment is None:
        return _private(render_template("patient/not_found.html"), 404)
    audit.record("patient_page_view", shipment)  # who opened it is unknown; the address is kept
    kind, value = estimate(shipment)
    steps = [
        (ShipmentState.IN_PRODUCTION.label, shipment.in_production_at),
        (ShipmentState.IN_TRANSIT.label, shipment.in_transit_at),
        (ShipmentState.DELIVERED.label, shipment.delivered_at),
    ]
    page = render_template("patient/status.html", steps=steps, eta_kind=kind, eta=value,
                           delivered=shipment.state == ShipmentState.DELIVERED.value,
                           carrier=shipment.carrier, tracking_number=shipment.tracking_number)
    return _private(page, 200)

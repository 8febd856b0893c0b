"""Cases, shipment trackers, labels and the patients' status page."""
from flask import Blueprint

bp = Blueprint("cases", __name__, url_prefix="/cases")
shipments_bp = Blueprint("shipments", __name__, url_prefix="/shipments")
patient_bp = Blueprint("patient", __name__, url_prefix="/p")

from . import patient, shipment_views, views  # noqa: E402,F401  (routes register on import)
from . import case_scans  # noqa: E402,F401  (after views: it renders the case page)


def register(app) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(shipments_bp)
    app.register_blueprint(patient_bp)

"""Practice Insights: ticket, service-level, scan and case figures as server-drawn SVG charts, each
with its numbers as a table and a CSV download."""
from flask import Blueprint

bp = Blueprint("insights", __name__, url_prefix="/insights")

from . import views  # noqa: E402,F401  (routes register on import)

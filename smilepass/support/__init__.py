from flask import Blueprint

bp = Blueprint("support", __name__, url_prefix="/support")

from . import scan_views, views  # noqa: E402,F401  (routes register on import)
from . import escalation_views  # noqa: E402,F401  (after views: it renders the ticket page)
from . import draft_views  # noqa: E402,F401  (after views: it renders both forms' pages)

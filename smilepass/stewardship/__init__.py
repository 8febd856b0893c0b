"""Patient-data stewardship: export a patient's data, erase a patient, purge old scans."""
from flask import Blueprint

bp = Blueprint("stewardship", __name__, url_prefix="/cases")

from . import views  # noqa: E402,F401  (routes register on import)

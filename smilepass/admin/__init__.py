from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from . import views  # noqa: E402,F401  (routes register on import)
from . import clinic_views  # noqa: E402,F401
from . import audit_views  # noqa: E402,F401

"""My Account: the signed-in user's own choices (email notifications)."""
from flask import Blueprint

bp = Blueprint("account", __name__, url_prefix="/account")

from . import views  # noqa: E402,F401  (routes register on import)
from . import language_views  # noqa: E402,F401

"""The urgent Contact us form (open without signing in) and the supervisors' Contact inbox."""
from flask import Blueprint

bp = Blueprint("contact", __name__, url_prefix="/contact")

from . import views  # noqa: E402,F401  (routes register on import)

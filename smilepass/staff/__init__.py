"""The staff side of support: the queue, assignment, bulk changes, canned replies and the notice
that someone else is replying. Staff only; to anyone else these pages do not exist (404)."""
from flask import Blueprint

bp = Blueprint("staff", __name__, url_prefix="/queue")

from . import views, canned_views  # noqa: E402,F401  (routes register on import)

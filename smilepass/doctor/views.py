"""Administration → System: the doctor's checks as a table, for admins only. Each visit runs them afresh
(a second or two: the SMTP server is asked, a small test scan is repaired in a subprocess)."""
from flask import Blueprint, current_app, render_template

from ..auth.guards import role_required
from ..models import Role
from .record import Status, worst
from .runner import run_checks

bp = Blueprint("doctor", __name__, url_prefix="/admin")


@bp.get("/system")
@role_required(Role.ADMIN)
def system():
    checks = run_checks(current_app)
    return render_template("doctor/system.html", checks=checks, overall=worst(c.status for c in checks),
                           Status=Status)

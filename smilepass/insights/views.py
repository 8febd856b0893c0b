"""The Practice Insights page (full page, or its results block for htmx) and one CSV per chart.

Who sees what: admins and support supervisors see the whole practice and may narrow it to one
clinic; a clinician sees the same page for their own tickets, scans and cases only; other support
staff get 404, like any page that is not theirs."""
import csv
import io

from flask import Blueprint, Response, abort, request, url_for
from flask_login import current_user

from ..auth.guards import role_required
from ..htmx import page_or_block
from ..models import Clinic, EscalationRole, Role, User, utcnow
from ..spreadsheet import spreadsheet_safe
from . import figures, filters

bp = Blueprint("insights", __name__, url_prefix="/insights")

PAGE = "insights/index.html"
# Who sees the whole practice; clinicians see their own numbers, other support staff get a 404.
WHOLE_PRACTICE = (Role.ADMIN, EscalationRole.SUPERVISOR)
READERS = (*WHOLE_PRACTICE, Role.CLINICIAN)


def sees_whole_practice(user: User) -> bool:
    return user.holds(*WHOLE_PRACTICE)


def _own_numbers_of() -> int | None:
    """The clinician whose numbers the signed-in user may see (themselves), or None for the whole
    practice (the view's guard let in no one else)."""
    user = current_user._get_current_object()
    return None if sees_whole_practice(user) else user.id


def _filters(own_only: bool) -> filters.Filters:
    return filters.parse(request.args, utcnow().date(), clinic_filter=not own_only)


@bp.get("/")
@role_required(*READERS)
def index():
    clinician_id = _own_numbers_of()
    chosen = _filters(clinician_id is not None)
    numbers = figures.Numbers(chosen.scope(clinician_id))
    quick = filters.quick_ranges(chosen, utcnow().date())
    clinics = [] if clinician_id is not None else list(Clinic.select(Clinic.id, Clinic.name).order_by(Clinic.name))
    return page_or_block(PAGE, "insights", status=422 if chosen.errors else 200, filters=chosen, quick=quick,
                         clinics=clinics, own_only=clinician_id is not None, figures=figures.all_figures(numbers),
                         csv_url=lambda key: url_for("insights.download", key=key, **chosen.params()),
                         numbers=numbers, hours=figures.hours, percent=figures.percent, day_count=figures.day_count)


@bp.get("/<key>.csv")
@role_required(*READERS)
def download(key: str):
    clinician_id = _own_numbers_of()
    build = figures.FIGURES.get(key)
    if build is None:
        abort(404)
    chosen = _filters(clinician_id is not None)
    if chosen.errors:
        abort(400, "; ".join(chosen.errors.values()))
    figure = build(figures.Numbers(chosen.scope(clinician_id)))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([spreadsheet_safe(c) for c in figure.columns])
    writer.writerows([[spreadsheet_safe(c) for c in row] for row in figure.rows])
    name = f"insights-{key}-{chosen.start.isoformat()}-{chosen.end.isoformat()}.csv"
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


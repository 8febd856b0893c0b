"""The Practice Insights page (full page, or its results block for htmx) and one CSV per chart.

Who sees what: admins and support supervisors see the whole practice and may narrow it to one
clinic; a clinician sees the same page for their own tickets, scans and cases only; other support
staff get 404, like any page that is not theirs."""
import csv
import io

from flask import Response, abort, request, url_for
from flask_login import current_user, login_required

from ..htmx import page_or_block
from ..models import Clinic, EscalationRole, Role, User, utcnow
from . import bp, figures, filters

PAGE = "insights/index.html"
# Spreadsheets run a cell starting with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def sees_whole_practice(user: User) -> bool:
    return user.is_admin or (user.is_staff and user.escalation_role == EscalationRole.SUPERVISOR.value)


def _own_numbers_of() -> int | None:
    """The clinician whose numbers the signed-in user may see (themselves), or None for the whole
    practice; 404 for anyone else."""
    user = current_user._get_current_object()
    if sees_whole_practice(user):
        return None
    if user.role == Role.CLINICIAN.value:
        return user.id
    abort(404)


def _filters(own_only: bool) -> filters.Filters:
    return filters.parse(request.args, utcnow().date(), clinic_filter=not own_only)


@bp.get("/")
@login_required
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
@login_required
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
    writer.writerow([neutralise(c) for c in figure.columns])
    writer.writerows([[neutralise(c) for c in row] for row in figure.rows])
    name = f"insights-{key}-{chosen.start.isoformat()}-{chosen.end.isoformat()}.csv"
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def neutralise(cell):
    """A cell a spreadsheet would run as a formula gets a leading quote; numbers stay numbers."""
    if cell is None:
        return ""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell if isinstance(cell, (int, float)) else str(cell)

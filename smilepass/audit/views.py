"""Admin → Audit log: browse and filter the trail newest first, a page at a time, and export what the
filter matches as CSV (the export is audited too)."""
from flask import Blueprint, Response, request, stream_with_context, url_for

from .. import audit
from ..auth.guards import id_arg, role_required
from ..htmx import page_or_block
from ..models import AuditLog, Role, utcnow
from .search import AuditFilterForm, csv_lines

bp = Blueprint("audit", __name__, url_prefix="/admin")

PAGE = 50
TEMPLATE = "audit/audit.html"


def _before() -> int | None:
    return id_arg(request.args.get("before"))


@bp.get("/audit")
@role_required(Role.ADMIN)
def audit_log():
    form = AuditFilterForm(request.args)
    if not form.validate():
        # The filter as typed stays in the form, with the errors beside the fields.
        return page_or_block(TEMPLATE, "audit", status=422, form=form, rows=[], older=None, export_url=None)
    before = _before()
    rows = AuditLog.newest_first(AuditLog.matching(**form.criteria()), before, PAGE + 1)
    args = form.query_args()
    older = url_for("audit.audit_log", before=rows[PAGE - 1].id, **args) if len(rows) > PAGE else None
    return page_or_block(TEMPLATE, "audit", form=form, rows=rows[:PAGE], older=older,
                         newest=url_for("audit.audit_log", **args) if before else None,
                         export_url=url_for("audit.audit_export", **args), action_label=audit.action_label)


@bp.get("/audit/export.csv")
@role_required(Role.ADMIN)
def audit_export():
    form = AuditFilterForm(request.args)
    if not form.validate():
        return page_or_block(TEMPLATE, "audit", status=422, form=form, rows=[], older=None, export_url=None)
    # Rows written while the file streams (this export's own row among them) are not in it.
    upto = AuditLog.newest_id()
    audit.record("audit_export", None, detail=f"rows up to #{upto}; {form.summary()}")
    filename = f"audit-log-{utcnow():%Y%m%d-%H%M%S}.csv"
    return Response(stream_with_context(csv_lines(form.criteria(), upto)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})

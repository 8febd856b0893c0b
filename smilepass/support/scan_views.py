"""Scan panels in a ticket: progress while the repair runs, then the verdict, report, previews and
downloads; staff can run the repair again with other settings."""
import json

from flask import abort, current_app, url_for
from flask_login import current_user, login_required

from .. import audit
from ..htmx import STOP_POLLING, is_htmx, page_or_block, see_other
from ..models import Scan, ticket_number
from ..scans import rerun, scan_dir
from . import bp
from .forms import RerunForm
from .views import DETAIL, send_private

SCAN_FILES = {
    # kind: (column, download name suffix)
    "original": ("stored_name", "original"),
    "repaired": ("repaired_name", "repaired"),
    "repaired-stl": ("repaired_stl_name", "repaired"),
}


def _scan_or_404(scan_id: int) -> Scan:
    scan = Scan.get_visible(scan_id, current_user)
    if scan is None:
        abort(404)
    return scan


@bp.get("/scans/<int:scan_id>")
@login_required
def scan_panel(scan_id: int):
    """The scan's panel. Polled by htmx while the repair runs; answers 286 (stop polling) once it
    has a final result, which it swaps in at the same time."""
    scan = _scan_or_404(scan_id)
    if not is_htmx():
        return see_other(url_for("support.detail", ticket_id=scan.ticket_id) + f"#scan-{scan.id}")
    response = page_or_block(DETAIL, "scan_panel", scan=scan, rerun_form=RerunForm(formdata=None))
    if not scan.busy:
        response.status_code = STOP_POLLING
    return response


@bp.get("/scans/<int:scan_id>/files/<kind>")
@login_required
def scan_file(scan_id: int, kind: str):
    scan = _scan_or_404(scan_id)
    if kind not in SCAN_FILES or not getattr(scan, SCAN_FILES[kind][0]):
        abort(404)
    stored = getattr(scan, SCAN_FILES[kind][0])
    audit.record("scan_download", scan, detail=kind)
    return send_private(scan_dir(current_app.config["UPLOAD_DIR"]) / stored, "application/octet-stream",
                        download_name=scan_download_name(scan, kind, stored))


@bp.get("/scans/<int:scan_id>/preview/<which>")
@login_required
def scan_preview(scan_id: int, which: str):
    scan = _scan_or_404(scan_id)
    name = {"before": scan.preview_before_name, "after": scan.preview_after_name}.get(which)
    if not name:
        abort(404)
    return send_private(scan_dir(current_app.config["UPLOAD_DIR"]) / name, "image/png")


@bp.post("/scans/<int:scan_id>/rerun")
@login_required
def scan_rerun(scan_id: int):
    scan = _scan_or_404(scan_id)
    if not current_user.is_staff:
        abort(404)
    form = RerunForm()
    if form.validate_on_submit():
        if scan.busy:
            form.hole_percent.errors = ["This scan is still being repaired; wait for the result first."]
        else:
            options = {"hole_max_edges_fraction": float(form.hole_percent.data) / 100,
                       "debris_max_area_fraction": float(form.debris_percent.data) / 100}
            rerun(scan, options, current_app.config)
            audit.record("scan_rerun", scan, detail=json.dumps(options))
            if not is_htmx():
                return see_other(url_for("support.detail", ticket_id=scan.ticket_id) + f"#scan-{scan.id}")
            form = RerunForm(formdata=None)
    status = 422 if form.errors else 200
    return page_or_block(DETAIL, "scan_panel", status=status, scan=scan, rerun_form=form)


def scan_download_name(scan: Scan, kind: str, stored: str) -> str:
    """Repaired files are named after the ticket and date (the clinicID_patientID_date convention
    takes over once scans belong to cases); the original keeps the name it came with."""
    if kind == "original":
        return scan.original_name
    extension = "." + stored.rsplit(".", 1)[-1]
    return f"{ticket_number(scan.ticket_id)}_{scan.created_at:%Y-%m-%d}_scan{scan.id}_repaired{extension}"

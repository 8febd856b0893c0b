"""Scan panels, on a ticket page or a case page: progress while the repair runs, then the verdict,
report, previews and downloads; staff can run the repair again with other settings."""
import json
import math
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required

from .. import audit
from ..auth.guards import STAFF, require_role, visible_or_404
from ..cases import views as case_views
from ..cases.lookup import acting_user
from ..db import database
from ..htmx import STOP_POLLING, blocks, is_htmx, page_or_block, see_other
from ..mesh.webcopy import read_bounds
from ..models import Case, RescanRequest, Scan, ScanPin, Ticket, ticket_number
from ..notifications.outbox import hand_over
from ..storage import for_config
from ..storage.web import send_stored
from ..support import tickets
from ..support.views import DETAIL, _detail_context
from . import rescans
from .forms import CaseScanForm, PinForm, RerunForm, RescanForm
from .queueing import rerun
from .staging import StagedUploads, UploadRefused
from .storage import scan_key
from .text import scan_progress_label, stored_reason, stored_report, verdict_reason_text

bp = Blueprint("scans", __name__)
# The panels' text helpers, for every template that includes a scan panel (ticket and case pages).
bp.add_app_template_filter(stored_reason, "stored_reason")
bp.add_app_template_filter(stored_report, "stored_report")
bp.add_app_template_global(scan_progress_label, "scan_progress_label")
bp.add_app_template_global(verdict_reason_text, "verdict_reason_text")


@bp.app_template_global("rescan_state")
def rescan_state(scan: Scan, failed_rescan=None) -> rescans.RescanState | None:
    """What the scan's panel shows about rescans (None for a scan sent with no request: there is no
    thread to ask in). Staff get the form, pre-ticked with the repair's suggestions, or the refused
    one of this scan with its errors."""
    if scan.ticket_id is None:
        return None
    state = rescans.RescanState(RescanRequest.latest_for(scan.id), rescans.suggested_reasons(scan),
                                RescanRequest.get_or_none(RescanRequest.fulfilled_by_scan == scan.id))
    if current_user.is_staff:
        if failed_rescan and failed_rescan["scan_id"] == scan.id:
            state.form, state.error = failed_rescan["form"], failed_rescan.get("error")
        else:
            state.form = RescanForm(formdata=None, data={"reasons": state.suggested})
    return state


SCAN_FILES = {
    # kind: (column, download name suffix)
    "original": ("stored_name", "original"),
    "repaired": ("repaired_name", "repaired"),
    "repaired-stl": ("repaired_stl_name", "repaired"),
}


def _page_url(page: tuple[str, int]) -> str:
    kind, object_id = page
    if kind == "ticket":
        return url_for("support.detail", ticket_id=object_id)
    return url_for("cases.detail", case_id=object_id)


def _scan_page(scan: Scan) -> tuple[str, int]:
    """The page that shows the scan's panel to this user, ("ticket", id) or ("case", id): the page
    the request came from when that is one of the scan's pages (a scan sent with a request about a
    case shows on both), else its ticket's page when the user may see it, else its case's page.
    The referrer only chooses between these; it is never redirected to."""
    pages = []
    if scan.ticket_id is not None and Ticket.get_visible(scan.ticket_id, current_user) is not None:
        pages.append(("ticket", scan.ticket_id))
    if scan.case_id is not None and Case.get_visible(scan.case_id, current_user) is not None:
        pages.append(("case", scan.case_id))
    came_from = urlsplit(request.referrer or "").path
    return next((page for page in pages if _page_url(page) == came_from), pages[0])


def scan_page_url(scan: Scan) -> str:
    return _page_url(_scan_page(scan)) + f"#scan-{scan.id}"


def _page_with_rerun_errors(scan: Scan, form: RerunForm):
    """Without htmx, a refused re-run shows the scan's page again with the errors beside the
    fields of this scan's panel (the other panels keep a blank form)."""
    return _page_with_errors(scan, failed_rerun={"scan_id": scan.id, "form": form})


def _page_with_errors(scan: Scan, **failed):
    kind, object_id = _scan_page(scan)
    if kind == "ticket":
        context = _detail_context(Ticket.get_by_id(object_id))
        return render_template(DETAIL, **failed, **context), 422
    context = case_views._detail_context(Case.get_by_id(object_id))
    return render_template(case_views.DETAIL, **failed, **context), 422


@bp.get("/support/scans/<int:scan_id>")
@login_required
def scan_panel(scan_id: int):
    """The scan's panel. Polled by htmx while the repair runs; answers 286 (stop polling) once it
    has a final result, which it swaps in at the same time."""
    scan = visible_or_404(Scan, scan_id)
    if not is_htmx():
        return see_other(scan_page_url(scan))
    response = page_or_block(DETAIL, "scan_panel", scan=scan, rerun_form=RerunForm(formdata=None))
    if not scan.busy:
        # The panel now shows the verdict and report: audited once, not on each progress poll.
        audit.record("scan_view", scan)
        response.status_code = STOP_POLLING
    return response


@bp.get("/support/scans/<int:scan_id>/files/<kind>")
@login_required
def scan_file(scan_id: int, kind: str):
    scan = visible_or_404(Scan, scan_id)
    if kind not in SCAN_FILES or not getattr(scan, SCAN_FILES[kind][0]):
        abort(404)
    stored = getattr(scan, SCAN_FILES[kind][0])
    audit.record("scan_download", scan, detail=kind)
    return send_stored(scan_key(stored), "application/octet-stream",
                       download_name=scan_download_name(scan, kind, stored))


@bp.get("/support/scans/<int:scan_id>/preview/<which>")
@login_required
def scan_preview(scan_id: int, which: str):
    scan = visible_or_404(Scan, scan_id)
    name = {"before": scan.preview_before_name, "after": scan.preview_after_name}.get(which)
    if not name:
        abort(404)
    audit.record("scan_preview", scan, detail=which)
    return send_stored(scan_key(name), "image/png")


@bp.get("/support/scans/<int:scan_id>/web/<which>.glb")
@login_required
def scan_web_copy(scan_id: int, which: str):
    """The 3D viewer's copy of the scan ("before": as uploaded, "after": repaired), with the previews'
    access check, audit row and caching (none)."""
    scan = visible_or_404(Scan, scan_id)
    name = {"before": scan.web_before_name, "after": scan.web_after_name}.get(which)
    if not name:
        abort(404)
    audit.record("scan_preview", scan, detail="3d-" + which)
    return send_stored(scan_key(name), "model/gltf-binary")


@bp.post("/support/scans/<int:scan_id>/rerun")
@login_required
def scan_rerun(scan_id: int):
    scan = visible_or_404(Scan, scan_id)
    require_role(*STAFF)
    form = RerunForm()
    if form.validate_on_submit():
        if scan.busy:
            form.hole_percent.errors = [gettext("This scan is still being repaired; wait for the result first.")]
        else:
            options = {"hole_max_edges_fraction": float(form.hole_percent.data) / 100,
                       "debris_max_area_fraction": float(form.debris_percent.data) / 100}
            rerun(scan, options, current_app.config)
            audit.record("scan_rerun", scan, detail=json.dumps(options))
            if not is_htmx():
                return see_other(scan_page_url(scan))
            form = RerunForm(formdata=None)
    if form.errors and not is_htmx():
        return _page_with_rerun_errors(scan, form)
    status = 422 if form.errors else 200
    return page_or_block(DETAIL, "scan_panel", status=status, scan=scan, rerun_form=form)


@bp.post("/support/scans/<int:scan_id>/rescan")
@login_required
def scan_rescan(scan_id: int):
    """Staff ask the clinician for a new scan (rescans.py). With htmx: the panel, and the thread and
    status of the ticket page out of band; without: back to the scan's page."""
    scan = visible_or_404(Scan, scan_id)
    require_role(*STAFF)
    if scan.ticket_id is None:
        abort(404)  # no thread to ask in: the panel offers no such form
    form = RescanForm()
    error = None
    if form.validate_on_submit() and _rescan_pin_valid(scan, form):
        try:
            rescans.request_rescan(scan, current_user._get_current_object(), form.reasons.data, form.note.data,
                                   pin=form.rescan_pin)
        except rescans.RescanRefused as exc:
            error = str(exc)
        else:
            scan = Scan.get_by_id(scan.id)
            if not is_htmx():
                flash(gettext("Rescan requested. %(number)s now waits on the clinician.",
                              number=ticket_number(scan.ticket_id)), "info")
                return see_other(scan_page_url(scan))
            if _scan_page(scan)[0] == "ticket":
                context = _detail_context(Ticket.get_by_id(scan.ticket_id))
                return blocks(DETAIL, ["scan_panel", "thread_oob", "status_panel_oob"], **{**context, "scan": scan})
            return page_or_block(DETAIL, "scan_panel", scan=scan, rerun_form=RerunForm(formdata=None))
    failed_rescan = {"scan_id": scan.id, "form": form, "error": error}
    if not is_htmx():
        return _page_with_errors(scan, failed_rescan=failed_rescan)
    return page_or_block(DETAIL, "scan_panel", status=422, scan=scan, rerun_form=RerunForm(formdata=None),
                         failed_rescan=failed_rescan)


def _rescan_pin_valid(scan: Scan, form: RescanForm) -> bool:
    """Checks the request's optional pin like a pin of its own (on the scan, camera near it) and keeps it
    on the form as form.rescan_pin: a rescans.Pin, or None for a request without one."""
    form.rescan_pin = None
    if not form.pin.data:
        return True
    point = form.pin_point()
    lo, hi = scan_bounds(scan) if scan.web_after_name else (None, None)
    if lo is None or not _on_scan(point, lo, hi):
        form.pin.errors = [gettext("This point is not on the scan: pick it on the model.")]
        return False
    camera, target = _pin_view(form.pin_camera(), point, lo, hi)
    form.rescan_pin = rescans.Pin(point, camera, target)
    return True


# Pins: a comment on a point of the scan, posted into the ticket's thread -------------------------------

# A point may lie this far outside the scan's box (a fraction of its diagonal): the web copy is decimated,
# so a point picked on it can be a little off the repaired mesh, never far.
PIN_MARGIN = 0.05


def pin_form(scan: Scan, failed_pin=None) -> PinForm:
    """The scan panel's pin form: the one that was refused for this scan (re-shown page), else blank."""
    if failed_pin and failed_pin["scan_id"] == scan.id:
        return failed_pin["form"]
    return PinForm(formdata=None, prefix=f"pin{scan.id}")


def thread_pins(thread) -> dict:
    """{message id: pin} for the replies of a rendered thread (only those the viewer sees are in it)."""
    return ScanPin.by_message(item.id for kind, item in thread or () if kind == "message")


def can_pin(scan: Scan) -> bool:
    """Whether the current user may pin this scan: its ticket's thread is one they see (a scan shown on a
    case page may belong to a ticket of someone else's, where a pin would be refused)."""
    return scan.ticket_id is not None and Ticket.get_visible(scan.ticket_id, current_user) is not None


bp.add_app_template_global(can_pin, "can_pin")
bp.add_app_template_global(pin_form, "pin_form")
bp.add_app_template_global(thread_pins, "thread_pins")


def scan_bounds(scan: Scan) -> tuple[list[float], list[float]]:
    """The box both web copies (as uploaded and repaired) fill, in the scan's coordinates."""
    storage = for_config(current_app.config)
    boxes = []
    for name in (scan.web_before_name, scan.web_after_name):
        if name:
            with storage.open(scan_key(name)) as stream:
                boxes.append(read_bounds(stream))
    return [min(b[0][i] for b in boxes) for i in range(3)], [max(b[1][i] for b in boxes) for i in range(3)]


def _on_scan(point, lo, hi) -> bool:
    """Whether a pin's point lies in the scan's box, give or take PIN_MARGIN of its diagonal."""
    margin = PIN_MARGIN * math.dist(lo, hi)
    return all(lo[i] - margin <= point[i] <= hi[i] + margin for i in range(3))


def _pin_view(sent, point, lo, hi):
    """The camera the pin reopens at: as sent ((camera, target) or None), when it is finite, near the scan
    and not on its target; else (typed without JS) looking down at the point from above."""
    diagonal = math.dist(lo, hi)
    centre = [(a + b) / 2 for a, b in zip(lo, hi, strict=True)]
    if sent is not None:
        camera, target = sent
        if (math.dist(camera, centre) <= 20 * diagonal and math.dist(target, centre) <= 2 * diagonal
                and math.dist(camera, target) > 1e-6 * diagonal):
            return camera, target
    return (point[0], point[1], point[2] + diagonal), point


@bp.post("/support/scans/<int:scan_id>/pins")
@login_required
def scan_pin(scan_id: int):
    scan = visible_or_404(Scan, scan_id)
    # A pin is a reply: only a scan in a ticket's thread the user sees can have one.
    ticket = Ticket.get_visible(scan.ticket_id, current_user) if scan.ticket_id is not None else None
    if ticket is None or not scan.web_after_name:
        abort(404)
    form = PinForm(prefix=f"pin{scan.id}")
    if form.validate_on_submit():
        lo, hi = scan_bounds(scan)
        point = form.point()
        if not _on_scan(point, lo, hi):
            form.x.errors = [gettext("This point is not on the scan: pick it on the model.")]
        else:
            camera, target = _pin_view(form.camera(), point, lo, hi)
            user = current_user._get_current_object()
            body = gettext("📍 on the scan: %(comment)s", comment=form.body.data.strip())
            try:
                with database.atomic():
                    result = tickets.add_reply(ticket, user, body, internal=form.internal.data)
                    ScanPin.create(message=result.message, scan=scan, x=point[0], y=point[1], z=point[2],
                                   camera_x=camera[0], camera_y=camera[1], camera_z=camera[2],
                                   target_x=target[0], target_y=target[1], target_z=target[2])
            except tickets.TransitionRefused as exc:
                form.body.errors = [str(exc)]
            else:
                hand_over()  # the reply's mail, now that its transaction has committed
                return see_other(url_for("support.detail", ticket_id=ticket.id) + f"#message-{result.message.id}")
    context = _detail_context(ticket)
    return render_template(DETAIL, failed_pin={"scan_id": scan.id, "form": form}, **context), 422


def scan_download_name(scan: Scan, kind: str, stored: str) -> str:
    """Repaired files are named after the ticket (or, for a scan uploaded on a case page, the case
    number) and date; the original keeps the name it came with."""
    if kind == "original":
        return scan.original_name
    extension = "." + stored.rsplit(".", 1)[-1]
    if scan.ticket_id is not None:
        handle = ticket_number(scan.ticket_id)
    else:
        # Case numbers may contain "/", which is no part of a file name.
        handle = scan.case.case_number.replace("/", "-")
    return f"{handle}_{scan.created_at:%Y-%m-%d}_scan{scan.id}_repaired{extension}"


# Uploads on a case page ----------------------------------------------------------------------------
# Streamed, checked and queued for repair exactly like a scan sent with a request (staging.StagedUploads).

CASE_SCANS = "scans/_case_scans.html"


def _scans_section(case, status=200, scan_error=None):
    """The Scans section alone (htmx), with a blank form or the upload's error."""
    body = render_template(CASE_SCANS, case=case, scans=Scan.of_case(case.id, acting_user()),
                           rerun_form=RerunForm(formdata=None), scan_error=scan_error)
    return body, status


@bp.post("/cases/<int:case_id>/scans")
@login_required
def upload_scan(case_id: int):
    # Whoever may see the case (its clinician, staff) may add scans to it; anyone else gets a 404.
    case = visible_or_404(Case, case_id)
    form = CaseScanForm()
    error = None
    status = 422
    if form.validate_on_submit():
        user = acting_user()
        try:
            with StagedUploads(current_app.config) as uploads:
                uploads.add_scan(form.scan.data)
                with database.atomic():
                    uploads.attach_to_case(case, user)  # audited there, like a scan sent with a request
        except UploadRefused as exc:
            error = str(exc)
            status = exc.status
        else:
            if is_htmx():
                return _scans_section(case)
            return see_other(url_for("cases.detail", case_id=case.id) + "#scans")
    else:
        error = "; ".join(str(e) for e in form.scan.errors) or gettext("Choose an STL or PLY file to upload.")
    if is_htmx():
        return _scans_section(case, status, error)
    return render_template(case_views.DETAIL, scan_error=error, **case_views._detail_context(case)), status

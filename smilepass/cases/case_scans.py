"""Scans uploaded on a case page. The upload is streamed, checked and queued for repair exactly like
a scan sent with a request (uploads.StagedUploads); the panels themselves, their polling, files and
re-runs are the support blueprint's scan views, which serve ticket and case scans alike."""
from flask import current_app, render_template, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from flask_babel import gettext

from ..db import database
from ..htmx import is_htmx, see_other
from ..scans import scans_of_case
from ..support.forms import RerunForm
from ..uploads import StagedUploads, UploadRefused
from . import bp
from ..i18n import lazy_gettext
from .lookup import acting_user, case_or_404
from .views import DETAIL, _detail_context

SCANS = "cases/_scans.html"


class CaseScanForm(FlaskForm):
    scan = FileField(lazy_gettext("Intraoral scan (STL or PLY)"),
                     validators=[FileRequired(lazy_gettext("Choose an STL or PLY file to upload."))])


def _scans_section(case, status=200, scan_error=None):
    """The Scans section alone (htmx), with a blank form or the upload's error."""
    body = render_template(SCANS, case=case, scans=scans_of_case(case.id, acting_user()),
                           rerun_form=RerunForm(formdata=None), scan_error=scan_error)
    return body, status


@bp.post("/<int:case_id>/scans")
@login_required
def upload_scan(case_id: int):
    # Whoever may see the case (its clinician, staff) may add scans to it; anyone else gets a 404.
    case = case_or_404(case_id)
    form = CaseScanForm()
    error = None
    if form.validate_on_submit():
        user = acting_user()
        try:
            with StagedUploads(current_app.config) as uploads:
                uploads.add_scan(form.scan.data)
                with database.atomic():
                    uploads.attach_to_case(case, user)  # audited there, like a scan sent with a request
        except UploadRefused as exc:
            error = str(exc)
        else:
            if is_htmx():
                return _scans_section(case)
            return see_other(url_for("cases.detail", case_id=case.id) + "#scans")
    else:
        error = "; ".join(str(e) for e in form.scan.errors) or gettext("Choose an STL or PLY file to upload.")
    if is_htmx():
        return _scans_section(case, 422, error)
    return render_template(DETAIL, scan_error=error, **_detail_context(case)), 422

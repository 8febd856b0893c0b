"""Export and erase pages on a case. Who may: admins export and erase any patient; the treating
clinician exports their own patient (they already see all of it, and access requests usually reach
the clinic that treats the patient). Support staff and other clinicians get a 404, like a missing
case. Both need the password typed again; refusals are audited too."""
import tempfile

from flask import Blueprint, abort, current_app, flash, render_template, send_file, url_for
from flask_babel import gettext
from flask_login import current_user, login_required

from .. import audit
from ..auth.guards import role_required, visible_or_404
from ..auth.security import verify_password
from ..cases.patient import limiter
from ..htmx import hx_redirect, page_or_block
from ..models import Case, Role
from ..storage import for_config
from .erase import erase_patient
from .export import export_patient
from .forms import EraseForm, ReauthForm
from .patients import cases_of_patient

bp = Blueprint("stewardship", __name__, url_prefix="/cases")

EXPORT = "stewardship/export.html"
ERASE = "stewardship/erase.html"


def _exportable_case(case_id: int) -> Case:
    """The case if the user is an admin or its treating clinician; 404 for anyone else."""
    case = visible_or_404(Case, case_id)
    if not (current_user.is_admin or case.clinician_id == current_user.id):
        abort(404)
    return case


def _password_ok(form) -> bool:
    return verify_password(current_user.password_hash, form.password.data or "")


@bp.get("/<int:case_id>/export")
@login_required
def export_form(case_id: int):
    case = _exportable_case(case_id)
    return render_template(
        EXPORT, case=case, cases=cases_of_patient(case, current_user), form=ReauthForm(formdata=None)
    )


def _wrong_password(response) -> bool:
    return response.status_code == 422


@bp.record_once
def _rate_limit_defaults(state):
    state.app.config.setdefault("EXPORT_PASSWORD_RATE_LIMIT", "10 per hour")


@bp.post("/<int:case_id>/export")
@login_required
# Per client address: the password prompt must not become a way to guess a signed-in user's password.
@limiter.limit(lambda: current_app.config["EXPORT_PASSWORD_RATE_LIMIT"], deduct_when=_wrong_password)
def export(case_id: int):
    case = _exportable_case(case_id)
    cases = cases_of_patient(case, current_user)
    form = ReauthForm()
    if form.validate_on_submit():
        if _password_ok(form):
            # Deleted as soon as it is closed (after the response is sent): patient data stays on
            # the server only while it streams out.
            archive = tempfile.TemporaryFile(prefix="smilepass-export-")
            summary = export_patient(cases, current_user, for_config(current_app.config), archive)
            audit.record("patient_export", case, f"cases {', '.join(str(c.id) for c in cases)}; requests "
                         f"{summary.requests}, scans {summary.scans}, files {summary.files}")
            archive.seek(0)
            response = send_file(archive, mimetype="application/zip", as_attachment=True,
                                 download_name=f"patient-export-case-{case.id}.zip")
            response.headers["Cache-Control"] = "no-store"
            return response
        audit.record("patient_export_refused", case, "wrong password")
        form.password.errors = [gettext("That is not your password. Nothing was exported.")]
    return page_or_block(EXPORT, "stewardship_form", 422, case=case, cases=cases, form=form)


@bp.get("/<int:case_id>/erase")
@role_required(Role.ADMIN)
def erase_form(case_id: int):
    case = visible_or_404(Case, case_id)
    return render_template(ERASE, case=case, cases=cases_of_patient(case, current_user), form=EraseForm(formdata=None))


@bp.post("/<int:case_id>/erase")
@role_required(Role.ADMIN)
def erase(case_id: int):
    case = visible_or_404(Case, case_id)
    cases = cases_of_patient(case, current_user)
    form = EraseForm()
    if form.validate_on_submit():
        if not _password_ok(form):
            audit.record("patient_erase_refused", case, "wrong password")
            form.password.errors = [gettext("That is not your password. Nothing was erased.")]
        elif form.confirm_number.data.strip() != case.case_number:
            form.confirm_number.errors = [gettext("This is not the case number shown above. Nothing was erased.")]
        else:
            result = erase_patient(cases, current_user._get_current_object(), current_app.config)
            # Nothing about the patient in the message: it is shown on the next page, and flashes
            # travel in the session cookie.
            flash(gettext("The patient was erased: %(cases)d case(s), %(scans)d scan(s) and %(shots)d screenshot(s) "
                          "deleted; %(requests)d request(s) kept without the patient's details.",
                          cases=len(result.case_ids), scans=result.scans, shots=result.screenshots,
                          requests=result.requests), "success")
            if result.ledger_error:
                flash(gettext("The erasure could not be written to the erasure ledger (%(reason)s), so restoring a "
                              "backup taken before it would bring the patient back. The server log holds the "
                              "line to add to the ledger once the instance folder is writable.",
                              reason=result.ledger_error), "error")
            return hx_redirect(url_for("cases.index"))
    return page_or_block(ERASE, "stewardship_form", 422, case=case, cases=cases, form=form)

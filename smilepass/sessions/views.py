"""My Account → Security: the signed-in sessions (browser, address, last seen), each with "Sign out",
and "Sign out everywhere else". Plain forms with CSRF, so they work without JavaScript."""
from flask import Blueprint, abort, flash, render_template, url_for
from flask_babel import gettext, ngettext
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from .. import audit, twofa
from ..htmx import see_other
from ..i18n import lazy_gettext
from . import current_id, describe_browser, end, end_all, open_sessions

bp = Blueprint("sessions", __name__, url_prefix="/account/security")

PAGE = "sessions/security.html"
# Which second factor a session passed (UserSession.second_factor).
FACTOR_LABELS = {"totp": lazy_gettext("Authenticator app"), "key": lazy_gettext("Security key"),
                 "recovery": lazy_gettext("Recovery code"), "trusted": lazy_gettext("Trusted browser"),
                 "none": lazy_gettext("Password only"), "": lazy_gettext("Second step pending")}


class SignOutForm(FlaskForm):
    pass


@bp.get("")
@login_required
def security():
    user = current_user._get_current_object()
    return render_template(PAGE, open_sessions=open_sessions(user), current_session_id=current_id(),
                           describe_browser=describe_browser, form=SignOutForm(), factors=twofa.summary(user),
                           factor_labels=FACTOR_LABELS)


@bp.post("/<int:session_id>/sign-out")
@login_required
def sign_out(session_id: int):
    SignOutForm().validate_on_submit()  # CSRF is checked app-wide
    user = current_user._get_current_object()
    if session_id == current_id():
        # This browser's own session: the ordinary sign-out says goodbye properly.
        abort(400)
    if not end(user, session_id):
        abort(404)
    audit.record("session_ended", user)
    flash(gettext("That session is signed out."), "info")
    return see_other(url_for("sessions.security"))


@bp.post("/sign-out-others")
@login_required
def sign_out_others():
    SignOutForm().validate_on_submit()
    user = current_user._get_current_object()
    ended = end_all(user, keep_id=current_id())
    twofa.forget_browsers(user)
    audit.record("sessions_ended", user, detail=f"count={ended}")
    flash(ngettext("%(num)d other session signed out.", "%(num)d other sessions signed out.", ended), "info")
    return see_other(url_for("sessions.security"))

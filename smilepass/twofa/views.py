"""The second step of sign-in, enrolment of an authenticator app, recovery codes and the admin's reset.

`gate` runs before every request: a signed-in session that has not passed its second step reaches only
the second step (or, when the policy requires a factor the user lacks, enrolment), signing out and static
files. Everything else, htmx partials and downloads included, answers a redirect there (htmx: HX-Redirect)."""
from urllib.parse import urlsplit

import segno
from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required

from .. import audit, htmx, sessions, twofa
from ..auth.guards import role_required, visible_or_404
from ..models import Role, User
from . import keys as security_keys
from .forms import CodeForm, EnrolForm, PlainForm

bp = Blueprint("twofa", __name__)

# Open to a session whose second step is pending: the step itself, signing out, and what pages load.
OPEN_BETWEEN_STEPS = {"twofa.challenge", "twofa.key_options", "twofa.key_verify", "auth.logout", "static",
                      "healthz"}
# Open, in addition, to a user whom the policy requires to enrol but who has no factor yet.
OPEN_FOR_ENROLMENT = {"twofa.enrol_app", "twofa.recovery_codes", "twofa.keys", "twofa.register_options",
                      "twofa.register_key"}


def _next_target() -> str | None:
    """The page to come back to after the second step: a GET of a full page, as a local path."""
    if request.method != "GET" or htmx.is_htmx():
        return None
    return request.full_path.rstrip("?")


def _safe_next(target: str | None) -> str:
    if (target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc
            and target.isprintable() and "\\" not in target):
        return target
    return url_for("support.index")


@bp.record_once
def _template_helpers(state):
    state.app.jinja_env.globals["second_step_pending"] = lambda: twofa.session_factor() not in twofa.PASSED


@bp.before_app_request
def gate():
    if request.endpoint in OPEN_BETWEEN_STEPS or not current_user.is_authenticated:
        return None
    if twofa.session_factor() in twofa.PASSED:
        return None
    user = current_user._get_current_object()
    if twofa.has_factor(user):
        if twofa.is_trusted(user, request.cookies.get(twofa.TRUST_COOKIE)):
            twofa.mark_passed("trusted")
            audit.record("twofa_passed", user, detail="trusted browser")
            return None
        return htmx.hx_redirect(url_for("twofa.challenge", next=_next_target()))
    if not twofa.required_for(user):
        twofa.mark_passed("none")
        return None
    if request.endpoint in OPEN_FOR_ENROLMENT:
        return None
    if _next_target() is not None:  # said once on the page, not on every refused partial
        flash(gettext("Your clinic requires two-factor sign-in for your role. Set up an authenticator app or a "
                      "security key to go on."), "info")
    return htmx.hx_redirect(url_for("twofa.enrol_app"))


def _passed(factor: str, trust: bool, target: str | None, as_json: bool = False):
    """This session passed its second step: on to the page it came for (a redirect, or for the security
    key's script JSON naming it), with the trust cookie when asked for."""
    user = current_user._get_current_object()
    twofa.mark_passed(factor)
    twofa.clear_failures(user)
    audit.record("twofa_passed", user, detail=factor)
    response = jsonify(redirect=_safe_next(target)) if as_json else redirect(_safe_next(target), 303)
    if trust:
        response.set_cookie(twofa.TRUST_COOKIE, twofa.trust_browser(user), max_age=twofa.TRUST_DAYS * 86400,
                            httponly=True, samesite="Lax", secure=current_app.config.get("SESSION_COOKIE_SECURE"))
    return response


@bp.route("/auth/two-factor", methods=["GET", "POST"])
@login_required
def challenge():
    user = current_user._get_current_object()
    target = request.args.get("next")
    if twofa.session_factor() in twofa.PASSED:
        return redirect(_safe_next(target), 303)
    if not twofa.has_factor(user):
        return redirect(url_for("support.index"), 303)  # the gate decides: enrolment or nothing to do
    form = CodeForm()
    locked_until = twofa.locked_until(user)
    status = 200
    if locked_until is None and form.validate_on_submit():
        factor = twofa.verify_code(user, form.code.data)
        if factor:
            return _passed(factor, form.trust.data, target)
        locked_until = twofa.record_failure(user, "code")
        if locked_until is None:
            form.code.errors.append(gettext("That code is not right (or was already used). Try the current one."))
        status = 422 if locked_until is None else 429
    elif request.method == "POST":
        status = 429 if locked_until else 422
    return render_template("twofa/challenge.html", form=form, locked_until=locked_until,
                           has_totp=twofa.has_totp(user), has_keys=bool(twofa.keys_of(user)),
                           next=target or ""), status


# Enrolment ---------------------------------------------------------------------------------------

@bp.route("/account/two-factor/app", methods=["GET", "POST"])
@login_required
def enrol_app():
    user = current_user._get_current_object()
    secret = twofa.pending_totp_secret(user)
    if secret is None:
        flash(gettext("An authenticator app is already set up. Remove it first to set up another."), "info")
        return redirect(url_for("sessions.security"), 303)
    form = EnrolForm()
    status = 200
    if form.validate_on_submit():
        if twofa.confirm_totp(user, form.code.data):
            first_factor = twofa.recovery_codes_left(user) == 0
            if twofa.session_factor() not in twofa.PASSED or twofa.session_factor() == "none":
                twofa.mark_passed("totp")
            flash(gettext("Your authenticator app is set up. Other trusted browsers must confirm again."), "success")
            if first_factor:
                return _show_new_recovery_codes(user)
            return redirect(url_for("sessions.security"), 303)
        form.code.errors.append(gettext("That code does not match. Check the clock of your phone and try the "
                                        "current code."))
        status = 422
    elif request.method == "POST":
        status = 422
    uri = twofa.pending_secret_uri(user, secret)
    qr = segno.make(uri, error="m").svg_data_uri(scale=4, border=2)
    return render_template("twofa/enrol_app.html", form=form, secret=" ".join(secret[i:i + 4]
                           for i in range(0, len(secret), 4)), qr=qr), status


def _last_required_factor(user: User) -> bool:
    """Whether removing one factor would leave a user whom the policy requires without any: refused."""
    if twofa.required_for(user) and twofa.factor_count(user) <= 1:
        flash(gettext("Your clinic requires a second factor for your role: add another before removing this "
                      "one."), "error")
        return True
    return False


@bp.post("/account/two-factor/app/remove")
@login_required
def remove_app():
    PlainForm().validate_on_submit()
    user = current_user._get_current_object()
    if not twofa.has_totp(user):
        abort(404)
    if _last_required_factor(user):
        return htmx.see_other(url_for("sessions.security"))
    twofa.remove_totp(user)
    flash(gettext("The authenticator app is removed."), "info")
    return htmx.see_other(url_for("sessions.security"))


# Recovery codes ----------------------------------------------------------------------------------

def _show_new_recovery_codes(user: User):
    codes = twofa.new_recovery_codes(user)
    if sessions.stash("recovery_codes", codes):
        return redirect(url_for("twofa.recovery_codes"), 303)
    # Without the stash (Redis down) the codes can only be shown right now.
    return render_template("twofa/recovery_codes.html", codes=codes)


@bp.post("/account/two-factor/recovery-codes")
@login_required
def regenerate_recovery_codes():
    PlainForm().validate_on_submit()
    user = current_user._get_current_object()
    if not twofa.has_factor(user):
        abort(404)
    flash(gettext("New recovery codes are made; the old ones no longer work."), "info")
    return _show_new_recovery_codes(user)


@bp.get("/account/two-factor/recovery-codes")
@login_required
def recovery_codes():
    codes = sessions.take("recovery_codes")
    if not codes:
        flash(gettext("Recovery codes are shown only once. Make new ones if you did not keep them."), "info")
        return redirect(url_for("sessions.security"), 303)
    return render_template("twofa/recovery_codes.html", codes=codes)


# Security keys (WebAuthn) --------------------------------------------------------------------------

def _json_options(options: str):
    response = current_app.response_class(options, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/account/two-factor/keys")
@login_required
def keys():
    user = current_user._get_current_object()
    return render_template("twofa/keys.html", keys=twofa.keys_of(user), form=PlainForm(),
                           name_max=security_keys.NAME_MAX)


@bp.post("/account/two-factor/keys/options")
@login_required
def register_options():
    return _json_options(security_keys.registration_options(current_user._get_current_object()))


@bp.post("/account/two-factor/keys")
@login_required
def register_key():
    user = current_user._get_current_object()
    body = request.get_json(silent=True) or {}
    try:
        security_keys.register(user, body.get("credential"), str(body.get("name") or ""))
    except security_keys.KeyRefused as exc:
        message = (gettext("Give the key a name, e.g. “Blue key” or “Laptop”.") if str(exc) == "name"
                   else gettext("The key could not be registered. Try again."))
        return jsonify(error=message), 422
    if twofa.session_factor() not in twofa.PASSED or twofa.session_factor() == "none":
        twofa.mark_passed("key")
    flash(gettext("The security key is registered."), "success")
    if twofa.recovery_codes_left(user) == 0:
        codes = twofa.new_recovery_codes(user)
        if sessions.stash("recovery_codes", codes):
            return jsonify(redirect=url_for("twofa.recovery_codes"))
    return jsonify(redirect=url_for("twofa.keys"))


@bp.post("/account/two-factor/keys/<int:key_id>/remove")
@login_required
def remove_key(key_id: int):
    PlainForm().validate_on_submit()
    user = current_user._get_current_object()
    if not any(key.id == key_id for key in twofa.keys_of(user)):
        abort(404)  # not this user's key, or gone already
    if _last_required_factor(user):
        return htmx.see_other(url_for("twofa.keys"))
    if not security_keys.remove(user, key_id):
        abort(404)
    flash(gettext("The security key is removed."), "info")
    return htmx.see_other(url_for("twofa.keys"))


@bp.post("/auth/two-factor/key/options")
@login_required
def key_options():
    user = current_user._get_current_object()
    if twofa.locked_until(user) or not twofa.keys_of(user):
        abort(429 if twofa.locked_until(user) else 404)
    return _json_options(security_keys.authentication_options(user))


@bp.post("/auth/two-factor/key")
@login_required
def key_verify():
    user = current_user._get_current_object()
    if twofa.locked_until(user):
        abort(429)
    body = request.get_json(silent=True) or {}
    try:
        security_keys.authenticate(user, body.get("credential"))
    except security_keys.KeyRefused:
        twofa.record_failure(user, "security key")
        return jsonify(error=gettext("The security key was not accepted.")), 422
    return _passed("key", body.get("trust") is True, request.args.get("next"), as_json=True)


# Admin reset -------------------------------------------------------------------------------------

@bp.post("/admin/users/<int:user_id>/reset-2fa")
@role_required(Role.ADMIN)
def admin_reset(user_id: int):
    PlainForm().validate_on_submit()
    user = visible_or_404(User, user_id)
    twofa.reset(user, current_user._get_current_object(), how="admin")
    flash(gettext("%(email)s: second factors removed; the account is signed out everywhere.", email=user.email),
          "info")
    if user.id == current_user.id:
        return redirect(url_for("auth.login"), 303)
    return htmx.see_other(url_for("admin.users"))

"""Sign-in, sign-out, password reset and password change."""
import datetime as dt
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import force_locale, gettext
from flask_login import current_user, login_required, login_user, logout_user

from .. import audit, htmx, sessions, twofa
from ..cases.patient import limiter
from ..db import database
from ..i18n import current_language, lazy_gettext
from ..models import PasswordReset, User, normalize_email, utcnow
from ..notifications.outbox import queue_mail
from .forms import ChangePasswordForm, ForgotForm, LoginForm, NewPasswordForm
from .security import Throttle, burn_verify_time, hash_password, new_session_stamp, verify_password
from .tokens import new_token, token_hash

bp = Blueprint("auth", __name__, url_prefix="/auth")

# Per client address, on top of the per-email lockout: one address trying many emails, or asking for
# reset mails in bulk, is slowed down whichever addresses it names. Only failed sign-ins count, so a
# clinic behind one shared address signs in every morning as usual.
RATE_LIMITS = {"LOGIN_RATE_LIMIT": "20 per 10 minutes", "FORGOT_RATE_LIMIT": "10 per hour",
               "FORGOT_EMAIL_RATE_LIMIT": "3 per hour"}


@bp.record_once
def _rate_limit_defaults(state):
    for key, value in RATE_LIMITS.items():
        state.app.config.setdefault(key, value)


def _reset_email_key() -> str:
    return "forgot-email:" + normalize_email(request.form.get("email", ""))


def _failed_sign_in(response) -> bool:
    return response.status_code != 303

SIGN_IN_FAILED = lazy_gettext("That email and password do not match an account.")


def _safe_next(target: str | None) -> str:
    # Only local paths: an open redirect after sign-in would make phishing easy. No control characters
    # (a CR/LF cannot go into a Location header) and no backslash (browsers read it as a slash, so a
    # slash and a backslash would lead to another host).
    if (target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc
            and target.isprintable() and "\\" not in target):
        return target
    return url_for("support.index")


# What someone who must replace a temporary password may still open: the Password page itself, signing
# out, and what pages load (styles, scripts).
OPEN_UNTIL_PASSWORD_CHANGED = {"auth.change_password", "auth.logout", "static", "healthz"}


@bp.before_app_request
def require_own_password():
    """An account with a temporary password (set by an admin) sees nothing but the Password page until
    its owner has chosen a password nobody else knows."""
    if (not current_user.is_authenticated or not current_user.password_change_required
            or request.endpoint in OPEN_UNTIL_PASSWORD_CHANGED):
        return None
    flash(gettext("Your account has a temporary password. Choose your own to go on."), "info")
    return htmx.hx_redirect(url_for("auth.change_password"))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"], deduct_when=_failed_sign_in)
def login():
    if current_user.is_authenticated:
        return redirect(url_for("support.index"))
    form = LoginForm()
    expired = session.pop("expired", False)
    unsaved = session.pop("unsaved", False) if request.method == "GET" else False
    locked_until = None
    status = 200
    if form.validate_on_submit():
        email = normalize_email(form.email.data)
        locked_until = Throttle.locked_until(email)
        if locked_until is None:
            user = User.by_email(email)
            # The same password-hash work for every outcome: an unknown or deactivated account must not
            # answer faster than a wrong password, or timing tells which accounts exist.
            if user is None:
                burn_verify_time(form.password.data)
                password_ok = False
            else:
                password_ok = verify_password(user.password_hash, form.password.data)
            if user and user.is_active and password_ok:
                Throttle.clear(email)
                user.last_login_at = utcnow()
                user.save()
                session.clear()
                login_user(user)
                sessions.start(user)
                audit.record("login", user, actor=user)
                return redirect(_safe_next(request.args.get("next")), 303)
            locked_until = Throttle.record_failure(email)
            audit.record("login_failed", user, detail=email, actor=user)
            if locked_until:
                audit.record("account_locked", user, detail=email, actor=user)
            else:
                form.password.errors.append(str(SIGN_IN_FAILED))
        status = 422 if locked_until is None else 429
    elif request.method == "POST":
        status = 422
    return render_template(
        "auth/login.html", form=form, expired=expired, unsaved=unsaved, locked_until=locked_until
    ), status


@bp.post("/logout")
@login_required
def logout():
    audit.record("logout", current_user._get_current_object())
    sessions.end_current()
    logout_user()
    session.clear()
    flash(gettext("You are signed out."), "info")
    return redirect(url_for("auth.login"), 303)


@bp.route("/forgot", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["FORGOT_RATE_LIMIT"], methods=["POST"])
@limiter.limit(lambda: current_app.config["FORGOT_EMAIL_RATE_LIMIT"], methods=["POST"], key_func=_reset_email_key)
def forgot():
    form = ForgotForm()
    if form.validate_on_submit():
        user = User.by_email(form.email.data)
        if user and user.is_active:
            token, digest = new_token()
            now = utcnow()
            with database.atomic():
                PasswordReset.create(
                    user=user,
                    token_hash=digest,
                    expires_at=now + dt.timedelta(seconds=current_app.config["RESET_TOKEN_SECONDS"]),
                )
                audit.record("password_reset_requested", user, actor=user)
            link = current_app.config["BASE_URL"].rstrip("/") + url_for("auth.reset", token=token)
            # In the account's language, else the language the form was filled in.
            with force_locale(user.language or current_language()):
                queue_mail(
                    user.email,
                    gettext("Reset your SmilePass password"),
                    gettext("Someone asked to reset the password of your SmilePass account.") + "\n\n"
                    + gettext("Open this link within one hour to choose a new password (it works once):")
                    + f"\n{link}\n\n"
                    + gettext("If it was not you, ignore this message; your password stays as it is."),
                )
        # Same answer whether or not the address has an account.
        flash(
            gettext("If that address has an account, a reset link is on its way. It works once, for one hour."), "info"
        )
        return redirect(url_for("auth.login"), 303)
    return render_template("auth/forgot.html", form=form), 422 if request.method == "POST" else 200


def _usable_reset(token: str):
    reset = PasswordReset.get_or_none(PasswordReset.token_hash == token_hash(token))
    if reset is None or reset.used_at is not None or reset.expires_at <= utcnow():
        return None
    return reset


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset(token: str):
    reset = _usable_reset(token)
    if reset is None:
        return render_template("auth/reset_invalid.html"), 404
    user = reset.user
    form = NewPasswordForm(email=user.email)
    if form.validate_on_submit():
        with database.atomic():
            # Mark used first and only if still unused, so two racing submissions cannot both win.
            claimed = (
                PasswordReset.update(used_at=utcnow())
                .where((PasswordReset.id == reset.id) & PasswordReset.used_at.is_null())
                .execute()
            )
            if not claimed:
                return render_template("auth/reset_invalid.html"), 404
            _set_password(user, form.password.data)
            sessions.end_all(user)
            Throttle.clear(user.email)
            audit.record("password_reset", user, actor=user)
        logout_user()
        session.clear()
        flash(gettext("Your password is changed. Sign in with the new one."), "info")
        return redirect(url_for("auth.login"), 303)
    return render_template("auth/reset.html", form=form, token=token), 422 if request.method == "POST" else 200


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password():
    user = current_user._get_current_object()
    form = ChangePasswordForm(email=user.email)
    if form.validate_on_submit():
        if not verify_password(user.password_hash, form.current.data):
            form.current.errors.append(gettext("That is not your current password."))
        elif user.password_change_required and form.password.data == form.current.data:
            form.password.errors.append(gettext("Choose a password other than the temporary one."))
        else:
            with database.atomic():
                _set_password(user, form.password.data)
                sessions.end_all(user, keep_id=sessions.current_id())
                audit.record("password_changed", user)
            # This session goes on with the new stamp; every other one ends.
            login_user(user)
            flash(gettext("Your password is changed. Other sessions are signed out."), "info")
            return redirect(url_for("support.index"), 303)
    return render_template("auth/password.html", form=form), 422 if request.method == "POST" else 200


def _set_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.session_stamp = new_session_stamp()
    user.password_change_required = False  # chosen by its owner now (a reset link reaches only them)
    user.save()
    twofa.forget_browsers(user)  # a new password: every browser trusted for the second step must ask again

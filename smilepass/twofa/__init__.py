"""Two-factor sign-in (issue 17): the rules behind the second step.

After the password, a session is pending (UserSession.second_factor == "") until it passes a second factor;
`gate` (views.py) lets a pending session reach nothing but the second step. Factors per user, several at
once: an authenticator app (TOTP, RFC 6238, one step either side, each step once), security keys
(webauthn_keys.py) and ten single-use recovery codes. Wrong codes count per user: LOCK_AFTER of them lock
the second step for LOCK_MINUTES and the user is mailed. Secrets at rest: the TOTP key is encrypted with a
key derived from SECRET_KEY; recovery codes and trust tokens are kept as HMACs keyed with it."""
import base64
import datetime as dt
import hashlib
import hmac
import secrets
import time

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from flask import current_app, g
from flask_babel import force_locale, gettext
from itsdangerous import BadSignature, URLSafeSerializer

from .. import audit, settings
from ..db import database
from ..i18n import current_language
from ..models import RecoveryCode, SecurityKey, TrustedBrowser, TwoFactor, User, UserSession, utcnow
from ..notifications.outbox import queue_mail
from ..sessions import current_id

LOCK_AFTER = 5
LOCK_MINUTES = 20
STEP_SECONDS = 30
RECOVERY_CODE_COUNT = 10
TRUST_DAYS = 30
TRUST_COOKIE = "smilepass_trusted"
ISSUER = "SmilePass"
# What a session's second_factor says once it passed (or needed none).
PASSED = {"totp", "key", "recovery", "trusted", "none"}
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread


# Secrets at rest ---------------------------------------------------------------------------------

def _derived_key(purpose: str) -> bytes:
    return hashlib.sha256(f"smilepass-{purpose}:".encode() + current_app.config["SECRET_KEY"].encode()).digest()


def _fernet() -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_derived_key("totp-secret")))


def _keyed_hash(purpose: str, text: str) -> str:
    return hmac.new(_derived_key(purpose), text.encode(), hashlib.sha256).hexdigest()


# Per-user row ----------------------------------------------------------------------------------

def row_for(user: User) -> TwoFactor:
    row = TwoFactor.get_or_none(TwoFactor.user == user.id)
    if row is None:
        TwoFactor.insert(user=user.id, updated_at=utcnow()).on_conflict_ignore().execute()
        row = TwoFactor.get(TwoFactor.user == user.id)
    return row


def has_totp(user: User) -> bool:
    row = TwoFactor.get_or_none(TwoFactor.user == user.id)
    return bool(row and row.totp_confirmed_at and row.totp_secret)


def keys_of(user: User) -> list[SecurityKey]:
    return list(SecurityKey.select().where(SecurityKey.user == user.id).order_by(SecurityKey.id))


def has_factor(user: User) -> bool:
    """Whether the user enrolled an authenticator app or a security key (recovery codes alone are not a
    factor: they are the way back when one is lost)."""
    return has_totp(user) or SecurityKey.select().where(SecurityKey.user == user.id).exists()


def factor_count(user: User) -> int:
    return int(has_totp(user)) + SecurityKey.select().where(SecurityKey.user == user.id).count()


def drop_recovery_codes_without_factor(user: User) -> None:
    """Recovery codes stand in for a factor; with the last factor gone they go too."""
    if not has_factor(user):
        RecoveryCode.delete().where(RecoveryCode.user == user.id).execute()


def recovery_codes_left(user: User) -> int:
    return RecoveryCode.select().where((RecoveryCode.user == user.id) & RecoveryCode.used_at.is_null()).count()


def summary(user: User) -> dict:
    """What My Account → Security shows of the user's second factors."""
    totp = has_totp(user)
    keys = keys_of(user)
    return {"totp": totp, "security_keys": keys, "any": totp or bool(keys), "recovery_left": recovery_codes_left(user),
            "trusted": trusted_count(user), "required": required_for(user)}


# Policy ------------------------------------------------------------------------------------------

def required_for(user: User) -> bool:
    """Whether the clinic's policy (Admin → Settings) makes this user's role use a second factor."""
    if current_app.config.get("TWOFA_POLICY_OFF"):
        return False
    return settings.get(f"twofa_{user.role}") == "required"


# The session's state -----------------------------------------------------------------------------

def session_factor() -> str:
    """This request's session: "" while the second step is pending, else the factor it passed."""
    return g.get("second_factor", "")


def mark_passed(factor: str) -> None:
    row_id = current_id()
    if row_id is not None:
        UserSession.update(second_factor=factor).where(UserSession.id == row_id).execute()
    g.second_factor = factor


# Authenticator app -------------------------------------------------------------------------------

def pending_totp_secret(user: User) -> str | None:
    """The key being enrolled (shown as QR code and text until the first code is right), made on first
    call and kept encrypted; None when an app is already on (remove it first)."""
    row = row_for(user)
    if row.totp_confirmed_at:
        return None
    secret = _secret_of(row)
    if secret is None:
        secret = pyotp.random_base32()
        row.totp_secret = _fernet().encrypt(secret.encode()).decode()
        row.updated_at = utcnow()
        row.save()
    return secret


def pending_secret_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def _secret_of(row: TwoFactor) -> str | None:
    if not row.totp_secret:
        return None
    try:
        return _fernet().decrypt(row.totp_secret.encode()).decode()
    except InvalidToken:  # SECRET_KEY changed: the app must be enrolled again
        return None


def _matching_step(secret: str, code: str) -> int | None:
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now_step = int(time.time()) // STEP_SECONDS
    for step in (now_step - 1, now_step, now_step + 1):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def _claim_step(user: User, step: int) -> bool:
    """Take this time step for the user: False when it (or a later one) was already used (a replay)."""
    return bool(TwoFactor.update(totp_last_step=step, updated_at=utcnow())
                .where((TwoFactor.user == user.id) & (TwoFactor.totp_last_step < step)).execute())


def confirm_totp(user: User, code: str) -> bool:
    """Turn the app on when the code matches the key shown at enrolment."""
    secret = pending_totp_secret(user)
    step = _matching_step(secret, code) if secret else None
    if step is None:
        return False
    with database.atomic():
        TwoFactor.update(totp_confirmed_at=utcnow(), totp_last_step=step, updated_at=utcnow()).where(
            TwoFactor.user == user.id).execute()
        forget_browsers(user)
        audit.record("twofa_enrolled", user, detail="authenticator app")
    return True


def check_totp(user: User, code: str) -> bool:
    row = TwoFactor.get_or_none(TwoFactor.user == user.id)
    if row is None or not row.totp_confirmed_at:
        return False
    secret = _secret_of(row)
    step = _matching_step(secret, code) if secret else None
    return step is not None and _claim_step(user, step)


def remove_totp(user: User) -> None:
    with database.atomic():
        TwoFactor.update(totp_secret="", totp_confirmed_at=None, updated_at=utcnow()).where(
            TwoFactor.user == user.id).execute()
        forget_browsers(user)
        drop_recovery_codes_without_factor(user)
        audit.record("twofa_removed", user, detail="authenticator app")


# Recovery codes ----------------------------------------------------------------------------------

def _normal_recovery(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def new_recovery_codes(user: User) -> list[str]:
    """Ten fresh codes (shown once); the old ones stop working."""
    codes = ["".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10)) for _ in range(RECOVERY_CODE_COUNT)]
    now = utcnow()
    with database.atomic():
        RecoveryCode.delete().where(RecoveryCode.user == user.id).execute()
        RecoveryCode.insert_many([{"user": user.id, "code_hash": _keyed_hash("recovery", code), "created_at": now}
                                  for code in codes]).execute()
        audit.record("twofa_recovery_codes", user)
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def use_recovery_code(user: User, code: str) -> bool:
    code = _normal_recovery(code)
    if len(code) != 10:
        return False
    digest = _keyed_hash("recovery", code)
    used = (RecoveryCode.update(used_at=utcnow())
            .where((RecoveryCode.user == user.id) & (RecoveryCode.code_hash == digest) & RecoveryCode.used_at.is_null())
            .execute())
    if used:
        audit.record("twofa_recovery_used", user, detail=f"left={recovery_codes_left(user)}", actor=user)
    return bool(used)


# The second step's lockout -------------------------------------------------------------------------

def locked_until(user: User) -> dt.datetime | None:
    row = TwoFactor.get_or_none(TwoFactor.user == user.id)
    if row and row.locked_until and row.locked_until > utcnow():
        return row.locked_until
    return None


def record_failure(user: User, how: str) -> dt.datetime | None:
    """Count a wrong code; at LOCK_AFTER the second step locks for LOCK_MINUTES and the user is mailed.
    Returns the lock's end when this failure locked it."""
    now = utcnow()
    with database.atomic():
        row = row_for(user)
        if row.locked_until and row.locked_until <= now:
            row.failures, row.locked_until = 0, None
        row.failures += 1
        row.updated_at = now
        locked = row.failures >= LOCK_AFTER
        if locked:
            row.locked_until = now + dt.timedelta(minutes=LOCK_MINUTES)
        row.save()
        audit.record("twofa_failed", user, detail=how, actor=user)
        if locked:
            audit.record("twofa_locked", user, detail=f"{LOCK_MINUTES} minutes", actor=user)
            _mail(user, _lock_mail)
    return row.locked_until if locked else None


def clear_failures(user: User) -> None:
    TwoFactor.update(failures=0, locked_until=None).where(TwoFactor.user == user.id).execute()


def _mail(user: User, texts) -> None:
    """Mail the user in their account's language: texts() gives (subject, body), translated inside."""
    with force_locale(user.language or current_language()):
        subject, body = texts()
        queue_mail(user.email, subject, body)


def verify_code(user: User, code: str) -> str | None:
    """The factor a typed code passes ("totp" or "recovery"), or None."""
    if check_totp(user, code):
        return "totp"
    if use_recovery_code(user, code):
        return "recovery"
    return None


# Trusted browsers --------------------------------------------------------------------------------

def _trust_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="smilepass-trusted-browser")


def trust_browser(user: User) -> str:
    """A new trust token for this browser; returns the cookie value (signed, bound to the user)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    TrustedBrowser.create(user=user.id, token_hash=_keyed_hash("trust", token), created_at=now,
                          expires_at=now + dt.timedelta(days=TRUST_DAYS))
    audit.record("twofa_browser_trusted", user)
    return _trust_serializer().dumps({"u": user.id, "t": token})


def is_trusted(user: User, cookie: str | None) -> bool:
    if not cookie:
        return False
    try:
        data = _trust_serializer().loads(cookie)
    except BadSignature:
        return False
    if not isinstance(data, dict) or data.get("u") != user.id or not isinstance(data.get("t"), str):
        return False
    return TrustedBrowser.select().where(
        (TrustedBrowser.user == user.id) & (TrustedBrowser.token_hash == _keyed_hash("trust", data["t"]))
        & (TrustedBrowser.expires_at > utcnow())).exists()


def forget_browsers(user: User) -> int:
    """Revoke every trusted browser of the user (a password change, a factor change, signing out
    everywhere)."""
    return TrustedBrowser.delete().where(TrustedBrowser.user == user.id).execute()


def trusted_count(user: User) -> int:
    return TrustedBrowser.select().where((TrustedBrowser.user == user.id)
                                         & (TrustedBrowser.expires_at > utcnow())).count()


# Admin reset -------------------------------------------------------------------------------------

def reset(user: User, actor: User | None, how: str = "") -> None:
    """Remove every second factor of the user (a lost phone): audited, the user is mailed, their sessions
    end and trusted browsers are forgotten."""
    with database.atomic():
        TwoFactor.delete().where(TwoFactor.user == user.id).execute()
        SecurityKey.delete().where(SecurityKey.user == user.id).execute()
        RecoveryCode.delete().where(RecoveryCode.user == user.id).execute()
        forget_browsers(user)
        UserSession.delete().where(UserSession.user == user.id).execute()
        audit.record("twofa_reset", user, detail=how, actor=actor)
        _mail(user, _reset_mail)


def _lock_mail() -> tuple[str, str]:
    return (gettext("SmilePass: two-factor sign-in locked"),
            gettext("Someone signed in to your SmilePass account with your password but entered %(count)s wrong "
                    "second-factor codes, so the second step is locked for %(minutes)s minutes.",
                    count=LOCK_AFTER, minutes=LOCK_MINUTES) + "\n\n"
            + gettext("If it was not you, change your password now and tell your administrator."))


def _reset_mail() -> tuple[str, str]:
    return (gettext("SmilePass: your two-factor sign-in was reset"),
            gettext("An administrator removed the second factors of your SmilePass account. At your next sign-in "
                    "you may be asked to set one up again.") + "\n\n"
            + gettext("If you did not ask for this, tell your administrator."))

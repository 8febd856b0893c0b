"""Passwords, sign-in throttling and session stamps (secret links' tokens are in tokens.py)."""
import datetime as dt
import secrets
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import gettext
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from ..models import LoginThrottle, normalize_email, utcnow

_hasher = PasswordHasher()
PASSWORD_MIN = 8
PASSWORD_MAX = 128
# 30,000 most common passwords from leaks, as the zxcvbn package ships them.
_COMMON = frozenset(FREQUENCY_LISTS["passwords"])


def normalize_password(password: str) -> str:
    """NFKC, as NIST SP 800-63B asks: the same password typed on another keyboard or system (a
    precomposed or combining accent, full-width letters) is the same password."""
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str) -> str:
    return _hasher.hash(normalize_password(password))


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, normalize_password(password))
    except (VerificationError, InvalidHashError):
        return False


# Verifying against a throwaway hash for unknown emails keeps the response time the same as for
# a wrong password, so timing does not tell which addresses have accounts.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def burn_verify_time(password: str) -> None:
    verify_password(_DUMMY_HASH, password)


def password_problem(password: str, email: str = "") -> str | None:
    """Why this password is refused, or None. Case is kept and nothing is truncated; the rules apply to
    the password as it is stored (normalised)."""
    password = normalize_password(password)
    if len(password) < PASSWORD_MIN:
        return gettext("Use at least %(count)s characters.", count=PASSWORD_MIN)
    if len(password) > PASSWORD_MAX:
        return gettext("Use at most %(count)s characters.", count=PASSWORD_MAX)
    if password.lower() in _COMMON:
        return gettext("This password is on a list of common passwords; choose another.")
    if email and password.lower() == normalize_email(email):
        return gettext("The password must not be your email address.")
    return None


def new_session_stamp() -> str:
    return secrets.token_hex(16)


class Throttle:
    """Failed sign-ins per email. After LOCKOUT_ATTEMPTS failures the address is locked for
    LOCKOUT_SECONDS, whether or not an account exists."""

    @staticmethod
    def locked_until(email: str) -> dt.datetime | None:
        row = LoginThrottle.get_or_none(LoginThrottle.email == normalize_email(email))
        if row and row.locked_until and row.locked_until > utcnow():
            return row.locked_until
        return None

    @staticmethod
    def record_failure(email: str) -> dt.datetime | None:
        """Count a failure; returns the lock's end when this failure locks the address."""
        email = normalize_email(email)
        now = utcnow()
        row, _ = LoginThrottle.get_or_create(email=email)
        if row.locked_until and row.locked_until <= now:
            row.failures = 0
            row.locked_until = None
        row.failures += 1
        row.updated_at = now
        if row.failures >= current_app.config["LOCKOUT_ATTEMPTS"]:
            row.locked_until = now + dt.timedelta(seconds=current_app.config["LOCKOUT_SECONDS"])
        row.save()
        return row.locked_until

    @staticmethod
    def clear(email: str) -> None:
        LoginThrottle.delete().where(LoginThrottle.email == normalize_email(email)).execute()

"""Passwords, sign-in throttling and tokens."""
import datetime as dt
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from zxcvbn.frequency_lists import FREQUENCY_LISTS
from flask_babel import gettext

from .models import LoginThrottle, normalize_email, utcnow

_hasher = PasswordHasher()
PASSWORD_MIN = 8
PASSWORD_MAX = 128
# 30,000 most common passwords from leaks, as the zxcvbn package ships them.
_COMMON = frozenset(FREQUENCY_LISTS["passwords"])


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# Verifying against a throwaway hash for unknown emails keeps the response time the same as for
# a wrong password, so timing does not tell which addresses have accounts.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def burn_verify_time(password: str) -> None:
    verify_password(_DUMMY_HASH, password)


def password_problem(password: str, email: str = "") -> str | None:
    """Why this password is refused, or None. Case is kept and nothing is truncated."""
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


def new_token() -> tuple[str, str]:
    """A URL-safe token (256 bits) and the hash to store in its place."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


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

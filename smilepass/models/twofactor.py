"""Second factors (issue 17): an authenticator app (TOTP), security keys (WebAuthn), single-use recovery
codes and browsers trusted for 30 days. Secrets are never stored in the clear: the TOTP key is encrypted
with a key derived from SECRET_KEY, recovery codes and trust tokens are kept as keyed hashes."""
import peewee as pw

from .accounts import User
from .base import BaseModel, utcnow


class TwoFactor(BaseModel):
    """One row per user who enrolled a factor or failed a second step: the authenticator app and the
    second step's own lockout."""
    user = pw.ForeignKeyField(User, primary_key=True, backref="two_factor", on_delete="CASCADE")
    totp_secret = pw.TextField(default="")  # Fernet token of the base32 key; "" for none
    totp_confirmed_at = pw.DateTimeField(null=True)  # on once the first code was right
    totp_last_step = pw.BigIntegerField(default=0)  # the last time step accepted: replay refused
    failures = pw.IntegerField(default=0)
    locked_until = pw.DateTimeField(null=True)
    updated_at = pw.DateTimeField(default=utcnow)


class SecurityKey(BaseModel):
    """A WebAuthn credential (security key or passkey) registered by its user."""
    user = pw.ForeignKeyField(User, backref="security_keys", on_delete="CASCADE")
    name = pw.CharField(max_length=60)
    credential_id = pw.CharField(max_length=400, unique=True)  # base64url
    public_key = pw.TextField()  # base64url of the COSE key
    sign_count = pw.BigIntegerField(default=0)
    created_at = pw.DateTimeField(default=utcnow)
    last_used_at = pw.DateTimeField(null=True)


class RecoveryCode(BaseModel):
    user = pw.ForeignKeyField(User, backref="recovery_codes", on_delete="CASCADE")
    code_hash = pw.CharField(max_length=64)
    used_at = pw.DateTimeField(null=True)
    created_at = pw.DateTimeField(default=utcnow)


class TrustedBrowser(BaseModel):
    """"Trust this browser for 30 days": the cookie carries a random token, only its keyed hash is here."""
    user = pw.ForeignKeyField(User, backref="trusted_browsers", on_delete="CASCADE")
    token_hash = pw.CharField(max_length=64, unique=True)
    created_at = pw.DateTimeField(default=utcnow)
    expires_at = pw.DateTimeField()

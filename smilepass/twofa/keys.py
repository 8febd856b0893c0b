"""Security keys and passkeys (WebAuthn, the `webauthn` package): registration and the second step.

The relying party is the configured BASE_URL: its host name is the RP id, its origin the only origin
accepted. Each ceremony's challenge is kept in the (signed) session cookie and taken when the answer
arrives, so it works once. User verification is preferred, not required (plain security keys have none)."""
import json
from urllib.parse import urlsplit

from flask import current_app, session
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from .. import audit
from ..db import database
from ..models import SecurityKey, User, utcnow
from . import ISSUER, drop_recovery_codes_without_factor, forget_browsers

CHALLENGE = "webauthn_challenge"
NAME_MAX = 60


class KeyRefused(ValueError):
    pass


def _relying_party() -> tuple[str, str]:
    """(RP id, origin) from BASE_URL."""
    parts = urlsplit(current_app.config["BASE_URL"])
    return parts.hostname or "localhost", f"{parts.scheme}://{parts.netloc}"


def _descriptors(user: User) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(id=base64url_to_bytes(key.credential_id))
            for key in SecurityKey.select().where(SecurityKey.user == user.id)]


def registration_options(user: User) -> str:
    rp_id, _ = _relying_party()
    options = generate_registration_options(
        rp_id=rp_id, rp_name=ISSUER, user_name=user.email, user_id=f"smilepass-user-{user.id}".encode(),
        user_display_name=user.display_name, exclude_credentials=_descriptors(user),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.DISCOURAGED, user_verification=UserVerificationRequirement.PREFERRED))
    session[CHALLENGE] = bytes_to_base64url(options.challenge)
    return options_to_json(options)


def _take_challenge() -> bytes:
    challenge = session.pop(CHALLENGE, None)
    if not isinstance(challenge, str):
        raise KeyRefused("no ceremony in progress")
    return base64url_to_bytes(challenge)


def register(user: User, credential: dict, name: str) -> SecurityKey:
    name = " ".join((name or "").split())[:NAME_MAX]
    if not name:
        raise KeyRefused("name")
    rp_id, origin = _relying_party()
    try:
        verified = verify_registration_response(credential=json.dumps(credential), expected_challenge=_take_challenge(),
                                                expected_rp_id=rp_id, expected_origin=origin)
    except (InvalidRegistrationResponse, ValueError, TypeError, KeyError) as exc:
        raise KeyRefused(str(exc)) from None
    credential_id = bytes_to_base64url(verified.credential_id)
    with database.atomic():
        if SecurityKey.select().where(SecurityKey.credential_id == credential_id).exists():
            raise KeyRefused("already registered")
        key = SecurityKey.create(user=user.id, name=name, credential_id=credential_id,
                                 public_key=bytes_to_base64url(verified.credential_public_key),
                                 sign_count=verified.sign_count, created_at=utcnow())
        forget_browsers(user)
        audit.record("twofa_enrolled", user, detail=f"security key #{key.id}")
    return key


def authentication_options(user: User) -> str:
    rp_id, _ = _relying_party()
    options = generate_authentication_options(rp_id=rp_id, allow_credentials=_descriptors(user),
                                              user_verification=UserVerificationRequirement.PREFERRED)
    session[CHALLENGE] = bytes_to_base64url(options.challenge)
    return options_to_json(options)


def authenticate(user: User, credential: dict) -> SecurityKey:
    """The user's key that signed this challenge, its counter moved on; KeyRefused otherwise."""
    challenge = _take_challenge()
    credential_id = credential.get("id") if isinstance(credential, dict) else None
    key = SecurityKey.get_or_none((SecurityKey.user == user.id) & (SecurityKey.credential_id == credential_id))
    if key is None:
        raise KeyRefused("unknown key")
    rp_id, origin = _relying_party()
    try:
        verified = verify_authentication_response(
            credential=json.dumps(credential), expected_challenge=challenge, expected_rp_id=rp_id,
            expected_origin=origin, credential_public_key=base64url_to_bytes(key.public_key),
            credential_current_sign_count=key.sign_count)
    except (InvalidAuthenticationResponse, ValueError, TypeError, KeyError) as exc:
        raise KeyRefused(str(exc)) from None
    SecurityKey.update(sign_count=verified.new_sign_count, last_used_at=utcnow()).where(
        SecurityKey.id == key.id).execute()
    return key


def remove(user: User, key_id: int) -> bool:
    with database.atomic():
        removed = SecurityKey.delete().where((SecurityKey.id == key_id) & (SecurityKey.user == user.id)).execute()
        if removed:
            forget_browsers(user)
            drop_recovery_codes_without_factor(user)
            audit.record("twofa_removed", user, detail=f"security key #{key_id}")
    return bool(removed)

"""Secret links (password resets, patients' status links): the token goes out once, in the link,
and only its SHA-256 is stored, so a copy of the database opens nothing. Every such token is made
and hashed here."""
import hashlib
import secrets


def new_token() -> tuple[str, str]:
    """A URL-safe token (256 random bits) and the hash to store in its place."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

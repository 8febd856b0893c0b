"""Threading of the mails about a ticket: every mail has its own stored Message-ID, names the ticket's
thread root in In-Reply-To and References (so mail programs show one conversation per request), and
carries a Reply-To address with a token for its recipient and ticket, so an answer by mail finds its
way back (smilepass/mailin) and cannot be forged: the token is an HMAC over ticket and user with a key
derived from SECRET_KEY, truncated to 80 bits.

    support+t42.u7.<16 base32 characters>@clinic.example

A supervisor's answer to a Contact us message threads the same way, under the message's own root, with a
token of a kind of its own: the sender may be nobody's account, so its HMAC (under a key of its own) is
over the message and the address it came from, and a reply is taken only from that address.

    support+c12.<16 base32 characters>@clinic.example"""
import base64
import hashlib
import hmac
import re
import uuid
from email.utils import parseaddr

TOKEN_PURPOSE = b"smilepass mail reply token v1"
CONTACT_TOKEN_PURPOSE = b"smilepass contact reply token v1"
MAC_BYTES = 10  # 80 bits
TOKEN = re.compile(r"^t(\d{1,12})\.u(\d{1,12})\.([a-z2-7]{16})$")
CONTACT_TOKEN = re.compile(r"^c(\d{1,12})\.([a-z2-7]{16})$")


def _key(secret_key: str, purpose: bytes = TOKEN_PURPOSE) -> bytes:
    return hmac.new(secret_key.encode(), purpose, hashlib.sha256).digest()


def _mac(secret_key: str, ticket_id: int, user_id: int) -> str:
    digest = hmac.new(_key(secret_key), f"t{ticket_id}.u{user_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:MAC_BYTES]).decode().lower()


def reply_token(secret_key: str, ticket_id: int, user_id: int) -> str:
    return f"t{ticket_id}.u{user_id}.{_mac(secret_key, ticket_id, user_id)}"


def read_token(secret_key: str, token: str) -> tuple[int, int] | None:
    """(ticket id, user id) of a genuine token, None for anything else (compared in constant time)."""
    match = TOKEN.match(token.strip().lower())
    if not match:
        return None
    ticket_id, user_id = int(match.group(1)), int(match.group(2))
    if not hmac.compare_digest(match.group(3), _mac(secret_key, ticket_id, user_id)):
        return None
    return ticket_id, user_id


def is_contact_token(token: str) -> bool:
    return token.strip().lower().startswith("c")


def _contact_mac(secret_key: str, contact_id: int, email: str) -> str:
    message = f"c{contact_id}.{email.strip().lower()}".encode()
    digest = hmac.new(_key(secret_key, CONTACT_TOKEN_PURPOSE), message, hashlib.sha256).digest()
    return base64.b32encode(digest[:MAC_BYTES]).decode().lower()


def contact_token(secret_key: str, contact_id: int, email: str) -> str:
    return f"c{contact_id}.{_contact_mac(secret_key, contact_id, email)}"


def contact_of_token(token: str) -> int | None:
    """The Contact us message a contact token names (not yet checked: see contact_token_matches)."""
    match = CONTACT_TOKEN.match(token.strip().lower())
    return int(match.group(1)) if match else None


def contact_token_matches(secret_key: str, token: str, contact_id: int, email: str) -> bool:
    """Whether the token is the one made for this message and its sender's address (constant time)."""
    match = CONTACT_TOKEN.match(token.strip().lower())
    return bool(match) and int(match.group(1)) == contact_id and hmac.compare_digest(
        match.group(2), _contact_mac(secret_key, contact_id, email))


def support_mailbox(config) -> str:
    """The bare support address (no display name): MAIL_REPLY_ADDRESS, else MAIL_FROM's address."""
    return parseaddr(config.get("MAIL_REPLY_ADDRESS") or config["MAIL_FROM"])[1] or "support@smilepass.local"


def mail_domain(config) -> str:
    return support_mailbox(config).rpartition("@")[2].lower()


def reply_address(config, ticket_id: int, user_id: int) -> str:
    local, _, domain = support_mailbox(config).rpartition("@")
    return f"{local}+{reply_token(config['SECRET_KEY'], ticket_id, user_id)}@{domain}"


def contact_reply_address(config, contact_id: int, email: str) -> str:
    local, _, domain = support_mailbox(config).rpartition("@")
    return f"{local}+{contact_token(config['SECRET_KEY'], contact_id, email)}@{domain}"


def token_of(config, address: str) -> str | None:
    """The token part of a plus address of the support mailbox, "" for the bare mailbox, None for an
    address that is not the support mailbox at all."""
    local, _, domain = support_mailbox(config).lower().rpartition("@")
    addr = parseaddr(address)[1].lower()
    their_local, _, their_domain = addr.rpartition("@")
    if their_domain != domain:
        return None
    base, plus, token = their_local.partition("+")
    if base != local:
        return None
    return token if plus else ""


def thread_root(config, ticket_id: int) -> str:
    """The Message-ID every mail about the ticket refers to (no mail carries it itself)."""
    return f"<smilepass-ticket-{ticket_id}@{mail_domain(config)}>"


def contact_thread_root(config, contact_id: int) -> str:
    """The Message-ID every answer to a Contact us message refers to."""
    return f"<smilepass-contact-{contact_id}@{mail_domain(config)}>"


def ticket_of_root(config, message_id: str) -> int | None:
    match = re.fullmatch(rf"<smilepass-ticket-(\d+)@{re.escape(mail_domain(config))}>", message_id.strip().lower())
    return int(match.group(1)) if match else None


def new_message_id(config) -> str:
    return f"<smilepass.{uuid.uuid4().hex}@{mail_domain(config)}>"


def subject_for(ticket_number: str, text: str) -> str:
    """`[SP-000042] text`: the number only, never the title (free text that may name a patient)."""
    return f"[{ticket_number}] {text}"

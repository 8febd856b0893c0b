"""One incoming RFC 5322 message, read defensively: size, part count, MIME structure and charsets are
checked before anything is taken from it. No Flask, no database: receive.py decides what to do."""
import codecs
import email
import hashlib
import re
from dataclasses import dataclass, field
from email import errors as mime_errors
from email import policy
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser

from .quotes import new_text

MAX_PARTS = 50
MAX_HEADER_BYTES = 256 * 1024
# Defects that leave the MIME structure unreadable (the parser guesses past milder ones).
FATAL_DEFECTS = (mime_errors.NoBoundaryInMultipartDefect, mime_errors.StartBoundaryNotFoundDefect,
                 mime_errors.MultipartInvariantViolationDefect,
                 mime_errors.InvalidMultipartContentTransferEncodingDefect)
RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "To", "Cc")
AUTO_PRECEDENCE = {"bulk", "junk", "list", "auto_reply", "auto-reply"}
DAEMON_SENDERS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|noreply|no-reply|bounces?)([+@]|$)", re.I)


class MailRefused(Exception):
    """The mail cannot be taken; the reason is stored with its row."""


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class ParsedMail:
    message_id: str
    sender: str  # the From address, lower case
    subject: str
    recipients: list[str]
    text: str  # the sender's new text (quotes and signature cut off)
    attachments: list[Attachment] = field(default_factory=list)
    automatic: str = ""  # why it is an auto-reply or bounce, "" for a person's mail
    authentication: dict[str, str] = field(default_factory=dict)  # {"dkim": "pass", "spf": ..., "dmarc": ...}
    in_reply_to: list[str] = field(default_factory=list)


def message_id_of(raw: bytes) -> str:
    """The Message-ID from the headers alone (for a mail refused before parsing), else one made from the
    content, so the same mail delivered twice still has one id."""
    head = raw[:MAX_HEADER_BYTES].split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    match = re.search(rb"^message-id:[ \t]*(<[^>\r\n]{1,250}>)", head, re.IGNORECASE | re.MULTILINE)
    if match:
        return match.group(1).decode("ascii", "replace")
    return f"<sha256-{hashlib.sha256(raw).hexdigest()[:40]}@smilepass.invalid>"


def sender_of(raw: bytes) -> str:
    head = raw[:MAX_HEADER_BYTES].split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    match = re.search(rb"^from:[ \t]*(.*)$", head, re.IGNORECASE | re.MULTILINE)
    return parseaddr(match.group(1).decode("ascii", "replace"))[1].lower()[:254] if match else ""


def parse(raw: bytes, max_bytes: int) -> ParsedMail:
    if len(raw) > max_bytes:
        raise MailRefused(f"mail too large: {len(raw)} bytes, at most {max_bytes}")
    if not raw.strip():
        raise MailRefused("empty mail")
    message = email.message_from_bytes(raw, policy=policy.default)
    parts = list(message.walk())
    if len(parts) > MAX_PARTS:
        raise MailRefused(f"too many MIME parts: {len(parts)}, at most {MAX_PARTS}")
    for part in parts:
        if any(isinstance(defect, FATAL_DEFECTS) for defect in part.defects):
            raise MailRefused("malformed MIME structure")
    try:
        sender = parseaddr(str(message.get("From", "")))[1].lower()
        subject = str(message.get("Subject", ""))[:300]
        recipients = [addr for _, addr in getaddresses([str(v) for h in RECIPIENT_HEADERS
                                                        for v in message.get_all(h, [])]) if addr]
    except (ValueError, IndexError, TypeError):
        raise MailRefused("malformed headers") from None
    if not sender or "@" not in sender:
        raise MailRefused("no sender address")
    in_reply_to = re.findall(r"<[^>]+>", " ".join(str(message.get(h, "")) for h in ("In-Reply-To", "References")))
    text, attachments = _content(message)
    return ParsedMail(message_id=message_id_of(raw), sender=sender[:254], subject=subject, recipients=recipients,
                      text=new_text(text), attachments=attachments, automatic=_automatic(message, sender),
                      authentication=_authentication(message), in_reply_to=in_reply_to)


def _automatic(message: EmailMessage, sender: str) -> str:
    """Why this mail came from a machine (auto-reply, bounce, list), "" when a person sent it."""
    auto_submitted = str(message.get("Auto-Submitted", "")).strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted[:40]}"
    if str(message.get("Precedence", "")).strip().lower() in AUTO_PRECEDENCE:
        return "Precedence: " + str(message.get("Precedence")).strip()[:40]
    for header in ("X-Autoreply", "X-Autorespond", "List-Id"):
        if header in message:
            return f"{header} header"
    if str(message.get("Return-Path", "x")).strip() == "<>":
        return "empty Return-Path"
    if message.get_content_type() == "multipart/report" or any(
            part.get_content_type() in ("message/delivery-status", "message/disposition-notification")
            for part in message.walk()):
        return "delivery or read report"
    if DAEMON_SENDERS.match(sender):
        return "sent by a mail daemon"
    return ""


def _authentication(message: EmailMessage) -> dict[str, str]:
    """The receiving server's verdicts (its topmost Authentication-Results header; RFC 8601)."""
    results = message.get_all("Authentication-Results", [])
    if not results:
        return {}
    verdicts = {}
    for method in ("dkim", "spf", "dmarc"):
        match = re.search(rf"\b{method}=([a-z]+)", str(results[0]), re.IGNORECASE)
        if match:
            verdicts[method] = match.group(1).lower()
    return verdicts


def _decoded_text(part: EmailMessage) -> str:
    charset = part.get_content_charset() or "us-ascii"
    try:
        codecs.lookup(charset)
    except LookupError:
        raise MailRefused(f"unknown charset {charset[:40]!r}") from None
    payload = part.get_payload(decode=True) or b""
    try:
        return payload.decode(charset)
    except UnicodeDecodeError:
        if charset in ("us-ascii", "ascii"):  # undeclared 8-bit text: almost always UTF-8
            try:
                return payload.decode("utf-8")
            except UnicodeDecodeError:
                pass
        raise MailRefused(f"text is not valid {charset[:40]}") from None


def _content(message: EmailMessage) -> tuple[str, list[Attachment]]:
    """The text (plain preferred; HTML reduced to text when there is nothing else) and the attached files."""
    plain, html, attachments = [], [], []
    for part in message.walk():
        if part.is_multipart() or part.get_content_maintype() == "message":
            continue
        filename = part.get_filename()
        disposition = part.get_content_disposition()
        content_type = part.get_content_type()
        if filename or disposition == "attachment" or part.get_content_maintype() not in ("text",):
            data = part.get_payload(decode=True) or b""
            attachments.append(Attachment(filename=(filename or "attachment")[:255], content_type=content_type,
                                          data=data))
        elif content_type == "text/plain":
            plain.append(_decoded_text(part))
        elif content_type == "text/html":
            html.append(_decoded_text(part))
    if plain:
        return "\n".join(plain), attachments
    return "\n".join(html_to_text(h) for h in html), attachments


class _TextOfHtml(HTMLParser):
    """Text of an HTML mail: no markup, scripts or styles, and the quoted earlier mail left out
    (blockquote, Gmail's gmail_quote, Outlook's divRplyFwdMsg and what follows it)."""
    BLOCKS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "hr"}
    SKIP = {"script", "style", "head", "title", "blockquote"}
    VOID = {"br", "hr", "img", "meta", "link", "input", "col", "area", "base", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping: list[str] = []  # the stack of open elements whose content is left out
        self.ended = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        quoted = ("gmail_quote" in (attributes.get("class") or "")
                  or attributes.get("id") in ("divRplyFwdMsg", "appendonsend")
                  or "moz-cite-prefix" in (attributes.get("class") or ""))
        if attributes.get("id") in ("divRplyFwdMsg", "appendonsend"):
            self.ended = True  # Outlook: everything after this is the earlier mail
        if tag in self.VOID:
            if tag in ("br", "hr") and not self.skipping:
                self.out.append("\n")
            return
        if self.skipping or tag in self.SKIP or quoted:
            self.skipping.append(tag)
            return
        if tag in self.BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag):
        if self.skipping:
            if tag in self.skipping:
                while self.skipping and self.skipping.pop() != tag:
                    pass
            return
        if tag in self.BLOCKS:
            self.out.append("\n")

    def handle_data(self, data):
        if not self.skipping and not self.ended:
            self.out.append(data)


def html_to_text(html: str) -> str:
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    text = re.sub(r"[ \t\u00a0]+", " ", "".join(parser.out))
    return re.sub(r"\n\s*\n+", "\n\n", "\n".join(line.strip() for line in text.split("\n"))).strip()

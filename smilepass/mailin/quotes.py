"""The new part of a reply by mail: what the sender wrote above the quoted earlier mail, without their
signature. `mail-parser-reply` knows the quote headers of many mail programs and languages ("On … wrote:",
"Am … schrieb …:", Outlook's "From: … Sent: …" block); our own rules catch what it leaves."""
import re

from mailparser_reply import EmailReplyParser

LANGUAGES = ["en", "de"]
# A line at which the rest of the mail is no longer the sender's new text.
CUT_LINES = [
    re.compile(r"^-- ?$"),  # the signature delimiter (RFC 3676)
    re.compile(r"^_{10,}$"),  # Outlook's rule above the quoted mail
    re.compile(r"^-{3,} ?(original message|ursprüngliche nachricht|forwarded message|weitergeleitete nachricht)"
               r" ?-{3,}$", re.IGNORECASE),
    re.compile(r"^(on|am) .{4,200} (wrote|schrieb)( .{0,100})?:$", re.IGNORECASE),
    re.compile(r"^(sent from my|von meinem) (iphone|ipad|android|samsung|mobile)", re.IGNORECASE),
    re.compile(r"^(gesendet von|get outlook for) ", re.IGNORECASE),
    re.compile(r"^\*?(from|von):\*? .*@.*$", re.IGNORECASE),  # the header block of a quoted mail
]
QUOTE = re.compile(r"^\s*>")


def new_text(text: str) -> str:
    """The sender's new text: quoted mail, quote headers and signature cut off."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    reply = EmailReplyParser(languages=LANGUAGES).parse_reply(text=text)
    if reply is None or not reply.strip():
        reply = text
    lines = []
    for line in reply.split("\n"):
        bare = line.strip()
        if any(rule.match(bare) for rule in CUT_LINES) or (QUOTE.match(line) and _rest_is_quoted(reply, line)):
            break
        lines.append(line.rstrip())
    return "\n".join(lines).strip()


def _rest_is_quoted(reply: str, line: str) -> bool:
    """A quoted line ends the new text only when nothing but quotes and blank lines follows it (an inline
    answer between quoted lines keeps the quotes it answers)."""
    rest = reply.split(line, 1)[1].split("\n")
    return all(not part.strip() or QUOTE.match(part) for part in rest)

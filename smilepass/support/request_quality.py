"""Good tickets (issue #5): what makes a request easy to answer, and which of it a request has.

Four things help support most: what the clinician already tried, what happened (the description),
the browser and device, and a screenshot. None is required: a request missing some is still
filed, and the confirmation says what would help. The browser and device come from the request's
User-Agent, summarised as e.g. "Chrome 131 on Windows"."""
import re
from dataclasses import dataclass

from flask_babel import gettext

from ..i18n import lazy_gettext
from ..models import Attachment

# A description this short rarely says what happened ("doesn't work").
WHAT_HAPPENED_MIN_WORDS = 5
CLIENT_MAX = 160  # Ticket.client

# Browsers, most specific first: Edge and Opera also say "Chrome", Chrome also says "Safari".
_BROWSERS = (
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/(\d+)")),
    ("Opera", re.compile(r"\b(?:OPR|Opera)/(\d+)")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/(\d+)")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/(\d+)")),
    ("Chrome", re.compile(r"\b(?:Chrome|CriOS|Chromium)/(\d+)")),
    ("Safari", re.compile(r"\bVersion/(\d+)(?:\.\d+)*(?: Mobile/\S+)? Safari/")),
)
# Systems, most specific first: iPhones say "like Mac OS X", Android says "Linux".
_SYSTEMS = (
    ("iPad", re.compile(r"\biPad\b")),
    ("iPhone", re.compile(r"\biPhone\b")),
    ("Android", re.compile(r"\bAndroid\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("macOS", re.compile(r"\bMacintosh\b|\bMac OS X\b")),
    ("Linux", re.compile(r"\bLinux\b")),
)


def client_summary(user_agent: str | None) -> str:
    """A short readable browser and device, or "" when neither is recognised (a script, a bot)."""
    agent = (user_agent or "")[:1000]
    browser = next((f"{name} {m.group(1)}" for name, pattern in _BROWSERS if (m := pattern.search(agent))), "")
    system = next((name for name, pattern in _SYSTEMS if pattern.search(agent)), "")
    if browser and system:
        return f"{browser} on {system}"[:CLIENT_MAX]
    return (browser or system)[:CLIENT_MAX]


@dataclass(frozen=True)
class Quality:
    tried: bool
    what_happened: bool
    client: bool
    screenshot: bool

    LABELS = {
        "tried": (lazy_gettext("what you tried"), lazy_gettext("nothing about what was tried")),
        "what_happened": (lazy_gettext("what happened"), lazy_gettext("a short description")),
        "client": (lazy_gettext("your browser and device"), lazy_gettext("no browser or device")),
        "screenshot": (lazy_gettext("a screenshot"), lazy_gettext("no screenshot")),
    }

    @property
    def present(self) -> int:
        return sum((self.tried, self.what_happened, self.client, self.screenshot))

    @property
    def missing(self) -> list[str]:
        """Keys of what the request lacks, in the order the form asks for them."""
        return [key for key in self.LABELS if not getattr(self, key)]

    def nudges(self) -> list[str]:
        """For the clinician: what would help, e.g. ["what you tried", "a screenshot"]."""
        return [str(self.LABELS[key][0]) for key in self.missing]

    def summary(self) -> str:
        """For staff: "3 of 4 — no screenshot"."""
        text = gettext("%(present)s of %(all)s", present=self.present, all=len(self.LABELS))
        if self.missing:
            text += " — " + ", ".join(str(self.LABELS[key][1]) for key in self.missing)
        return text


def assess(ticket, has_screenshot: bool) -> Quality:
    return Quality(
        tried=bool((ticket.tried or "").strip()),
        what_happened=len((ticket.description or "").split()) >= WHAT_HAPPENED_MIN_WORDS,
        client=bool((ticket.client or "").strip()),
        screenshot=has_screenshot,
    )


def has_screenshot(ticket) -> bool:
    """Whether an image was attached to the request (scans are not screenshots)."""
    return (Attachment.select(Attachment.id)
            .where((Attachment.ticket == ticket.id) & Attachment.content_type.startswith("image/")).exists())

"""What the scan panels say: refusals and verdicts of the Flask-free mesh package, which keeps its English
templates and numbers, translated at display into the reader's language."""
import json
import re

from flask_babel import format_decimal, gettext

from ..i18n import and_list, lazy_gettext
from ..mesh import MeshRejected
from ..mesh.errors import Phrase
from ..models import SCAN_STATE_LABELS
from . import reasons

# The repair's stages as the worker reports them (smilepass/mesh/pipeline.py), as the progress bar shows them.
SCAN_STAGE_LABELS = {
    "reading": lazy_gettext("Reading"), "cleaning": lazy_gettext("Cleaning"),
    "orienting": lazy_gettext("Orienting"), "filling holes": lazy_gettext("Filling holes"),
    "rendering": lazy_gettext("Rendering"), "saving": lazy_gettext("Saving"), "done": lazy_gettext("Done"),
}


def scan_stage_label(stage: str) -> str:
    if not stage:
        return ""
    label = SCAN_STAGE_LABELS.get(stage.lower())
    return str(label) if label is not None else stage.capitalize()


def scan_progress_label(scan) -> str:
    """The progress bar's words for a scan being repaired: waiting, queued, or the worker's stage."""
    label = SCAN_STATE_LABELS.get(scan.state)
    if label is not None:
        return str(label)
    return scan_stage_label(scan.stage) or gettext("Working")


def rejection_text(exc: MeshRejected) -> str:
    """Why the mesh package refused a file, in the reader's language: its English template through the
    catalogue, numbers and phrases localised too."""
    return gettext(exc.message, **{name: _localised(value) for name, value in exc.params.items()})


def _pattern(template: str) -> re.Pattern:
    """A stored English sentence made from template: its %(name)s numbers become named groups."""
    return re.compile(re.sub(r"%\\\(([a-z_]+)\\\)s", r"(?P<\1>[0-9][0-9,]*)", re.escape(template)))


# Stored sentences with numbers in them that are still shown translated, numbers and all.
NUMBERED_REASONS = [(template, _pattern(template))
                    for template in (reasons.TIMEOUT_MINUTES.template, reasons.TIMEOUT_SECONDS.template)]


def stored_reason(text: str) -> str:
    """A refusal the repair worker stored (in English, it has no reader) shown in the reader's language
    when it is one of the catalogue's fixed sentences or a NUMBERED_REASONS one; other sentences with
    numbers in them stay as stored."""
    for template, pattern in NUMBERED_REASONS:
        match = pattern.fullmatch(text or "")
        if match:
            return gettext(template, **{name: format_decimal(int(value.replace(",", "")))
                                        for name, value in match.groupdict().items()})
    return gettext(text) if text and "%" not in text else text


def verdict_reason_text(stored: str, report) -> str:
    """A repair's verdict reason in the reader's language, rebuilt from the templates and numbers the
    repair keeps in its report; scans repaired before it kept them show the stored English text."""
    parts = (report or {}).get("verdict_reason_parts") if isinstance(report, dict) else None
    if not parts:
        return stored
    try:
        texts = [gettext(template, **{name: _localised(value) for name, value in params.items()})
                 for template, params in parts]
    except (TypeError, ValueError, KeyError, AttributeError):
        return stored  # parts of another shape (an older or hand-made report): the stored sentence
    if not texts:
        return stored
    if len(texts) == 1 and texts[0].endswith("."):
        return texts[0]
    sentence = and_list(texts)  # the things done: "Filled 2 holes and removed 5 duplicate triangles."
    return sentence[0].upper() + sentence[1:] + "."


def stored_report(text) -> dict | None:
    """A scan's stored report, shaped so the panel can show it whatever its age or origin: the repair
    of today, one written by an older version, a partial one or the demo's. Missing measurements show
    as blanks; a report that is not a JSON object shows as none."""
    try:
        report = json.loads(text) if text else None
    except (TypeError, ValueError):
        return None
    if not isinstance(report, dict):
        return None
    for side in ("before", "after"):
        if not isinstance(report.get(side), dict):
            report[side] = {}
    seconds = report.get("stage_seconds")
    report["stage_seconds"] = ({str(stage): value for stage, value in seconds.items()
                                if isinstance(value, (int, float)) and not isinstance(value, bool)}
                               if isinstance(seconds, dict) else {})
    return report


def _localised(value):
    if isinstance(value, Phrase):
        return gettext(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_decimal(value)
    return value


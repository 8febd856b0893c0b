"""Tooth numbers in FDI (ISO 3950) or Universal notation: parse what a clinician typed, store it
canonically as FDI, and show it in either notation.

FDI: two digits, quadrant then tooth counted from the midline. Permanent quadrants 1–4 have teeth
1–8 (11–18 upper right … 41–48 lower right); primary quadrants 5–8 have teeth 1–5.
Universal: permanent 1–32 from the upper right third molar around to the lower right third molar;
primary A–T in the same order. No database here; messages go through gettext, which needs no app."""
import re

from flask_babel import gettext

from ..i18n import lazy_gettext
from ..params import parse_int

FDI = "fdi"
UNIVERSAL = "universal"
NOTATIONS = (FDI, UNIVERSAL)
NOTATION_LABELS = {FDI: "FDI", UNIVERSAL: "Universal"}
MAX_TEETH = 32  # a full permanent dentition; more than that is a typing mistake


class TeethRefused(ValueError):
    pass


def _walk_mouth(quadrant_size: int, first_quadrant: int) -> list[int]:
    """FDI numbers in Universal order: upper right (back to front), upper left (front to back),
    lower left (back to front), lower right (front to back)."""
    q1, q2, q3, q4 = (first_quadrant + i for i in range(4))
    teeth = range(1, quadrant_size + 1)
    return ([q1 * 10 + t for t in reversed(teeth)] + [q2 * 10 + t for t in teeth]
            + [q3 * 10 + t for t in reversed(teeth)] + [q4 * 10 + t for t in teeth])


_PERMANENT = _walk_mouth(8, 1)  # Universal 1..32
_PRIMARY = _walk_mouth(5, 5)  # Universal A..T
UNIVERSAL_TO_FDI = {str(n): fdi for n, fdi in enumerate(_PERMANENT, start=1)}
UNIVERSAL_TO_FDI.update({chr(ord("A") + i): fdi for i, fdi in enumerate(_PRIMARY)})
FDI_TO_UNIVERSAL = {fdi: name for name, fdi in UNIVERSAL_TO_FDI.items()}
# Display order for each notation: FDI by quadrant then tooth; Universal around the mouth,
# permanent teeth before primary ones (as 1–32 then A–T).
_FDI_ORDER = {fdi: fdi for fdi in FDI_TO_UNIVERSAL}
_UNIVERSAL_ORDER = {fdi: i for i, fdi in enumerate(_PERMANENT + _PRIMARY)}

_SEPARATORS = re.compile(r"[\s,;]+")
RANGES = {FDI: lazy_gettext("11–18, 21–28, 31–38, 41–48, or 51–55 … 81–85 for primary teeth"),
          UNIVERSAL: lazy_gettext("1–32, or A–T for primary teeth")}


def _read_token(token: str, notation: str) -> int:
    """One typed tooth → its FDI number, or TeethRefused naming the token."""
    text = token.lstrip("#").upper()
    if notation == FDI:
        if parse_int(text) in FDI_TO_UNIVERSAL and len(text) == 2:
            return int(text)
        other = UNIVERSAL if text.lstrip("0") in UNIVERSAL_TO_FDI else None
    else:
        fdi = UNIVERSAL_TO_FDI.get(text.lstrip("0") if text.isdigit() else text)
        if fdi is not None:
            return fdi
        other = FDI if parse_int(text) in FDI_TO_UNIVERSAL else None
    if notation == FDI:
        message = gettext("“%(token)s” is not an FDI tooth number (%(ranges)s).", token=token, ranges=RANGES[notation])
    else:
        message = gettext("“%(token)s” is not a Universal tooth number (%(ranges)s).", token=token,
                          ranges=RANGES[notation])
    if other:
        # The usual mistake: typing the other notation with the wrong one selected.
        message += " " + gettext("Typing %(notation)s numbers? Choose %(notation)s notation.",
                                 notation=NOTATION_LABELS[other])
    raise TeethRefused(message)


def parse(text: str, notation: str) -> list[int]:
    """Teeth typed as "11, 21 36" (FDI) or "8,9" / "A, J" (Universal) → FDI numbers in FDI order.
    The notation is the one the form says the clinician is typing: many numbers (11–32) are valid
    in both, so it is never guessed."""
    if notation not in NOTATIONS:
        raise TeethRefused(gettext("Choose FDI or Universal notation."))
    tokens = [t for t in _SEPARATORS.split(text or "") if t]
    found: dict[int, str] = {}
    for token in tokens:
        fdi = _read_token(token, notation)
        if fdi in found:
            raise TeethRefused(gettext("Tooth %(tooth)s is listed twice.", tooth=token))
        found[fdi] = token
    if len(found) > MAX_TEETH:
        raise TeethRefused(gettext("List at most %(max)s teeth (%(count)s given).", max=MAX_TEETH, count=len(found)))
    return sorted(found, key=_FDI_ORDER.__getitem__)


def to_storage(fdi_numbers: list[int]) -> str:
    """The canonical stored form: FDI numbers, comma-separated, in FDI order ("11,21,36")."""
    return ",".join(str(n) for n in sorted(fdi_numbers, key=_FDI_ORDER.__getitem__))


def from_storage(stored: str) -> list[int]:
    return [int(part) for part in (stored or "").split(",") if part.strip().isdigit()]


def canonical(text: str, notation: str) -> str:
    """What a clinician typed → the stored form (TeethRefused when it does not read)."""
    return to_storage(parse(text, notation))


def display(stored: str, notation: str) -> str:
    """The stored FDI list shown in a notation, in that notation's usual order: "11, 21, 36" or
    "8, 9, 19". A number the notation does not know (never stored by this module) shows as is."""
    teeth = from_storage(stored)
    if notation == UNIVERSAL:
        teeth.sort(key=lambda n: _UNIVERSAL_ORDER.get(n, 1000 + n))
        return ", ".join(FDI_TO_UNIVERSAL.get(n, str(n)) for n in teeth)
    return ", ".join(str(n) for n in teeth)

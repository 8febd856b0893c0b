"""Integer parameters from URLs, query strings and forms, range-checked in one place (issue 12 §4).

`str.isdigit()` alone lets through numbers no database column can hold (an id of 2^63 made SQLite raise
OverflowError) and digits Python's int() cannot read ("²"): both ended as 500s. Path ids go through the
`int` URL converter below (out of range: no route, so 404); query and form values through parse_int."""
from flask import abort, request
from werkzeug.routing import IntegerConverter

MAX_ID = 2**63 - 1  # BIGINT, the widest integer either database stores: no id can be larger
# A page number whose offset (page × page size) still fits a BIGINT for any sensible page size.
MAX_PAGE = 2**31 - 1


def parse_int(text, maximum: int = MAX_ID) -> int | None:
    """The non-negative integer written in ASCII digits, or None when it is not one or exceeds maximum."""
    if not isinstance(text, str) or not text or len(text) > len(str(maximum)):
        return None
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= maximum else None


def parse_page(raw) -> int:
    """A page number: 1 when none (or not a number) is given, 404 for 0 or one past MAX_PAGE."""
    if not isinstance(raw, str) or not (raw.isascii() and raw.isdigit()):
        return 1
    page = parse_int(raw, MAX_PAGE)
    if page is None or page < 1:
        abort(404)
    return page


def page_arg(name: str = "page") -> int:
    return parse_page(request.args.get(name, ""))


class BoundedIntConverter(IntegerConverter):
    """Werkzeug's `int`, capped at MAX_ID: /tickets/99999999999999999999 matches no route (404)."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)

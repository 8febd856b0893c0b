"""/search: the header's search, listing the tickets and (for those who may see them) the cases found,
each with a highlighted excerpt. Thin: finding is query's, excerpts are snippet's."""
from dataclasses import dataclass

from flask import Blueprint, render_template, request, url_for
from flask_babel import format_decimal, gettext
from flask_login import current_user, login_required
from markupsafe import Markup

from ..models import Case, Status, Ticket, ticket_number
from ..params import page_arg
from . import index, query, snippet

bp = Blueprint("search", __name__)

PAGE_SIZE = 20
CASES_SHOWN = 10


@dataclass
class Hit:
    url: str
    label: str  # the ticket's number or the case's number
    title: Markup
    excerpt: Markup
    status: Status | None = None
    internal: bool = False  # the excerpt is from an internal note (staff only)


def ticket_hits(user, search: query.Search, ids: list[int]) -> list[Hit]:
    if not ids:
        return []
    # Only what this user may read: a clinician's texts never include internal notes.
    texts = index.ticket_texts(Ticket._meta.database, ids)
    hits = []
    for ticket_id in ids:
        title, public, internal, _requester, status = texts[ticket_id]
        excerpt = snippet.excerpt(public, search)
        from_note = False
        if user.is_staff and not snippet.highlight(" ".join(public), search)[1] and internal:
            marked = snippet.excerpt(internal, search)
            if "<mark>" in marked:
                excerpt, from_note = marked, True
        hits.append(Hit(url_for("support.detail", ticket_id=ticket_id), ticket_number(ticket_id),
                        snippet.highlight(title[0], search)[0], excerpt, Status(status), from_note))
    return hits


def case_hits(search: query.Search, cases: list[Case]) -> list[Hit]:
    if not cases:
        return []
    texts = index.case_texts(Case._meta.database, [case.id for case in cases])
    return [Hit(url_for("cases.detail", case_id=case.id), case.case_number,
                snippet.highlight(case.patient_name, search)[0], snippet.excerpt(texts[case.id][2:], search))
            for case in cases]


@bp.get("/search")
@login_required
def search():
    user = current_user._get_current_object()
    typed = request.args.get("q", "")
    found = query.parse(typed)
    page = page_arg()
    ids, total = query.ranked_tickets(user, found, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE) if found else ([], 0)
    cases = query.ranked_cases(user, found, CASES_SHOWN) if found and page == 1 else []
    more = len(ids) > PAGE_SIZE
    ids = ids[:PAGE_SIZE]
    # Counted up to COUNT_MAX: above it, "1,000+" (in this language's digits).
    total_text = f"{format_decimal(query.COUNT_MAX)}+" if total > query.COUNT_MAX else str(total)
    return render_template(
        "search/results.html", q=found.text, searched=bool(found), typed=bool(typed.strip()),
        tickets=ticket_hits(user, found, ids), total=total_text, cases=case_hits(found, cases), page=page,
        next_url=url_for("search.search", q=found.text, page=page + 1) if more else None,
        prev_url=url_for("search.search", q=found.text, page=page - 1) if page > 1 else None,
        heading=gettext("Search"),
    )

"""The staff queue with its bulk changes, assignment from the ticket page, and the "someone else is
replying" notice. Rules are in listing.py, assignment.py and ../presence.py."""
from flask import Blueprint, current_app, flash, make_response, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from jinja2_fragments.flask import render_block
from markupsafe import Markup

from ..auth.guards import STAFF, role_required, visible_or_404
from ..htmx import is_htmx, page_or_block, see_other
from ..i18n import current_language
from ..models import Status, Ticket
from ..params import parse_int, parse_page
from ..support.views import DETAIL, _detail_context
from . import assignment, presence
from .listing import TABS, parse_tab, queue_page

bp = Blueprint("staff", __name__, url_prefix="/queue")

QUEUE = "staff/queue.html"
ASSIGN_PANEL = "staff/_assign_panel.html"
PRESENCE = "staff/_presence.html"


def _user():
    return current_user._get_current_object()


def _queue_context(tab_key: str | None, page: str | None, result=None, error=None, q: str = ""):
    tab = parse_tab(tab_key)
    page = parse_page(page)
    return {
        "queue": queue_page(_user(), tab, page, current_app.config["PAGE_SIZE"], url_for("staff.queue"), q=q),
        "tabs": TABS,
        "staff": assignment.active_staff(),
        "bulk_statuses": assignment.BULK_STATUSES,
        "result": result,
        "error": error,
    }


# Stand for the table's rows and the session's CSRF token in a stored panel: the rest of the panel is the
# same for everyone who sees the same state.
_ROWS_SLOT = "\x00rows\x00"
_CSRF_SLOT = "\x00csrf\x00"
_PANELS_KEPT = 512  # panel states (tab, page, counts, staff list, viewer, language, ...) kept per app


def _queue_html(context: dict) -> Markup:
    """The queue panel as HTML: its tabs with their counts, the bulk form with the staff list, the column
    heads and the pager (two thirds of the partial's work: ~50 template expressions, a dozen links)
    rendered once per app for everything they depend on, then filled with this page's rows (written in
    Python, QueuePage.rows_html) and this session's CSRF token. The key holds every value the template
    reads besides those two, the counts and the staff list (read per request) included, so a new ticket,
    an assignment or a new staff member renders afresh. A bulk change's result or error is not stored."""
    page = context["queue"]
    detail = url_for("support.detail", ticket_id=0)[:-1]
    if context["result"] is not None or context["error"] is not None:
        return Markup(render_block(QUEUE, "queue", **context))
    key = (current_language(), request.script_root, current_user.id, page.base_url, page.tab.key, page.page,
           page.has_next, page.q, not page.rows, tuple(sorted(page.counts.items())),
           tuple((member.id, member.display_name) for member in context["staff"]))
    panels = current_app.extensions.setdefault("smilepass.queue_panels", {})
    html = panels.get(key)
    if html is None:
        token = generate_csrf()
        rendered = render_block(QUEUE, "queue", rows_slot=Markup(_ROWS_SLOT), **context)
        if rendered.count(_ROWS_SLOT) != 1 or token not in rendered:  # never expected: render it all
            return Markup(render_block(QUEUE, "queue", **context))
        if len(panels) >= _PANELS_KEPT:
            panels.clear()
        html = panels[key] = rendered.replace(token, _CSRF_SLOT)
    # The token first: the rows hold user text, which must not be able to stand in for a slot.
    return Markup(html.replace(_CSRF_SLOT, generate_csrf()).replace(_ROWS_SLOT, page.rows_html(detail)))


@bp.get("/")
@role_required(*STAFF)
def queue():
    context = _queue_context(request.args.get("tab"), request.args.get("page"), q=request.args.get("q", ""))
    if is_htmx():
        return make_response(_queue_html(context))
    return render_template(QUEUE, queue_html=_queue_html(context), **context)


@bp.post("/bulk")
@role_required(*STAFF)
def bulk():
    """Assign or set the status of the ticked tickets, each on its own; says which were refused."""
    form = request.form
    tab, page = form.get("tab"), form.get("page")
    result, error = None, None
    try:
        ticket_ids = assignment.parse_ticket_ids(form.getlist("ticket"))
        if form.get("action") == "assign":
            result = assignment.bulk_assign(ticket_ids, assignment.find_assignee(form.get("assignee")), _user())
        elif form.get("action") == "status":
            raw = form.get("status", "")
            target = Status(parse_int(raw)) if parse_int(raw) in Status._value2member_map_ else None
            if target not in assignment.BULK_STATUSES:
                raise assignment.AssignmentRefused(gettext("Choose a status."))
            result = assignment.bulk_status(ticket_ids, target, _user())
        else:
            raise assignment.AssignmentRefused(gettext("Choose what to do with the selected tickets."))
    except assignment.AssignmentRefused as exc:
        error = str(exc)
    if is_htmx():
        context = _queue_context(tab, page, result=result, error=error)
        return page_or_block(QUEUE, "queue", status=422 if error else 200, **context)
    if error:
        flash(error, "error")
    else:
        flash(f"{result.summary}.", "success" if not result.refused else "info")
        for refusal in result.refused:
            flash(refusal, "error")
    return see_other(url_for("staff.queue", tab=parse_tab(tab).key, page=page if page and page != "1" else None))


@bp.app_template_global()
def assign_panel(ticket, error=None):
    """What the ticket page's assignment panel needs (staff only). A template global, so the panel
    renders the same on the ticket page and in this blueprint's fragments."""
    return {
        "assignee": ticket.assignee if ticket.assignee_id else None,
        "staff": assignment.active_staff(),
        "error": error,
    }


@bp.post("/tickets/<int:ticket_id>/assign")
@role_required(*STAFF)
def assign(ticket_id: int):
    ticket = visible_or_404(Ticket, ticket_id)
    error = None
    try:
        assignee = assignment.find_assignee(request.form.get("assignee"))
        assignment.assign(ticket, assignee, _user())
    except assignment.AssignmentRefused as exc:
        error = str(exc)
    if is_htmx():
        status = 422 if error else 200
        return render_template(ASSIGN_PANEL, ticket=ticket, assigning=assign_panel(ticket, error)), status
    if error:
        context = _detail_context(ticket)
        return render_template(DETAIL, assigning=assign_panel(ticket, error), **context), 422
    if ticket.assignee_id:
        flash(
            gettext("%(number)s is now assigned to %(name)s.", number=ticket.number, name=ticket.assignee.display_name),
            "info",
        )
    else:
        flash(gettext("%(number)s is now assigned to nobody.", number=ticket.number), "info")
    return see_other(url_for("support.detail", ticket_id=ticket.id))


@bp.app_template_global()
def replying_now(ticket) -> list[str]:
    """Names of the other staff replying to this ticket, for the notice above the reply box."""
    return presence.others_replying(ticket.id, _user())


@bp.post("/tickets/<int:ticket_id>/presence")
@role_required(*STAFF)
def report_presence(ticket_id: int):
    """Polled by the reply box: records whether this staff member is replying (the box has focus,
    or holds a draft) and answers with the notice about everyone else."""
    ticket = visible_or_404(Ticket, ticket_id)
    is_replying = request.args.get("focus") == "1" or bool(request.form.get("body", "").strip())
    names = presence.report(ticket.id, _user(), is_replying)
    if not is_htmx():
        return see_other(url_for("support.detail", ticket_id=ticket.id))
    return render_template(PRESENCE, ticket=ticket, names=names)

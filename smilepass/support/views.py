"""The Support page (new request beside the ticket table) and the ticket detail with its thread."""

from flask import Blueprint, abort, current_app, flash, make_response, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf
from jinja2_fragments.flask import render_block
from markupsafe import Markup

from .. import audit, busy, settings
from ..auth.guards import id_arg, visible_or_404
from ..db import DatabaseBusy, database
from ..htmx import blocks, is_htmx, page_or_block, see_other
from ..i18n import current_language
from ..models import CATEGORIES, RESOLUTIONS, Attachment, Case, Scan, Status, Ticket, utcnow
from ..notifications.outbox import hand_over
from ..params import page_arg, parse_int
from ..scans.forms import RerunForm
from ..scans.staging import StagedUploads, UploadRefused
from ..service import sla
from ..storage.web import send_stored
from . import drafts, request_quality, tickets
from .forms import DESCRIPTION_MAX, STEP_MAX, STEP_MIN, ReplyForm, StatusForm, TicketForm
from .listing import DEFAULT_SORT, parse_sort, parse_status, remember_sort, ticket_page

bp = Blueprint("support", __name__, url_prefix="/support")

INDEX = "support/index.html"
DETAIL = "support/ticket.html"


def _table(user):
    """The table for the current query string; a sort given in the URL becomes the user's
    remembered choice."""
    sort = parse_sort(request.args.get("sort"))
    if sort and sort != user.ticket_sort:
        remember_sort(user, sort)
    sort = sort or parse_sort(user.ticket_sort) or DEFAULT_SORT
    status = parse_status(request.args.get("status"))
    page = page_arg()
    return ticket_page(user, sort, status, page, current_app.config["PAGE_SIZE"], url_for("support.index"),
                       q=request.args.get("q", ""))


def _index_context(form, created=None, draft=None, draft_restored=False):
    return {
        "form": form,
        # Sentences above the form when it comes back because the database was busy (see busy.py).
        "busy_notice": [],
        # The user's saved draft of this form (its Discard button), and whether the form shows it.
        "draft": draft,
        "draft_restored": draft_restored,
        "table": _table(current_user._get_current_object()),
        "created": created,
        # Good tickets: what would still help with the request just filed (never blocks filing).
        "nudges": request_quality.assess(created, request_quality.has_screenshot(created)).nudges() if created else [],
        "description_max": DESCRIPTION_MAX,
        "categories": CATEGORIES,
        "resolutions": RESOLUTIONS,
        "step_range": (STEP_MIN, STEP_MAX),
        "today": sla.clinic_today().isoformat(),
    }


def _blank_form(case: Case | None = None) -> TicketForm:
    """An empty New Request form: tooth numbers in the clinic's notation, the case filled in when
    the request starts from a case page."""
    form = TicketForm(formdata=None, notation=settings.get("tooth_notation"))
    if case is not None:
        form.case_number.data = case.case_number
    return form


def _draft_form(draft, case: Case | None = None) -> TicketForm:
    """The New Request form as the user left it in their draft; a case the request starts from
    fills the case field only when the draft names none."""
    form = TicketForm(formdata=drafts.form_data(draft), notation=settings.get("tooth_notation"))
    if case is not None and not (form.case_number.data or "").strip():
        form.case_number.data = case.case_number
    return form


# Stands for the table's rows in a stored table: the rest of the table is the same for all who see the same state.
_ROWS_SLOT = "\x00rows\x00"
_TABLES_KEPT = 512  # table states (sort, filter, page, counts, language, ...) kept per app


def _table_html(table) -> Markup:
    """The ticket table as HTML: its heading, quick filters with their counts, sort buttons and pager
    (most of the template's work: a dozen translated strings, five sort-button macros, the filter and
    pager links) rendered once per app for everything they depend on, then filled with this page's
    rows (TablePage.rows_html, written in Python). The key holds every value the template reads besides
    the rows, the counts included, so a new ticket or status change renders afresh; the cache lives on
    the app, so each test's app starts empty."""
    staff = current_user.is_staff
    key = (current_language(), staff, request.script_root, table.base_url, table.sort, table.status, table.page,
           table.has_next, table.q, not table.tickets, table.total, tuple(sorted(table.counts.items())))
    tables = current_app.extensions.setdefault("smilepass.ticket_tables", {})
    html = tables.get(key)
    if html is None:
        html = render_block(INDEX, "ticket_table", table=table, rows_slot=Markup(_ROWS_SLOT))
        if html.count(_ROWS_SLOT) != 1:  # never expected: render the whole table instead
            return Markup(render_block(INDEX, "ticket_table", table=table))
        if len(tables) >= _TABLES_KEPT:
            tables.clear()
        tables[key] = html
    rows = table.rows_html(_detail_prefix(), _case_prefix(), staff)
    return Markup(html.replace(_ROWS_SLOT, rows))


def _detail_prefix() -> str:
    """A ticket's and a case's link without their id (what the template's `detail` and `case_page` are)."""
    return url_for("support.detail", ticket_id=0)[:-1]


def _case_prefix() -> str:
    return url_for("cases.detail", case_id=0)[:-1]


@bp.get("/")
@login_required
def index():
    if is_htmx():
        # The table partial (sorting, filters, pages) needs no form.
        return make_response(_table_html(_table(current_user._get_current_object())))
    created = None
    created_id = id_arg(request.args.get("created"))
    if created_id is not None:
        created = Ticket.get_visible(created_id, current_user)
    # "New request about this case" from a case page; a case the user may not see is ignored.
    case_id = id_arg(request.args.get("case"))
    case = Case.get_visible(case_id, current_user) if case_id is not None else None
    draft = drafts.find(current_user, drafts.NEW_REQUEST)
    if draft is None and case is None and created is None:
        # The usual visit: the empty form, which is the same for everyone of a role (see _blank_form_html).
        context = _index_context(None)
        return page_or_block(INDEX, "ticket_table", new_request_html=_blank_form_html(context),
                             table_html=_table_html(context["table"]), **context)
    form = _draft_form(draft, case) if draft else _blank_form(case)
    return page_or_block(
        INDEX, "ticket_table", **_index_context(form, created, draft, draft_restored=draft is not None)
    )


# Stands for the session's CSRF token in a stored form: the only part of the empty form that is the user's own.
_CSRF_SLOT = "\x00csrf\x00"
_BLANK_FORMS_KEPT = 64  # (language, notation, role, day, script root) combinations: a handful a day


def _blank_form_html(context: dict) -> Markup:
    """The empty New Request form as HTML, rendered once per app for what it depends on (language, the
    clinic's tooth notation, staff or not, today's date as the date field's maximum, the URL prefix) and
    then reused with this session's CSRF token. Building the WTForms form and rendering its template
    were a third of the Support page's time. The notation is read per request, so a changed setting
    shows at once; the cache lives on the app, so each test's app starts empty."""
    notation = settings.get("tooth_notation")
    key = (current_language(), notation, current_user.is_staff, context["today"], request.script_root)
    forms = current_app.extensions.setdefault("smilepass.blank_forms", {})
    html = forms.get(key)
    if html is None:
        token = generate_csrf()
        rendered = render_block(INDEX, "new_request", **{**context, "form": _blank_form()})
        if token not in rendered:  # a form without the token cannot be shared; never expected
            return Markup(rendered)
        if len(forms) >= _BLANK_FORMS_KEPT:
            forms.clear()
        html = forms[key] = rendered.replace(token, _CSRF_SLOT)
    return Markup(html.replace(_CSRF_SLOT, generate_csrf()))


@bp.get("/case-suggestions")
@login_required
def case_suggestions():
    """<option>s for the case field's <datalist>, filled by htmx as the user types (the input sends
    its own value as case_number; q= works too)."""
    typed = request.args.get("q", request.args.get("case_number", ""))
    found = tickets.case_suggestions(current_user._get_current_object(), typed[:40])
    return render_template("support/_case_options.html", suggestions=found)


def _linked_case(form: TicketForm, user):
    """The case the typed number names among the cases this user may see, or None with an error on
    the field (the same error whether the case is missing or someone else's)."""
    number = (form.case_number.data or "").strip()
    if not number or form.case_number.errors:
        return None
    case = tickets.find_case(user, number)
    if case is None:
        missing = (gettext("No case %(number)s.", number=number) if user.is_staff
                   else gettext("No case %(number)s among your cases.", number=number))
        form.case_number.errors = list(form.case_number.errors) + [missing]
    return case


@bp.post("/tickets")
@login_required
def create():
    form = TicketForm()
    user = current_user._get_current_object()
    valid = form.validate_on_submit()
    case = _linked_case(form, user)
    status = 422
    if valid and not form.case_number.errors:
        try:
            with StagedUploads(current_app.config) as uploads:
                uploads.add_image(form.image.data)
                uploads.add_scan(form.scan.data)
                with database.atomic():
                    ticket = tickets.create_ticket(
                        user, form.title.data, form.description.data, form.priority.data, form.category.data,
                        case=case, details=form.case_details() if case is not None else None,
                        tried=form.tried.data or "", client=request_quality.client_summary(request.user_agent.string),
                    )
                    uploads.attach(ticket, user)
                    drafts.discard(user, drafts.NEW_REQUEST)  # sent: the draft has done its job
        except UploadRefused as exc:
            form[exc.field].errors = [str(exc)]
            status = exc.status
        except DatabaseBusy:
            # Nothing was saved: the form again with everything typed (htmx keeps its own in the page).
            return busy.respond(lambda: render_template(INDEX, **{
                **_index_context(form, draft=drafts.find(user, drafts.NEW_REQUEST)), "busy_notice": busy.notice()}))
        else:
            hand_over()  # the account manager's mail, now that the request is committed
            if is_htmx():
                context = _index_context(_blank_form(), created=ticket)
                return blocks(INDEX, ["new_request", "ticket_table_oob"], **context)
            return see_other(url_for("support.index", created=ticket.id))
    # Errors beside the fields, with what was typed kept.
    return page_or_block(INDEX, "new_request", status=status,
                         **_index_context(form, draft=drafts.find(user, drafts.NEW_REQUEST)))


def _detail_context(ticket, reply_form=None, status_error=None, arrived=None, status_confirm=None):
    user = current_user._get_current_object()
    # The reply box comes back as the user left it in their draft, unless a form is being re-shown.
    reply_draft = drafts.find(user, drafts.REPLY, ticket.id)
    reply_draft_restored = reply_form is None and reply_draft is not None
    attachments = list(Attachment.shown_to(ticket.attachments, user).order_by(Attachment.id))
    if reply_draft_restored:
        reply_form = ReplyForm(formdata=drafts.form_data(reply_draft))
    return {
        "busy_notice": [],  # see create()
        "reply_draft": reply_draft,
        "reply_draft_restored": reply_draft_restored,
        "ticket": ticket,
        "thread": tickets.thread(ticket, user),
        "attachments": attachments,
        # Screenshots sent with replies, shown under their reply (only replies this user sees are shown).
        "reply_attachments": tickets.by_message(attachments),
        "scans": list(Scan.shown_to(ticket.scans, user).order_by(Scan.id)),
        "rerun_form": RerunForm(formdata=None),
        "reply_form": reply_form or ReplyForm(formdata=None),
        "status_form": StatusForm(formdata=None),
        "transitions": tickets.allowed_transitions(ticket, user),
        "status_error": status_error,
        "case_panel": tickets.case_panel(ticket, user),
        "quality": _request_quality(ticket, user),
        "sla_clock": sla.clock(ticket, utcnow()),
        # Live page (docs/live.md): the thread's version as rendered, sent back by the forms and the poll.
        "live_version": tickets.version(ticket, user),
        "live_news": False,
        # A reply or status change sent after something else arrived: what arrived, and (status) the
        # status the user asked for, to confirm.
        "arrived": arrived or [],
        "status_confirm": status_confirm,
    }


def _request_quality(ticket, user):
    """Staff only: which of the four things that make a request easy to answer it came with."""
    if not user.is_staff:
        return None
    return request_quality.assess(ticket, request_quality.has_screenshot(ticket))


@bp.get("/tickets/<int:ticket_id>")
@login_required
def detail(ticket_id: int):
    ticket = visible_or_404(Ticket, ticket_id)
    context = _detail_context(ticket)
    # Seeing the linked case's details, screenshots or scans is a view of patient data.
    if context["case_panel"] is not None or context["attachments"] or context["scans"]:
        audit.record("ticket_view", ticket)
    return page_or_block(DETAIL, "conversation", **context)


@bp.post("/tickets/<int:ticket_id>/replies")
@login_required
def reply(ticket_id: int):
    ticket = visible_or_404(Ticket, ticket_id)
    form = ReplyForm()
    status = 422
    if form.validate_on_submit():
        user = current_user._get_current_object()
        arrived = _arrived(ticket, user)
        if arrived:
            # Something came in while the reply was typed: show it, keep the text, ask to send anyway.
            context = _detail_context(ticket, reply_form=form, arrived=arrived)
            if is_htmx():
                return blocks(DETAIL, ["conversation", "status_panel_oob"], status=409, **context)
            return render_template(DETAIL, **context), 409
        try:
            with StagedUploads(current_app.config) as uploads:
                uploads.add_image(form.image.data)
                uploads.add_scan(form.scan.data)
                with database.atomic():
                    result = tickets.add_reply(ticket, user, form.body.data, internal=form.internal.data)
                    uploads.attach(ticket, user, message=result.message)
                    drafts.discard(user, drafts.REPLY, ticket.id)  # sent: the draft has done its job
        except tickets.TransitionRefused as exc:
            form.body.errors = [str(exc)]
        except UploadRefused as exc:
            form[exc.field].errors = [str(exc)]
            status = exc.status
        except DatabaseBusy:
            # Nothing was saved: the page again with the reply as typed (htmx keeps its own in the page).
            return busy.respond(lambda: render_template(DETAIL, **{
                **_detail_context(ticket, reply_form=form), "busy_notice": busy.notice()}))
        else:
            hand_over()  # the reply's mail, now that its transaction has committed
            if is_htmx():
                return blocks(DETAIL, ["conversation", "status_panel_oob", "scans_oob"], **_detail_context(ticket))
            return see_other(url_for("support.detail", ticket_id=ticket.id) + "#reply")
    return page_or_block(DETAIL, "conversation", status=status, **_detail_context(ticket, reply_form=form))


@bp.post("/tickets/<int:ticket_id>/status")
@login_required
def change_status(ticket_id: int):
    ticket = visible_or_404(Ticket, ticket_id)
    StatusForm().validate_on_submit()  # CSRF is checked app-wide; the form has no other fields.
    raw = request.form.get("status", "")
    user = current_user._get_current_object()
    error = None
    status = 422
    confirm = None
    arrived = []
    try:
        target = Status(parse_int(raw)) if parse_int(raw) is not None else None
        if target is None:
            raise tickets.TransitionRefused(gettext("Choose a status."))
        # The status the user saw (compare and set): another person's move in between is never overwritten.
        expected = parse_int(request.form.get("from_status", ""))
        expected = Status(expected) if expected in {s.value for s in Status} else None
        if expected is not None and expected != ticket.status_enum:
            raise tickets.StatusConflict("", ticket.status_enum)
        arrived = _arrived(ticket, user)
        if arrived:
            confirm = target  # a reply came in since the page was loaded: ask before moving
        else:
            tickets.change_status(ticket, user, target, expected=expected)
    except tickets.StatusConflict as exc:
        who = tickets.last_mover(ticket)
        error = (gettext("Meanwhile %(name)s moved this ticket to %(status)s. Nothing was changed.",
                         name=who, status=exc.current.label) if who else
                 gettext("Meanwhile someone else moved this ticket to %(status)s. Nothing was changed.",
                         status=exc.current.label))
        status = 409
        ticket = Ticket.get_by_id(ticket.id)
    except (tickets.TransitionRefused, ValueError) as exc:
        error = str(exc) if isinstance(exc, tickets.TransitionRefused) else gettext("Unknown status.")
    if error is None and confirm is None and not is_htmx():
        flash(gettext("%(number)s is now %(status)s.", number=ticket.number, status=ticket.status_enum.label), "info")
        return see_other(url_for("support.detail", ticket_id=ticket.id))
    context = _detail_context(ticket, status_error=error, arrived=arrived if confirm else None,
                              status_confirm=confirm)
    status = 409 if confirm else (status if error else 200)
    if is_htmx():
        return blocks(DETAIL, ["status_panel", "thread_oob"], status=status, **context)
    return render_template(DETAIL, **context), status


def _arrived(ticket, user) -> list:
    """What arrived since the page the form came from was rendered (its `seen` version), unless the
    user already chose to send anyway (`confirm`). Forms without a version (older pages) are not asked."""
    seen = tickets.parse_version(request.form.get("seen"))
    if seen is None or request.form.get("confirm") == "1":
        return []
    return tickets.arrived_since(ticket, user, seen)


# The parts of a ticket page a live event names (live/events.py), as out-of-band blocks of DETAIL.
LIVE_PARTS = {
    "thread": ["thread_oob"],
    "status": ["status_panel_oob", "thread_oob"],
    "assignment": ["assign_panel_oob"],
    "escalation": ["escalation_oob"],
    "scans": ["scans_oob"],
    "presence": ["presence_oob"],
    "inbox": ["inbox_link_oob"],
    "all": ["thread_oob", "status_panel_oob", "assign_panel_oob", "escalation_oob", "scans_oob",
            "presence_oob", "inbox_link_oob"],
}
STAFF_PARTS = {"assign_panel_oob", "presence_oob"}


@bp.get("/tickets/<int:ticket_id>/parts")
@login_required
def live_parts(ticket_id: int):
    """The parts of the ticket page a live event said changed (?kind=thread|status|…), fetched with the
    viewer's own rights; kind=poll is the 15-second check of pages without a live stream: it answers
    with the "new replies — reload" notice when the thread moved past ?seen=."""
    ticket = visible_or_404(Ticket, ticket_id)
    user = current_user._get_current_object()
    kind = request.args.get("kind", "")
    if kind == "poll":
        context = {"ticket": ticket, "live_version": request.args.get("seen", "")[:40]}
        context["live_news"] = tickets.version(ticket, user) != context["live_version"]
        return page_or_block(DETAIL, "live_poll", **context) if is_htmx() else see_other(
            url_for("support.detail", ticket_id=ticket.id))
    names = LIVE_PARTS.get(kind)
    if names is None:
        abort(404)
    if not is_htmx():
        return see_other(url_for("support.detail", ticket_id=ticket.id))
    names = [n for n in names if user.is_staff or n not in STAFF_PARTS]
    # The poll's version moves along, so a page kept current by the stream never shows the reload notice.
    return blocks(DETAIL, names + ["live_poll_oob"], **_detail_context(ticket))


@bp.get("/attachments/<int:attachment_id>")
@login_required
def download(attachment_id: int):
    attachment = visible_or_404(Attachment, attachment_id)
    audit.record("attachment_download", attachment)
    return send_stored(attachment.stored_name, attachment.content_type, download_name=attachment.original_name)


@bp.get("/attachments/<int:attachment_id>/thumb")
@login_required
def thumbnail(attachment_id: int):
    attachment = visible_or_404(Attachment, attachment_id)
    if not attachment.thumb_name:
        abort(404)
    audit.record("attachment_thumbnail", attachment)
    return send_stored(attachment.thumb_name, "image/webp")

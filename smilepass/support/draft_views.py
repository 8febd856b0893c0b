"""Save draft / Discard draft on the New Request form and on a ticket's reply box. The buttons submit
their form here (without JS a plain POST, then 303 back to the page, which shows the draft); with htmx
saving answers only the small status box beside the buttons, so nothing typed is touched."""
from flask import Blueprint, flash, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required

from ..auth.guards import visible_or_404
from ..htmx import is_htmx, page_or_block, see_other
from ..models import Status, Ticket
from . import drafts
from .forms import ReplyForm, TicketForm
from .views import DETAIL, INDEX, _blank_form, _detail_context, _index_context

bp = Blueprint("drafts", __name__, url_prefix="/support")

STATUS_BOX = "support/_draft_controls.html"


def _user():
    return current_user._get_current_object()


def _too_long_message(form, refused: drafts.DraftTooLong) -> str:
    return gettext("Draft not saved: %(field)s is longer than %(limit)d characters.",
                   field=form[refused.field].label.text, limit=refused.limit)


def _status_box(kind: str, draft, ticket=None, error=None, status=200):
    """The status box beside the buttons (htmx): "Draft saved 14:02", or why it was not."""
    body = render_template(STATUS_BOX, draft_kind=kind, draft=draft, draft_saved=error is None, draft_error=error,
                           ticket=ticket)
    return body, status


@bp.post("/drafts/new-request")
@login_required
def save_request_draft():
    user = _user()
    try:
        draft = drafts.save(user, drafts.NEW_REQUEST, request.form)
    except drafts.DraftTooLong as refused:
        # Nothing is lost: the form comes back as typed, with the reason beside the field.
        form = TicketForm(formdata=request.form)
        message = _too_long_message(form, refused)
        if is_htmx():
            return _status_box(drafts.NEW_REQUEST, drafts.find(user, drafts.NEW_REQUEST), error=message, status=422)
        form[refused.field].errors = [message]
        context = _index_context(form, draft=drafts.find(user, drafts.NEW_REQUEST))
        return page_or_block(INDEX, "new_request", status=422, draft_error=message, **context)
    if is_htmx():
        return _status_box(drafts.NEW_REQUEST, draft)
    flash(gettext("Draft saved.") if draft else gettext("Nothing typed yet, so there is no draft to keep."), "info")
    return see_other(url_for("support.index"))


@bp.post("/drafts/new-request/discard")
@login_required
def discard_request_draft():
    drafts.discard(_user(), drafts.NEW_REQUEST)
    if is_htmx():
        # The form starts over, as after a reload.
        return page_or_block(INDEX, "new_request", draft_discarded=True, **_index_context(_blank_form()))
    flash(gettext("Draft discarded."), "info")
    return see_other(url_for("support.index"))


@bp.post("/tickets/<int:ticket_id>/draft")
@login_required
def save_reply_draft(ticket_id: int):
    ticket = visible_or_404(Ticket, ticket_id)  # someone else's ticket: 404, like a missing one
    user = _user()
    if ticket.status_enum == Status.CLOSED:
        # Closed while the page was open: a draft here could never be sent, nor even be seen.
        message = gettext("This ticket is closed, so the draft was not kept.")
        if is_htmx():
            return _status_box(drafts.REPLY, None, ticket, message, 422)
        flash(message, "error")
        return see_other(url_for("support.detail", ticket_id=ticket.id))
    try:
        draft = drafts.save(user, drafts.REPLY, request.form, ticket.id)
    except drafts.DraftTooLong as refused:
        form = ReplyForm(formdata=request.form)
        message = _too_long_message(form, refused)
        if is_htmx():
            return _status_box(drafts.REPLY, drafts.find(user, drafts.REPLY, ticket.id), ticket, message, 422)
        form[refused.field].errors = [message]
        return render_template(DETAIL, reply_draft_error=message, **_detail_context(ticket, reply_form=form)), 422
    if is_htmx():
        return _status_box(drafts.REPLY, draft, ticket)
    flash(gettext("Draft saved.") if draft else gettext("Nothing typed yet, so there is no draft to keep."), "info")
    return see_other(url_for("support.detail", ticket_id=ticket.id) + "#reply")


@bp.post("/tickets/<int:ticket_id>/draft/discard")
@login_required
def discard_reply_draft(ticket_id: int):
    ticket = visible_or_404(Ticket, ticket_id)
    drafts.discard(_user(), drafts.REPLY, ticket.id)
    if is_htmx():
        return page_or_block(DETAIL, "conversation", reply_draft_discarded=True, **_detail_context(ticket))
    flash(gettext("Draft discarded."), "info")
    return see_other(url_for("support.detail", ticket_id=ticket.id) + "#reply")

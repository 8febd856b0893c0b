"""Escalating a ticket from its page (staff), and the escalation panel the ticket page shows."""
from flask import Blueprint, flash, render_template, url_for
from flask_babel import gettext
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

from ..auth.guards import STAFF, role_required, visible_or_404
from ..htmx import is_htmx, page_or_block, see_other
from ..i18n import lazy_gettext
from ..models import EscalationRole, Ticket
from ..support import views
from . import escalation

bp = Blueprint("escalation", __name__, url_prefix="/support")

PANEL = "support/_escalation.html"


class EscalateForm(FlaskForm):
    reason = TextAreaField(
        lazy_gettext("Reason"),
        validators=[
            DataRequired(lazy_gettext("Say why the request needs escalating.")),
            Length(max=escalation.REASON_MAX),
        ],
    )


@bp.app_template_global()
def escalation_panel(ticket, form=None, error=None):
    """What the ticket page's escalation panel needs. A template global rather than a key in the
    detail view's context, so the panel renders the same from the ticket page and from the escalate
    endpoint's fragment."""
    user = current_user._get_current_object()
    next_role = EscalationRole.for_level(ticket.escalation_level + 1)
    return {
        "steps": escalation.history(ticket) if ticket.escalation_level else [],
        "current": EscalationRole.for_level(ticket.escalation_level),
        "next_role": next_role,
        "can_escalate": user.is_staff and escalation.refusal(ticket, user) is None,
        "why_not": escalation.refusal(ticket, user) if user.is_staff else None,
        "form": form or EscalateForm(formdata=None),
        "error": error,
    }


@bp.post("/tickets/<int:ticket_id>/escalate")
@role_required(*STAFF)
def escalate(ticket_id: int):
    ticket = visible_or_404(Ticket, ticket_id)
    form = EscalateForm()
    error = None
    if form.validate_on_submit():
        try:
            step = escalation.escalate(ticket, current_user._get_current_object(), form.reason.data)
        except escalation.EscalationRefused as exc:
            error = str(exc)
        else:
            if is_htmx():
                return render_template(PANEL, ticket=ticket, panel=escalation_panel(ticket))
            owner = step.owner.display_name if step.owner_id else gettext("nobody yet (admins are told)")
            flash(gettext("%(number)s is escalated to %(step)s: %(owner)s.", number=ticket.number,
                          step=EscalationRole.for_level(step.level).label, owner=owner), "info")
            return see_other(url_for("support.detail", ticket_id=ticket.id) + "#escalation")
    panel = escalation_panel(ticket, form=form, error=error)
    if is_htmx():
        return render_template(PANEL, ticket=ticket, panel=panel), 422
    return page_or_block(views.DETAIL, "conversation", status=422, escalation=panel, **views._detail_context(ticket))

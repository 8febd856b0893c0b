"""Contact us (GET+POST, no sign-in needed, rate-limited per client address and per sender
address) and the Contact inbox (supervisors and admins)."""
from flask import abort, current_app, flash, render_template, request, url_for
from flask_login import current_user, login_required
from flask_babel import gettext

from ..cases.patient import limiter
from ..htmx import is_htmx, see_other
from ..models import ContactRequest, normalize_email
from . import bp, urgent
from .forms import ContactForm, HandledForm

DEFAULT_LIMIT = "5 per hour"


@bp.record_once
def _defaults(state):
    state.app.config.setdefault("CONTACT_RATE_LIMIT", DEFAULT_LIMIT)


def _limit() -> str:
    return current_app.config["CONTACT_RATE_LIMIT"]


def _sender_address() -> str:
    return "contact-sender:" + normalize_email(request.form.get("email", ""))


def _accepted(response) -> bool:
    # Only requests that were taken (and mailed) count: a form sent back with errors costs nothing.
    return response.status_code in (200, 303)


@bp.errorhandler(429)
def too_many(err):
    return render_template("contact/too_many.html"), 429


@bp.route("", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"], deduct_when=_accepted)
@limiter.limit(_limit, methods=["POST"], deduct_when=_accepted, key_func=_sender_address)
def contact():
    user = current_user._get_current_object() if current_user.is_authenticated else None
    form = ContactForm()
    if request.method == "GET" and user is not None:
        form.name.data, form.email.data = user.name, user.email
    if form.validate_on_submit():
        if not form.website.data:  # a robot filled the honeypot: thank it, keep nothing
            urgent.submit(form.name.data, form.email.data, form.topic.data, form.message.data, user,
                          request.remote_addr or "")
        return see_other(url_for("contact.sent"))
    status = 422 if request.method == "POST" else 200
    return render_template("contact/form.html", form=form, message_max=urgent.MESSAGE_MAX), status


@bp.get("/sent")
def sent():
    return render_template("contact/sent.html")


def _inbox_reader_or_404():
    if not urgent.may_read_inbox(current_user):
        abort(404)
    return current_user._get_current_object()


@bp.get("/inbox")
@login_required
def inbox():
    _inbox_reader_or_404()
    show_handled = request.args.get("show") == "all"
    before = request.args.get("before", "")
    rows = urgent.inbox(show_handled, int(before) if before.isdigit() else None)
    return render_template("contact/inbox.html", rows=rows, show_handled=show_handled, topics=urgent.TOPIC_LABELS,
                           open_count=urgent.open_count(), page_size=urgent.INBOX_PAGE, handled_form=HandledForm())


@bp.post("/inbox/<int:contact_id>/handled")
@login_required
def mark_handled(contact_id: int):
    reader = _inbox_reader_or_404()
    HandledForm().validate_on_submit()  # CSRF is checked app-wide
    contact = ContactRequest.get_or_none(ContactRequest.id == contact_id)
    if contact is None:
        abort(404)
    if urgent.mark_handled(contact, reader):
        message = gettext("Contact request #%(number)s is marked handled.", number=contact.id)
    else:
        message = gettext("Contact request #%(number)s was already handled.", number=contact.id)
    if is_htmx():
        return render_template("contact/_row.html", row=contact, topics=urgent.TOPIC_LABELS,
                               handled_form=HandledForm())
    flash(message, "info")
    return see_other(url_for("contact.inbox", show=request.args.get("show") or None))

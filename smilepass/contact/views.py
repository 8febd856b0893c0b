"""Contact us (GET+POST, no sign-in needed, rate-limited per client address and per sender
address) and the Contact inbox (supervisors and admins), where a message opens with its thread and
the supervisors answer it."""
from flask import Blueprint, current_app, flash, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from ..auth.guards import id_arg, role_required, visible_or_404
from ..cases.patient import limiter
from ..htmx import is_htmx, see_other
from ..models import CONTACT_INBOX_READERS, ContactRequest, normalize_email
from . import urgent
from .forms import AnswerForm, ContactForm, HandledForm

bp = Blueprint("contact", __name__, url_prefix="/contact")

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


@bp.get("/inbox")
@role_required(*CONTACT_INBOX_READERS)
def inbox():
    show_handled = request.args.get("show") == "all"
    before = request.args.get("before", "")
    rows = urgent.inbox(show_handled, id_arg(before))
    return render_template("contact/inbox.html", rows=rows, show_handled=show_handled, topics=urgent.TOPIC_LABELS,
                           open_count=urgent.open_count(), page_size=urgent.INBOX_PAGE, handled_form=HandledForm(),
                           reply_counts=urgent.reply_counts(rows))


def _message_page(contact: ContactRequest, form: AnswerForm, status: int = 200):
    return render_template("contact/message.html", contact=contact, topics=urgent.TOPIC_LABELS,
                           thread=urgent.thread(contact), form=form, message_max=urgent.MESSAGE_MAX), status


@bp.get("/inbox/<int:contact_id>")
@role_required(*CONTACT_INBOX_READERS)
def message(contact_id: int):
    """One message with the answers given so far, and the form to answer it."""
    return _message_page(visible_or_404(ContactRequest, contact_id), AnswerForm(formdata=None))


@bp.post("/inbox/<int:contact_id>/answers")
@role_required(*CONTACT_INBOX_READERS)
def answer(contact_id: int):
    reader = current_user._get_current_object()
    contact = visible_or_404(ContactRequest, contact_id)
    form = AnswerForm()
    if not form.validate_on_submit():
        return _message_page(contact, form, 422)
    urgent.answer(contact, reader, form.body.data, handled=form.handled.data)
    flash(gettext("Your answer to contact request #%(number)s is on its way to %(email)s.", number=contact.id,
                  email=contact.email), "success")
    return see_other(url_for("contact.message", contact_id=contact.id) + "#answers")


@bp.post("/inbox/<int:contact_id>/handled")
@role_required(*CONTACT_INBOX_READERS)
def mark_handled(contact_id: int):
    HandledForm().validate_on_submit()  # CSRF is checked app-wide
    contact = visible_or_404(ContactRequest, contact_id)
    if urgent.mark_handled(contact, current_user._get_current_object()):
        message = gettext("Contact request #%(number)s is marked handled.", number=contact.id)
    else:
        message = gettext("Contact request #%(number)s was already handled.", number=contact.id)
    if is_htmx():
        return render_template("contact/_row.html", row=contact, topics=urgent.TOPIC_LABELS,
                               handled_form=HandledForm(), reply_counts=urgent.reply_counts([contact]))
    flash(message, "info")
    return see_other(url_for("contact.inbox", show=request.args.get("show") or None))

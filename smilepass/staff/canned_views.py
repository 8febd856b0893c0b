"""Canned replies: the staff page that keeps them, and inserting one into a ticket's reply box."""
from flask import Blueprint, flash, render_template, request, url_for
from flask_babel import gettext

from ..auth.guards import STAFF, id_arg, role_required, visible_or_404
from ..htmx import is_htmx, see_other
from ..models import CannedReply, Ticket
from ..support.forms import ReplyForm
from ..support.views import DETAIL, _detail_context
from . import canned
from .forms import CannedForm, PostForm
from .views import _user

bp = Blueprint("canned", __name__, url_prefix="/queue")

LIST = "staff/canned.html"
EDIT = "staff/canned_edit.html"


def _list_page(form, status=200):
    return render_template(LIST, form=form, replies=canned.all_replies(), delete_form=PostForm(formdata=None),
                           placeholders=canned.PLACEHOLDERS, body_max=canned.BODY_MAX), status


@bp.get("/canned")
@role_required(*STAFF)
def canned_list():
    return _list_page(CannedForm(formdata=None))


@bp.post("/canned")
@role_required(*STAFF)
def canned_create():
    form = CannedForm()
    if form.validate_on_submit():
        try:
            reply = canned.create(form.title.data, form.body.data, _user())
        except canned.CannedRefused as exc:
            form.title.errors = [str(exc)]
        else:
            flash(gettext("Canned reply “%(title)s” saved.", title=reply.title), "success")
            return see_other(url_for("canned.canned_list"))
    return _list_page(form, 422)


@bp.route("/canned/<int:reply_id>", methods=["GET", "POST"])
@role_required(*STAFF)
def canned_edit(reply_id: int):
    reply = visible_or_404(CannedReply, reply_id)
    form = CannedForm(obj=reply) if request.method == "GET" else CannedForm()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                canned.update(reply, form.title.data, form.body.data, _user())
            except canned.CannedRefused as exc:
                form.title.errors = [str(exc)]
            else:
                flash(gettext("Canned reply “%(title)s” saved.", title=reply.title), "success")
                return see_other(url_for("canned.canned_list"))
        status = 422
    return render_template(EDIT, form=form, reply=reply, placeholders=canned.PLACEHOLDERS,
                           body_max=canned.BODY_MAX), status


@bp.post("/canned/<int:reply_id>/delete")
@role_required(*STAFF)
def canned_delete(reply_id: int):
    reply = visible_or_404(CannedReply, reply_id)
    PostForm().validate_on_submit()  # CSRF is checked app-wide; the form has no other fields.
    title = reply.title
    canned.delete(reply, _user())
    flash(gettext("Canned reply “%(title)s” deleted.", title=title), "info")
    return see_other(url_for("canned.canned_list"))


@bp.app_template_global()
def canned_reply_choices() -> list[tuple[int, str]]:
    return canned.choices()


@bp.get("/tickets/<int:ticket_id>/canned")
@role_required(*STAFF)
def canned_insert(ticket_id: int):
    """The reply box with the chosen canned reply added to what was typed: only the box for htmx,
    the whole ticket page without JS."""
    ticket = visible_or_404(Ticket, ticket_id)
    chosen = id_arg(request.args.get("canned"))
    reply = CannedReply.get_or_none(CannedReply.id == chosen) if chosen is not None else None
    draft = request.args.get("body", "")
    form = ReplyForm(formdata=None, body=canned.insert_into(draft, reply, ticket) if reply else draft)
    if reply is None:
        form.body.errors = [gettext("Choose a canned reply to insert.")]
    if is_htmx():
        return render_template("staff/_reply_body.html", ticket=ticket, reply_form=form), 200 if reply else 422
    return render_template(DETAIL, **_detail_context(ticket, reply_form=form)), 200 if reply else 422

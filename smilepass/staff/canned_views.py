"""Canned replies: the staff page that keeps them, and inserting one into a ticket's reply box."""
from flask import abort, flash, render_template, request, url_for
from flask_babel import gettext

from ..htmx import is_htmx, see_other
from ..models import CannedReply
from ..support.forms import ReplyForm
from ..support.views import DETAIL, _detail_context
from . import bp, canned
from .forms import CannedForm, PostForm
from .views import _ticket_or_404, _user, staff_required

LIST = "staff/canned.html"
EDIT = "staff/canned_edit.html"


def _reply_or_404(reply_id: int) -> CannedReply:
    reply = CannedReply.get_or_none(CannedReply.id == reply_id)
    if reply is None:
        abort(404)
    return reply


def _list_page(form, status=200):
    return render_template(LIST, form=form, replies=canned.all_replies(), delete_form=PostForm(formdata=None),
                           placeholders=canned.PLACEHOLDERS, body_max=canned.BODY_MAX), status


@bp.get("/canned")
@staff_required
def canned_list():
    return _list_page(CannedForm(formdata=None))


@bp.post("/canned")
@staff_required
def canned_create():
    form = CannedForm()
    if form.validate_on_submit():
        try:
            reply = canned.create(form.title.data, form.body.data, _user())
        except canned.CannedRefused as exc:
            form.title.errors = [str(exc)]
        else:
            flash(gettext("Canned reply “%(title)s” saved.", title=reply.title), "success")
            return see_other(url_for("staff.canned_list"))
    return _list_page(form, 422)


@bp.route("/canned/<int:reply_id>", methods=["GET", "POST"])
@staff_required
def canned_edit(reply_id: int):
    reply = _reply_or_404(reply_id)
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
                return see_other(url_for("staff.canned_list"))
        status = 422
    return render_template(EDIT, form=form, reply=reply, placeholders=canned.PLACEHOLDERS,
                           body_max=canned.BODY_MAX), status


@bp.post("/canned/<int:reply_id>/delete")
@staff_required
def canned_delete(reply_id: int):
    reply = _reply_or_404(reply_id)
    PostForm().validate_on_submit()  # CSRF is checked app-wide; the form has no other fields.
    title = reply.title
    canned.delete(reply, _user())
    flash(gettext("Canned reply “%(title)s” deleted.", title=title), "info")
    return see_other(url_for("staff.canned_list"))


@bp.app_template_global()
def canned_reply_choices() -> list[tuple[int, str]]:
    return canned.choices()


@bp.get("/tickets/<int:ticket_id>/canned")
@staff_required
def canned_insert(ticket_id: int):
    """The reply box with the chosen canned reply added to what was typed: only the box for htmx,
    the whole ticket page without JS."""
    ticket = _ticket_or_404(ticket_id)
    chosen = request.args.get("canned", "")
    reply = CannedReply.get_or_none(CannedReply.id == int(chosen)) if chosen.isdigit() else None
    draft = request.args.get("body", "")
    form = ReplyForm(formdata=None, body=canned.insert_into(draft, reply, ticket) if reply else draft)
    if reply is None:
        form.body.errors = [gettext("Choose a canned reply to insert.")]
    if is_htmx():
        return render_template("staff/_reply_body.html", ticket=ticket, reply_form=form), 200 if reply else 422
    return render_template(DETAIL, **_detail_context(ticket, reply_form=form)), 200 if reply else 422

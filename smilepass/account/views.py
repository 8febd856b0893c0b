"""My Account → Email notifications (one checkbox per event that applies to the user's role) and
the in-app notifications inbox."""
from flask import abort, flash, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import BooleanField
from flask_babel import gettext, ngettext

from .. import notifications
from ..htmx import blocks, is_htmx, page_or_block, see_other
from . import bp

PAGE = "account/notifications.html"


def _preferences_form(user):
    """A checkbox per event, built per request since which events apply depends on the role."""
    class PreferencesForm(FlaskForm):
        pass

    current = notifications.choices(user)
    for event in notifications.events_for(user):
        setattr(PreferencesForm, event.key, BooleanField(event.label, default=current[event.key]))
    return PreferencesForm()


@bp.route("/notifications", methods=["GET", "POST"], endpoint="notifications")
@login_required
def notification_preferences():
    user = current_user._get_current_object()
    events = notifications.events_for(user)
    form = _preferences_form(user)
    if form.validate_on_submit():
        changed = notifications.save_choices(user, {event.key: bool(form[event.key].data) for event in events})
        flash(gettext("Your email notifications are saved.") if changed else gettext("Nothing changed."), "success")
        return see_other(url_for("account.notifications"))
    status = 422 if request.method == "POST" else 200
    return render_template(PAGE, form=form, events=events), status


# In-app notifications: the inbox page and the unread badge in the header --------------------------

INBOX = "account/inbox.html"


class MarkReadForm(FlaskForm):
    """CSRF only: the notification is in the URL."""


@bp.app_template_global()
def unread_notifications() -> int:
    """The header badge, on every page for a signed-in user (one prepared COUNT)."""
    if not current_user.is_authenticated:
        return 0
    return notifications.unread_count(current_user._get_current_object())


def _inbox_context(user):
    return {"items": notifications.inbox(user), "form": MarkReadForm(formdata=None)}


@bp.get("/notifications/inbox", endpoint="inbox")
@login_required
def inbox():
    return page_or_block(INBOX, "inbox", **_inbox_context(current_user._get_current_object()))


@bp.post("/notifications/<int:notification_id>/read", endpoint="mark_read")
@login_required
def mark_read(notification_id: int):
    MarkReadForm().validate_on_submit()  # CSRF is checked app-wide; the form has no other fields.
    user = current_user._get_current_object()
    if notifications.mark_read(user, notification_id) is None:
        abort(404)  # someone else's notification is as absent as a missing one
    if is_htmx():
        return blocks(INBOX, ["inbox", "inbox_link_oob"], **_inbox_context(user))
    return see_other(url_for("account.inbox"))


@bp.post("/notifications/read-all", endpoint="mark_all_read")
@login_required
def mark_all_read():
    MarkReadForm().validate_on_submit()
    user = current_user._get_current_object()
    count = notifications.mark_all_read(user)
    if is_htmx():
        return blocks(INBOX, ["inbox", "inbox_link_oob"], **_inbox_context(user))
    flash(ngettext("%(num)d notification marked read.", "%(num)d notifications marked read.", count) if count
          else gettext("Nothing was unread."), "info")
    return see_other(url_for("account.inbox"))

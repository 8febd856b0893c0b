"""My Account → Email notifications (one checkbox per event that applies to the user's role), the in-app
notifications inbox, and Language (English, Deutsch, or whatever the browser asks for)."""
from flask import Blueprint, flash, render_template, request, url_for
from flask_babel import gettext, ngettext
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField

from .. import audit, i18n
from ..auth.guards import visible_or_404
from ..htmx import blocks, is_htmx, page_or_block, see_other
from ..i18n import lazy_gettext
from ..models import Notification
from ..notifications import events as notice_events
from ..notifications import inbox as notice_inbox

bp = Blueprint("account", __name__, url_prefix="/account")

PAGE = "account/notifications.html"
LANGUAGE_PAGE = "account/language.html"


def _preferences_form(user):
    """A checkbox per event, built per request since which events apply depends on the role."""
    class PreferencesForm(FlaskForm):
        pass

    current = notice_events.choices(user)
    for event in notice_events.events_for(user):
        setattr(PreferencesForm, event.key, BooleanField(event.label, default=current[event.key]))
    return PreferencesForm()


@bp.route("/notifications", methods=["GET", "POST"], endpoint="notifications")
@login_required
def notification_preferences():
    user = current_user._get_current_object()
    events = notice_events.events_for(user)
    form = _preferences_form(user)
    if form.validate_on_submit():
        changed = notice_events.save_choices(user, {event.key: bool(form[event.key].data) for event in events})
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
    return notice_inbox.unread_count(current_user._get_current_object())


def _inbox_context(user):
    return {"items": notice_inbox.inbox(user), "form": MarkReadForm(formdata=None)}


@bp.get("/notifications/inbox", endpoint="inbox")
@login_required
def inbox():
    return page_or_block(INBOX, "inbox", **_inbox_context(current_user._get_current_object()))


@bp.post("/notifications/<int:notification_id>/read", endpoint="mark_read")
@login_required
def mark_read(notification_id: int):
    MarkReadForm().validate_on_submit()  # CSRF is checked app-wide; the form has no other fields.
    user = current_user._get_current_object()
    # Someone else's notification is as absent as a missing one.
    notice_inbox.mark_read(user, visible_or_404(Notification, notification_id))
    if is_htmx():
        return blocks(INBOX, ["inbox", "inbox_link_oob"], **_inbox_context(user))
    return see_other(url_for("account.inbox"))


@bp.post("/notifications/read-all", endpoint="mark_all_read")
@login_required
def mark_all_read():
    MarkReadForm().validate_on_submit()
    user = current_user._get_current_object()
    count = notice_inbox.mark_all_read(user)
    if is_htmx():
        return blocks(INBOX, ["inbox", "inbox_link_oob"], **_inbox_context(user))
    flash(ngettext("%(num)d notification marked read.", "%(num)d notifications marked read.", count) if count
          else gettext("Nothing was unread."), "info")
    return see_other(url_for("account.inbox"))


# Language ---------------------------------------------------------------------------------------

class LanguageForm(FlaskForm):
    language = RadioField(lazy_gettext("Language"), choices=[], validate_choice=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Built per request: the "browser default" label is translated into the current language,
        # each language's own name is not (people look for "Deutsch", not "German").
        self.language.choices = [("", gettext("Browser default"))] + list(i18n.LANGUAGES.items())


@bp.route("/language", methods=["GET", "POST"], endpoint="language")
@login_required
def language():
    user = current_user._get_current_object()
    form = LanguageForm(data={"language": user.language or ""})
    if form.validate_on_submit():
        previous = user.language or ""
        if i18n.choose_language(user, form.language.data or ""):
            audit.record("language_change", user, detail=f"{previous or 'browser'} → {user.language or 'browser'}")
            # The locale was picked for this request before the change: refresh it so the message
            # below is already in the new language.
            i18n.refresh_locale()
            flash(gettext("Your language is saved."), "success")
        else:
            flash(gettext("Nothing changed."), "info")
        return see_other(url_for("account.language"))
    status = 422 if request.method == "POST" else 200
    return render_template(LANGUAGE_PAGE, form=form), status

"""My Account → Email notifications: one checkbox per event that applies to the user's role."""
from flask import flash, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import BooleanField

from .. import notifications
from ..htmx import see_other
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
        flash("Your email notifications are saved." if changed else "Nothing changed.", "success")
        return see_other(url_for("account.notifications"))
    status = 422 if request.method == "POST" else 200
    return render_template(PAGE, form=form, events=events), status

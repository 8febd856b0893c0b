"""My Account → Language: English, Deutsch, or whatever the browser asks for."""
from flask import flash, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import RadioField

from .. import audit, i18n
from ..htmx import see_other
from . import bp
from ..i18n import lazy_gettext

PAGE = "account/language.html"


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
    return render_template(PAGE, form=form), status

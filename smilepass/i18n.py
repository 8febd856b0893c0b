"""Languages: each user picks one (My Account → Language); without a choice the browser's
Accept-Language decides. Strings are marked with gettext (`_` in templates) and translated in
smilepass/translations/<lang>/LC_MESSAGES/messages.po, compiled by `make setup`."""
import functools

import flask_babel
from babel.dates import format_date, format_datetime
from babel.lists import format_list
from flask import Flask, has_request_context, request
from flask.globals import _cv_app
from flask_babel import Babel, force_locale, gettext
from flask_babel.speaklater import LazyString
from flask_login import current_user
from markupsafe import escape

# The languages with a complete catalogue; the first is the source language.
LANGUAGES = {"en": "English", "de": "Deutsch"}
DEFAULT_LANGUAGE = "en"

babel = Babel()


def select_locale() -> str:
    if not has_request_context():  # worker jobs and the CLI write in the source language
        return DEFAULT_LANGUAGE
    if current_user and current_user.is_authenticated:
        chosen = getattr(current_user, "language", "") or ""
        if chosen in LANGUAGES:
            return chosen
    return request.accept_languages.best_match(list(LANGUAGES), default=DEFAULT_LANGUAGE)


def choose_language(user, language: str) -> bool:
    """Store the user's language ("" = follow the browser); True when it changed."""
    if language and language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}")
    if (user.language or "") == language:
        return False
    user.language = language
    user.save(only=[type(user).language])
    return True


def refresh_locale() -> None:
    """Forget the locale Flask-Babel cached for this request, so the next string uses the new one."""
    flask_babel.refresh()


class LazyText(LazyString):
    """A lazy translation that is HTML-escaped like any other text. Flask-Babel's LazyString presents
    itself as safe HTML (its __html__ returns the raw text), so a lazy label or validation message with
    an apostrophe, or with a parameter, would reach the page unescaped."""

    def __html__(self):
        return str(escape(str(self)))


_catalogues: dict = {}


def current_translations():
    """Flask-Babel's catalogue for the locale in force, without its per-call lookups through `g`
    (about a hundred strings on the Support page made those a quarter of its time). The locale
    Flask-Babel chose for this request, or set with force_locale, is read from its own namespace on
    `g` (flask-babel 4, read through Flask 3's app-context variable); before the first string of a request it is not there yet, and Flask-Babel
    itself selects it."""
    app_ctx = _cv_app.get(None)
    babel_ctx = app_ctx.g.__dict__.get("_flask_babel") if app_ctx is not None else None
    locale = getattr(babel_ctx, "babel_locale", None)
    if locale is None:
        return flask_babel.get_translations()
    key = str(locale)
    translations = _catalogues.get(key)
    if translations is None:
        translations = _catalogues[key] = flask_babel.get_translations()
    return translations


def fast_gettext(string: str, **variables) -> str:
    """flask_babel.gettext through current_translations."""
    text = current_translations().ugettext(string)
    return text % variables if variables else text


def lazy_gettext(string: str, **variables) -> LazyText:
    """flask_babel.lazy_gettext, escaped when rendered (see LazyText); extracted by the same keyword."""
    return LazyText(fast_gettext, string, **variables)


def in_english(function):
    """Run `function` in the source language: for texts that are stored or sent to someone else (audit
    details, emails, in-app notification texts), whatever language the acting user reads."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with force_locale(DEFAULT_LANGUAGE):
            return function(*args, **kwargs)
    return wrapper


def source_language():
    """`with source_language():` the same as in_english, for a few lines."""
    return force_locale(DEFAULT_LANGUAGE)


# Display names of values that are stored in English or as keys; translated only when shown.
ROLE_LABELS = {"clinician": lazy_gettext("clinician"), "support": lazy_gettext("support"),
               "admin": lazy_gettext("admin")}
CATEGORY_LABELS = {
    "Technical Issues & Bugs": lazy_gettext("Technical Issues & Bugs"),
    "Case Submission": lazy_gettext("Case Submission"),
    "Scan & File Validation": lazy_gettext("Scan & File Validation"),
    "Treatment Plan Feedback": lazy_gettext("Treatment Plan Feedback"),
    "Production & Shipping": lazy_gettext("Production & Shipping"),
    "Warranty & Replacement": lazy_gettext("Warranty & Replacement"),
    "Billing & Insurance": lazy_gettext("Billing & Insurance"),
    "Account & Access": lazy_gettext("Account & Access"),
}
COLOUR_LABELS = {"teal": lazy_gettext("Teal"), "blue": lazy_gettext("Blue"), "purple": lazy_gettext("Purple"),
                 "pink": lazy_gettext("Pink"), "red": lazy_gettext("Red"), "orange": lazy_gettext("Orange"),
                 "yellow": lazy_gettext("Yellow"), "green": lazy_gettext("Green"), "gray": lazy_gettext("Gray")}
ARCH_LABELS = {"both": lazy_gettext("Both arches"), "upper": lazy_gettext("Upper arch"),
               "lower": lazy_gettext("Lower arch")}
# The scan repair's stages as the worker reports them (smilepass/mesh/pipeline.py).
SCAN_STAGE_LABELS = {
    "reading": lazy_gettext("Reading"), "cleaning": lazy_gettext("Cleaning"),
    "orienting": lazy_gettext("Orienting"), "filling holes": lazy_gettext("Filling holes"),
    "rendering": lazy_gettext("Rendering"), "saving": lazy_gettext("Saving"), "done": lazy_gettext("Done"),
}


class PerLanguage:
    """A table of ready-made HTML snippets (badges of the busiest tables), built once per language on
    first use instead of once per process."""

    def __init__(self, build):
        self._build = build
        self._tables = {}

    def current(self) -> dict:
        language = current_language()
        table = self._tables.get(language)
        if table is None:
            table = self._tables[language] = self._build()
        return table


def role_label(role: str) -> str:
    return str(ROLE_LABELS.get(role, role))


def category_label(category: str) -> str:
    """Categories are stored as their English names; other (older or renamed) ones show as stored."""
    label = CATEGORY_LABELS.get(category)
    return str(label) if label is not None else category


def colour_label(colour: str) -> str:
    label = COLOUR_LABELS.get(colour)
    return str(label) if label is not None else colour.capitalize()


def arches_label(arches: str) -> str:
    label = ARCH_LABELS.get(arches)
    return str(label) if label is not None else arches.capitalize()


def scan_stage_label(stage: str) -> str:
    if not stage:
        return ""
    label = SCAN_STAGE_LABELS.get(stage.lower())
    return str(label) if label is not None else stage.capitalize()


def day_month_year(value) -> str:
    """"03 Dec 2026", month names in the current language ("03 Dez. 2026")."""
    return format_date(value, "dd MMM yyyy", locale=current_language())


def local_datetime(value) -> str:
    """An aware datetime in its own time zone: "Thu 03 Dec 2026, 14:00" ("Do. 03 Dez. 2026, 14:00")."""
    return format_datetime(value, "EEE dd MMM yyyy, HH:mm", tzinfo=value.tzinfo, locale=current_language())


def and_list(items) -> str:
    """"a, b and c" in the current language."""
    items = [str(item) for item in items]
    if not items:
        return ""
    return format_list(items, locale=current_language())


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.install_gettext_callables(
        gettext=lambda string: current_translations().ugettext(string),
        ngettext=lambda singular, plural, n: current_translations().ungettext(singular, plural, n),
        pgettext=lambda context, string: current_translations().upgettext(context, string),
        npgettext=lambda context, singular, plural, n: current_translations().unpgettext(context, singular, plural, n),
        newstyle=True,
    )
    # `<html lang>` follows the language the page is rendered in.
    app.add_template_global(current_language)
    app.add_template_global(role_label)
    for name, function in [("category_label", category_label), ("colour_label", colour_label),
                           ("arches_label", arches_label), ("scan_stage_label", scan_stage_label),
                           ("and_list", and_list), ("day_month_year", day_month_year),
                           ("local_datetime", local_datetime)]:
        app.add_template_filter(function, name)


def current_language() -> str:
    return str(flask_babel.get_locale() or DEFAULT_LANGUAGE)

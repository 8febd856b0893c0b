"""Languages: each user picks one (My Account → Language); without a choice the browser's
Accept-Language decides. Strings are marked with gettext (`_` in templates) and translated in
smilepass/translations/<lang>/LC_MESSAGES/messages.po, compiled by `make setup`."""
import functools

import flask_babel
from babel.dates import format_date, format_datetime
from babel.lists import format_list
from flask import Flask, has_request_context, request
from flask.globals import _cv_app
from flask_babel import Babel, force_locale
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


def _babel_state():
    """Flask-Babel's per-request namespace on `g` and the locale it holds (None before the first string
    of a request), read through Flask 3's app-context variable (flask-babel 4)."""
    app_ctx = _cv_app.get(None)
    babel_ctx = app_ctx.g.__dict__.get("_flask_babel") if app_ctx is not None else None
    return babel_ctx, getattr(babel_ctx, "babel_locale", None)


def current_translations():
    """Flask-Babel's catalogue for the locale in force, without its per-call lookups through `g`
    (about a hundred strings on the Support page made those a quarter of its time). The locale
    Flask-Babel chose for this request, or set with force_locale, is read from its own namespace on
    `g`; before the first string of a request it is not there yet, and Flask-Babel itself selects it.
    The catalogue found is noted in the same namespace beside the Locale it is for: the next string of
    the request checks that it is still the same Locale object (force_locale puts in another one) instead
    of hashing and comparing the Locale in a dictionary again."""
    babel_ctx, locale = _babel_state()
    if locale is None:
        return flask_babel.get_translations()
    noted = babel_ctx.__dict__.get("smilepass_catalogue")
    if noted is not None and noted[0] is locale:
        return noted[1]
    # Keyed by the Locale itself: hashing it is cheaper than str(), which builds its identifier each time.
    translations = _catalogues.get(locale)
    if translations is None:
        translations = _catalogues[locale] = flask_babel.get_translations()
    babel_ctx.smilepass_catalogue = (locale, translations)
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
    for name, function in [("and_list", and_list), ("day_month_year", day_month_year),
                           ("local_datetime", local_datetime)]:
        app.add_template_filter(function, name)


_language_codes: dict = {}


def current_language() -> str:
    """The code of the language in force ("en", "de"). Read as current_translations reads the locale, and
    its code kept per Locale: str(Locale) builds the identifier afresh on every call, and the busiest
    pages ask several times a request (PerLanguage tables, the page's lang attribute, cached fragments)."""
    locale = _babel_state()[1] or flask_babel.get_locale()
    if locale is None:
        return DEFAULT_LANGUAGE
    code = _language_codes.get(locale)
    if code is None:
        code = _language_codes[locale] = str(locale)
    return code

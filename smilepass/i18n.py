"""Languages: each user picks one (My Account → Language); without a choice the browser's
Accept-Language decides. Strings are marked with gettext (`_` in templates) and translated in
smilepass/translations/<lang>/LC_MESSAGES/messages.po, compiled by `make setup`."""
from flask import Flask, request
from flask_babel import Babel
from flask_login import current_user

# The languages with a complete catalogue; the first is the source language.
LANGUAGES = {"en": "English", "de": "Deutsch"}
DEFAULT_LANGUAGE = "en"

babel = Babel()


def select_locale() -> str:
    if current_user and current_user.is_authenticated:
        chosen = getattr(current_user, "language", "") or ""
        if chosen in LANGUAGES:
            return chosen
    return request.accept_languages.best_match(list(LANGUAGES), default=DEFAULT_LANGUAGE)


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    babel.init_app(app, locale_selector=select_locale)

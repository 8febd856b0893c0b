"""The one exception the web side has to know about."""


class MeshRejected(Exception):
    """The file is not a usable STL/PLY triangle mesh.

    `str(exc)` is one specific, user-facing sentence in English (it names what is wrong and, where it
    helps, what to do). Raised before any mesh library sees the file, and by `repair()` when nothing
    usable is left. Retrying cannot help: the job must not be retried.

    The sentence is kept apart as `message`, an English template with %(name)s placeholders, and its
    `params`, so the web side can show it in the reader's language (gettext(message, **params))
    while this package stays free of Flask and its command line speaks English. Every raise passes the
    template as a string literal: the catalogue extraction picks it up by the `MeshRejected` keyword
    (Makefile `translations`)."""

    def __init__(self, message: str, **params):
        self.message = message
        self.params = {name: _plain(value) for name, value in params.items()}
        super().__init__(message % {name: _english(value) for name, value in self.params.items()} if params
                         else message)


class Sentence:
    """A sentence (or part of one) the repair writes for people, e.g. a verdict reason: an English
    template with %(name)s placeholders and its params, like MeshRejected. `str()` is the English text
    (stored, and printed by the command line); `as_json()` goes into the repair report so the web side
    can show it in the reader's language. Extracted for the catalogue by the `Sentence` keyword.

    Counts pick their singular or plural template here, by the English rule (n == 1): German, the
    other language of the interface, has the same rule."""

    def __init__(self, template: str, **params):
        self.template = template
        self.params = {name: _plain(value) for name, value in params.items()}

    def __str__(self) -> str:
        return self.template % {name: _english(value) for name, value in self.params.items()} if self.params \
            else self.template

    def as_json(self) -> list:
        return [self.template, self.params]


def _plain(value):
    """numpy numbers as Python ones (formatted like them, stored as JSON)."""
    return value.item() if hasattr(value, "item") and not isinstance(value, str) else value


def _english(value):
    """Numbers with thousands separators ("1,234"), as the English sentences always wrote them."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:,}"
    return value


class Phrase(str):
    """An English phrase that goes into a MeshRejected sentence as a parameter ("a PNG image"); the
    web side translates it as well. Extracted for the catalogue by the `Phrase` keyword."""

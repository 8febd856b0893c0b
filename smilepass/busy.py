"""What a request gets when SQLite's write lock cannot be had within the busy timeout (db.DatabaseBusy):
a 503 with Retry-After that keeps everything the user typed, never a 500. Nothing of the request was
saved, so sending it again is safe.

- htmx: a message in the page's #flash area; the form itself stays as it was, attached files included.
- A plain form post: the view's own form again with what was sent (`respond(form_page)`), or else a
  page that shows what was typed and sends it again with one button.
- Anything else (a page view that writes): the error page, to be reloaded."""
import logging

from flask import make_response, render_template, request
from flask_babel import gettext

from .htmx import blocks, is_htmx

log = logging.getLogger(__name__)

# What a 503 asks the client to wait, in seconds: about one busy timeout.
RETRY_AFTER_SECONDS = 5
# The app's password fields (and any other name ending in "password"): never echoed back into a page,
# the user types them again.
PASSWORD_FIELDS = {"password", "confirm", "current"}


def files_dropped() -> bool:
    """Whether the request carried files: those cannot be sent back to the browser."""
    return any(upload.filename for name in request.files for upload in request.files.getlist(name))


def notice() -> list[str]:
    """The sentences above a form shown again after the database was busy."""
    lines = [gettext("The server is busy and could not save this just now. Everything you typed is kept: "
                     "send it again in a moment.")]
    if files_dropped():
        lines.append(gettext("Attached files cannot be kept: attach them again before sending."))
    return lines


def _password(name: str) -> bool:
    return name in PASSWORD_FIELDS or name.endswith("password")


def kept_fields() -> list[tuple[str, str]]:
    """What was typed, as (name, value) pairs in the order sent, without passwords and without the old
    CSRF token (the page carries a fresh one)."""
    return [(name, value) for name, values in request.form.lists() for value in values
            if name != "csrf_token" and not _password(name)]


def retyped_fields() -> list[str]:
    """Password fields that were sent: the page asks for them again instead of echoing them."""
    return [name for name in request.form if _password(name)]


def respond(form_page=None):
    """The 503 for a request the database was too busy for; form_page() renders the view's own form
    with what was sent (called only for a plain form post)."""
    log.warning("database busy: %s %s answered 503", request.method, request.endpoint)
    if is_htmx():
        if request.method == "POST":
            message = gettext("The server is busy and could not save this just now. Your entries are still in "
                              "the form: send it again in a moment.")
        else:
            message = gettext("The server is busy. Please try again in a moment.")
        response = blocks("error.html", ["message"], status_code=503, message=message)
        response.headers["HX-Retarget"] = "#flash"
        response.headers["HX-Reswap"] = "innerHTML"
    elif request.method != "POST":
        response = make_response(render_template("error.html", status_code=503,
                                                 message=gettext("The server is busy. Please try again in a moment.")))
    elif form_page is not None:
        response = make_response(form_page())
    else:
        response = make_response(render_template("busy.html", notice=notice(), fields=kept_fields(),
                                                 retyped=retyped_fields(),
                                                 action=request.full_path.rstrip("?")))
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response

"""The web side of storage: stored files sent through the app (after its access check and audit row),
and the 503 a request gets when the storage cannot be reached — never a 500, and what was typed is kept
(the same page busy.py gives for a busy database)."""
from __future__ import annotations

import logging

from flask import abort, current_app, make_response, render_template, request, send_file
from flask_babel import gettext

from .. import busy
from ..htmx import blocks, is_htmx
from .base import StorageUnavailable
from .choose import StorageSettingsError, for_config

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 30


def unreachable_text() -> str:
    return gettext("The file storage cannot be reached. Nothing was lost: try again in a moment, or tell support "
                   "if it lasts.")


def send_stored(key: str, mimetype: str, download_name: str | None = None):
    """A stored file: never cached, sandboxed if opened directly, and a download (attachment) when given a
    name. From the local folder by path; from a bucket streamed through the app (no presigned URL)."""
    storage = for_config(current_app.config)
    path = storage.local_path(key)
    if path is not None:
        response = send_file(path, mimetype=mimetype, as_attachment=download_name is not None,
                             download_name=download_name, max_age=0)
    else:
        try:  # a missing file is a 404; StorageUnavailable (a 503) comes before anything is sent
            size = storage.size(key)
        except FileNotFoundError:
            abort(404)
        response = send_file(storage.open(key), mimetype=mimetype, as_attachment=download_name is not None,
                             download_name=download_name, max_age=0, etag=False, conditional=False)
        response.content_length = size
    # no-store, not no-cache: patient files must not be written to a browser's or proxy's disk at all.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def respond_unavailable(exc: StorageUnavailable | StorageSettingsError):
    """The 503 for a request that needed the storage while it could not be reached (or, under a `flask`
    command that started with settings that cannot work, could not be used)."""
    log.warning("file storage unreachable: %s %s answered 503 (%s)", request.method, request.endpoint, exc)
    message = unreachable_text()
    if is_htmx():
        response = blocks("error.html", ["message"], status_code=503, message=message)
        response.headers["HX-Retarget"] = "#flash"
        response.headers["HX-Reswap"] = "innerHTML"
    elif request.method != "POST":
        response = make_response(render_template("error.html", status_code=503, message=message))
    else:
        lines = [message]
        if busy.files_dropped():
            lines.append(gettext("Attached files cannot be kept: attach them again before sending."))
        response = make_response(render_template("busy.html", notice=lines, fields=busy.kept_fields(),
                                                 retyped=busy.retyped_fields(),
                                                 action=request.full_path.rstrip("?")))
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def init_app(app) -> None:
    app.register_error_handler(StorageUnavailable, respond_unavailable)
    app.register_error_handler(StorageSettingsError, respond_unavailable)

"""Request plumbing shared by every blueprint: database connection, sign-in, CSRF, idle sessions,
security headers and error pages."""
import json
import logging
import time
from urllib.parse import parse_qsl, urlsplit

import peewee
from flask import Flask, g, redirect, render_template, request, session, url_for
from flask_babel import gettext
from flask_login import LoginManager, current_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from htmx_flask import Htmx
from playhouse.pool import MaxConnectionsExceeded
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from . import busy, htmx, sessions
from .db import DatabaseBusy, database
from .i18n import lazy_gettext
from .models import STATUS_LABELS, Priority, Status, arches_label, category_label, colour_label, role_label
from .params import BoundedIntConverter

SEEN_RESOLUTION = 60  # seconds
log = logging.getLogger(__name__)
login_manager = LoginManager()
csrf = CSRFProtect()

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


@login_manager.user_loader
def load_user(session_id: str):
    # The id carries the user's session stamp: a password change renews the stamp, which ends
    # every session made before it. The session itself must also still be open on the server.
    user_id, _, stamp = session_id.partition(":")
    if g.get("no_database"):
        return None  # the answer to a request that got no connection (see database_connections_taken)
    if not user_id.isdigit() or not stamp or len(user_id) > 18:
        return None
    return sessions.load_user(int(user_id), stamp)


@login_manager.unauthorized_handler
def unauthorized():
    if request.method == "GET":
        back_to = request.full_path.rstrip("?")
    else:
        # A form sent after the session ended cannot be kept: say so at sign-in, and come back to
        # the page it was sent from.
        session["unsaved"] = True
        came_from = urlsplit(request.headers.get("HX-Current-URL") or request.referrer or "")
        same_site = not came_from.netloc or came_from.netloc == request.host
        back_to = (came_from.path + ("?" + came_from.query if came_from.query else "")) if same_site else None
    return htmx.hx_redirect(url_for("auth.login", next=back_to or None), status=401)


def init_app(app: Flask) -> None:
    # Every <int:…> in a route is capped at the largest id a database can hold: larger is a 404.
    app.url_map.converters["int"] = BoundedIntConverter
    Htmx(app)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"

    @app.before_request
    def open_db():
        database.connect(reuse_if_open=True)

    # SQLite: each worker process keeps its connection (opening one costs more than most queries).
    # PostgreSQL: the connection goes back to the pool after each request.
    keep_connection = isinstance(database.obj, peewee.SqliteDatabase)

    @app.teardown_request
    def close_db(exc):
        if not keep_connection and not database.is_closed():
            database.close()

    @app.before_request
    def end_idle_session():
        if request.endpoint == "static":
            return None
        now = int(time.time())
        seen = session.get("seen")
        idle = app.config["SESSION_IDLE_SECONDS"]
        if "_user_id" in session and seen is not None and now - seen > idle:
            sessions.end_current()
            logout_user()
            session.clear()
            session["expired"] = True
        # Written at most once a minute: a changed session is re-signed and re-sent, which is
        # work on every request for no gain at this resolution.
        if seen is None or (now - seen >= SEEN_RESOLUTION and not sessions.passive_request()):
            session["seen"] = now
        if not session.permanent:
            session.permanent = True
        return None

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if app.config.get("HTTPS"):
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if current_user and current_user.is_authenticated:
            # Pages with patient and ticket data must not linger in shared caches or history.
            response.headers.setdefault("Cache-Control", "no-store")
        return htmx.add_vary(response)

    @app.errorhandler(CSRFError)
    def csrf_error(err):
        message = gettext("Your form expired or came from another site. Reload the page and try again.")
        return error_response(400, message)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(err):
        image_mb = app.config["MAX_IMAGE_BYTES"] // (1024 * 1024)
        scan_mb = app.config["MAX_SCAN_BYTES"] // (1024 * 1024)
        return error_response(413, gettext("The upload is too large. Images may be at most %(image)s MB and scans at "
                                           "most %(scan)s MB.", image=image_mb, scan=scan_mb))

    @app.errorhandler(DatabaseBusy)
    def database_busy(err):
        # SQLite's write lock stayed taken past the busy timeout: nothing was saved; ask to try again.
        return busy.respond()

    @app.errorhandler(MaxConnectionsExceeded)
    def database_connections_taken(err):
        # Every PostgreSQL connection of this process stayed in use past the pool's wait: the same answer,
        # rendered without the database (the user is not looked up; the page shows as signed out).
        g.no_database = True
        log.warning("database pool exhausted: %s", err)
        return busy.respond()

    @app.errorhandler(HTTPException)
    def http_error(err):
        return error_response(err.code or 500, error_message(err) if err.code != 404 else "")

    @app.get("/healthz")
    def healthz():
        return "ok"

    @app.get("/")
    def index():
        return redirect(url_for("support.index") if current_user.is_authenticated else url_for("auth.login"))

    page_urls: dict[tuple[str, str], str] = {}

    def page_url(endpoint: str) -> str:
        """url_for for a page without parameters (the header's links), built once per script root:
        every page's header has a dozen, and url_for is the costliest thing in it."""
        key = (request.script_root, endpoint)
        url = page_urls.get(key)
        if url is None:
            url = page_urls[key] = url_for(endpoint)
        return url

    app.jinja_env.globals.update(Priority=Priority, Status=Status, STATUS_LABELS=STATUS_LABELS, page_url=page_url)
    app.jinja_env.filters["when"] = format_when
    app.jinja_env.filters["fromjson"] = json.loads
    app.jinja_env.filters["metric"] = format_metric
    # Display names of stored values, defined beside what they name (smilepass/models).
    app.jinja_env.globals["role_label"] = role_label
    app.jinja_env.filters.update(category_label=category_label, colour_label=colour_label, arches_label=arches_label)
    app.jinja_env.filters["query_pairs"] = query_pairs


def query_pairs(url: str) -> list[tuple[str, str]]:
    """A URL's query as (name, value) pairs, in order: the hidden fields of a GET form that asks for
    exactly that URL (a sort button that works without JavaScript)."""
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


# What the common HTTP errors say to people, in their language. Werkzeug's own descriptions are
# English only and written for developers.
HTTP_ERROR_MESSAGES = {
    400: lazy_gettext("The request could not be understood. Go back, reload the page and try again."),
    401: lazy_gettext("Please sign in to see this page."),
    403: lazy_gettext("You do not have permission to do this."),
    405: lazy_gettext("This address cannot be used that way. Go back and use the page's buttons and forms."),
    408: lazy_gettext("The request took too long. Please try again."),
    409: lazy_gettext("Someone else changed this at the same time. Reload the page and try again."),
    410: lazy_gettext("This page is no longer available."),
    413: lazy_gettext("The upload is too large."),
    415: lazy_gettext("This kind of file or request is not supported here."),
    422: lazy_gettext("Some of the entries could not be used. Check them and try again."),
    429: lazy_gettext("Too many attempts in a short time. Wait a moment and try again."),
    500: lazy_gettext("Something went wrong on our side. Please try again; if it keeps happening, tell support."),
    502: lazy_gettext("The server is temporarily unavailable. Please try again in a moment."),
    503: lazy_gettext("The server is temporarily unavailable. Please try again in a moment."),
    504: lazy_gettext("The server took too long to answer. Please try again in a moment."),
    507: lazy_gettext("The server is out of space. Please try again later; if it keeps happening, tell support."),
}


def error_message(err: HTTPException) -> str:
    """The app's own description when it gave one (already translated where it is raised);
    otherwise the translated message for the status instead of Werkzeug's English default."""
    if err.description and err.description != type(err).description:
        return str(err.description)
    message = HTTP_ERROR_MESSAGES.get(err.code or 500)
    return str(message) if message is not None else gettext("Something went wrong.")


def error_response(status: int, message: str):
    """An error as a small fragment for htmx (shown in the page's error area) or a full page."""
    if htmx.is_htmx():
        response = htmx.blocks("error.html", ["message"], status=status, status_code=status, message=message)
        response.headers["HX-Retarget"] = "#flash"
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    return render_template("error.html", status_code=status, message=message), status


def format_metric(value) -> str:
    """Report figures for people: 198,602 triangles, 796.1 mm², Yes/No, 51.3 × 22.7 × 10.8."""
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, (list, tuple)):
        return " × ".join(format_metric(v) for v in value)
    return "" if value is None else str(value)


def format_when(value) -> str:
    if value is None:
        return ""
    return value.strftime("%Y-%m-%d %H:%M") + " UTC"

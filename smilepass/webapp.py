"""The SmilePass web app (`from smilepass import create_app` loads this module on first use).

`create_app()` builds the web app from one blueprint per screen, feature by feature: each feature is a
package of its own (its rules, views, forms and queries), with its templates in templates/<feature>/."""
import logging
import os
from pathlib import Path

import click
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config, db, i18n, web
from .account import views as account_views
from .admin import clinic_views
from .admin import views as admin_views
from .audit import views as audit_views
from .auth import views as auth_views
from .cases import patient, shipment_views
from .cases import views as case_views
from .cli import register as register_cli
from .contact import views as contact_views
from .doctor import views as doctor_views
from .insights import views as insights_views
from .live import views as live_views
from .scans import views as scan_views
from .search import views as search_views
from .service import views as escalation_views
from .sessions import views as session_views
from .staff import canned_views
from .staff import views as staff_views
from .stewardship import views as stewardship_views
from .storage import StorageSettingsError, check_settings
from .storage import web as storage_web
from .storage.workdirs import remove_abandoned
from .support import draft_views
from .support import views as support_views
from .twofa import views as twofa_views

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)

# Importing a view module registers its routes on its blueprint; the order is the order of the
# admin's and the header's menus, which is also how a newcomer reads the product. Two-factor sign-in comes
# first: its gate must run before every other check of a signed-in request (a temporary password's too).
BLUEPRINTS = (
    twofa_views.bp, auth_views.bp, support_views.bp, draft_views.bp, escalation_views.bp, scan_views.bp, staff_views.bp,
    canned_views.bp, case_views.bp, shipment_views.bp, patient.bp, account_views.bp, session_views.bp,
    contact_views.bp, search_views.bp, live_views.bp,
    stewardship_views.bp, insights_views.bp, admin_views.bp, clinic_views.bp, audit_views.bp, doctor_views.bp,
)


def default_instance_path() -> str:
    return os.environ.get("SMILEPASS_INSTANCE") or str(ROOT / "instance")


def create_app(test_config: dict | None = None) -> Flask:
    instance_path = default_instance_path()
    if test_config and test_config.get("INSTANCE_PATH"):
        instance_path = test_config["INSTANCE_PATH"]
    app = Flask(
        "smilepass",  # the package's name, as when this code lived in smilepass/__init__.py
        instance_path=instance_path,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.from_mapping(config.load(app.instance_path))
    if test_config:
        app.config.update(test_config)
    Path(app.config["UPLOAD_DIR"]).mkdir(parents=True, exist_ok=True)
    trust_proxies(app)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    check_storage_settings(app)
    # A web host's own leftovers: work folders of uploads whose process was killed (workers do theirs).
    remove_abandoned(app.config)

    db.bind(app.config["DATABASE_URL"], app.config["SQLITE_BUSY_TIMEOUT_MS"], app.config["DB_POOL_SIZE"],
            app.config["DB_POOL_WAIT_SECONDS"])
    web.init_app(app)
    storage_web.init_app(app)
    i18n.init_app(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    register_cli(app)
    return app


def check_storage_settings(app: Flask) -> None:
    """Storage settings that cannot work stop the web server (and a worker, workers/worker.py) at start, with
    the reason, rather than turn the first upload into an error page. A `flask` command still starts, so that
    `flask doctor` can say what is wrong (its File storage line) and a fix can be tried."""
    try:
        check_settings(app.config)
    except StorageSettingsError as exc:
        if click.get_current_context(silent=True) is None:
            raise
        log.error("file storage settings: %s", exc)


def trust_proxies(app: Flask) -> None:
    """Behind TRUSTED_PROXIES reverse proxies (Caddy), take the client's address, scheme and host from the
    X-Forwarded-* headers they set: request.remote_addr (the audit log, sessions, rate limits) is then the
    client's and url_for(_external=True) gives https links. With 0 nothing is wrapped and those headers,
    which any client can send, are ignored."""
    count = int(app.config.get("TRUSTED_PROXIES") or 0)
    if count > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)

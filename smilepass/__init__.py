"""SmilePass: a self-hosted support and case portal for clear-aligner clinics."""
import logging
import os
from pathlib import Path

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    instance_path = os.environ.get("SMILEPASS_INSTANCE") or str(ROOT / "instance")
    if test_config and test_config.get("INSTANCE_PATH"):
        instance_path = test_config["INSTANCE_PATH"]
    app = Flask(
        __name__,
        instance_path=instance_path,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    from . import config

    app.config.from_mapping(config.load(app.instance_path))
    if test_config:
        app.config.update(test_config)
    Path(app.config["UPLOAD_DIR"]).mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from . import db

    db.bind(app.config["DATABASE_URL"])

    from . import web

    web.init_app(app)

    from . import i18n

    i18n.init_app(app)

    from .auth import bp as auth_bp
    from .support import bp as support_bp
    from .admin import bp as admin_bp
    from .cli import register as register_cli

    app.register_blueprint(auth_bp)
    app.register_blueprint(support_bp)
    app.register_blueprint(admin_bp)
    from .staff import bp as staff_bp; app.register_blueprint(staff_bp)  # noqa: E702
    from .cases import register as register_cases
    register_cases(app)
    from .account import bp as account_bp
    app.register_blueprint(account_bp)
    from .contact import bp as contact_bp
    app.register_blueprint(contact_bp)
    from .stewardship import bp as stewardship_bp
    app.register_blueprint(stewardship_bp)
    from .insights import bp as insights_bp
    app.register_blueprint(insights_bp)
    register_cli(app)
    return app

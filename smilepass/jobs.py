"""How RQ jobs reach the app. Each feature keeps its own job functions (scans/jobs.py,
notifications/jobs.py, service/jobs.py, stewardship/jobs.py), thin ones: ids in, then the feature's rules
inside `app_context()`. This module also holds the database's own housekeeping job."""
import contextlib
import functools
from collections.abc import Iterator

from flask import Flask

from . import create_app, db
from .db import database


@functools.cache
def app() -> Flask:
    # Created on first use inside the worker (not at import), once per worker process.
    return create_app()


@contextlib.contextmanager
def app_context() -> Iterator[Flask]:
    """The app and a database connection, for the length of one job."""
    application = app()
    with application.app_context(), database.connection_context():
        yield application


def refresh_statistics() -> None:
    """Hourly from `rq cron`: keep the query planner's statistics current (see db.refresh_statistics)."""
    app()  # binds the database
    db.refresh_statistics()

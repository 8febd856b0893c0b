"""`flask --app app mail receive`: one RFC 5322 message on standard input, as an MTA's pipe transport
hands it over. The exit status follows sysexits.h: 0 taken (a reply added, or recorded and dropped),
67 not addressed to the support mailbox, 75 a temporary failure (database, Redis, disk): the MTA keeps
the mail and tries again, so nothing is lost."""
import logging
import sys

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from .. import db
from .receive import EX_TEMPFAIL, TemporaryFailure, take

log = logging.getLogger(__name__)


@click.group("mail", cls=AppGroup)
def mail_group():
    """Incoming mail (answers by email)."""


@mail_group.command("receive")
@click.option("--recipient", default="",
              help="The envelope recipient, if the MTA passes it (e.g. ${original_recipient}).")
@with_appcontext
def receive_command(recipient):
    """Take one mail from standard input."""
    raw = sys.stdin.buffer.read(current_app.config["MAIL_IN_MAX_BYTES"] + 1)
    try:
        with db.database.connection_context():
            outcome = take(raw, current_app.config, envelope_recipient=recipient)
    except TemporaryFailure as exc:
        click.echo(f"temporary failure, try again later: {exc}", err=True)
        sys.exit(EX_TEMPFAIL)
    except Exception:  # a fault of ours: the MTA keeps the mail and tries again once it is fixed
        log.exception("incoming mail not taken")
        click.echo("temporary failure, try again later: internal error", err=True)
        sys.exit(EX_TEMPFAIL)
    click.echo(f"{outcome.status}: {outcome.reason}" if outcome.reason else outcome.status)
    sys.exit(outcome.exit_code)

"""Flask CLI: `flask --app app migrate | users create | demo | backup | restore | reapply-erasures | doctor
| mail receive`."""
import datetime as dt
import sqlite3
import time
from pathlib import Path

import click
import peewee
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from . import audit, db, twofa
from .auth.users import BadPassword, UserExists, create_user
from .backup import BackupError, create_backup, restore_backup, rotation
from .demo import bulk_load, make_demo, make_demo_cases, rebuild_search_index
from .doctor import Status, run_checks
from .mailin.cli import mail_group
from .models import User
from .stewardship.reapply import reapply
from .storage import StorageUnavailable, for_config
from .storage.cli import storage_group

# `doctor --wait`: how long between two rounds of checks.
DOCTOR_RETRY_SECONDS = 2


def register(app: Flask) -> None:
    app.cli.add_command(migrate_command)
    app.cli.add_command(users)
    app.cli.add_command(demo_command)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
    app.cli.add_command(reapply_erasures_command)
    app.cli.add_command(doctor_command)
    app.cli.add_command(mail_group)
    app.cli.add_command(storage_group)


@click.command("migrate")
@with_appcontext
def migrate_command():
    """Apply pending database migrations."""
    applied = db.migrate()
    click.echo("applied: " + ", ".join(applied) if applied else "database is up to date")


@click.group(cls=AppGroup)
def users():
    """Manage user accounts."""


@users.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(["clinician", "support", "admin"]), default="clinician", show_default=True)
@click.option("--name", default="", help="Display name.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="Prompted for when omitted.")
def create_user_command(email, role, name, password):
    """Create an account that signs in with EMAIL."""
    with db.database.connection_context():
        try:
            user = create_user(email, password, role, name)
        except (UserExists, BadPassword) as exc:
            raise click.ClickException(str(exc)) from None
        audit.record("user_created", user, detail=f"role={role} (command line)")
    click.echo(f"created {role} {user.email}")


@users.command("reset-2fa")
@click.argument("email")
def reset_2fa_command(email):
    """Remove every second factor of EMAIL's account (a lost phone): audited, the user is mailed and
    signed out everywhere."""
    with db.database.connection_context():
        user = User.by_email(email)
        if user is None:
            raise click.ClickException(f"no account signs in with {email}")
        twofa.reset(user, None, how="command line")
    click.echo(f"second factors of {user.email} removed")


@click.command("demo")
@with_appcontext
@click.option("--tickets", "ticket_count", type=int, default=200, show_default=True)
@click.option("--clinicians", type=int, default=40, show_default=True)
@click.option("--replies", "reply_count", type=click.IntRange(min=0), default=None,
              help="Replies and internal notes in all, over the new tickets' threads  [default: one a ticket]")
@click.option("--cases", "case_count", type=int, default=0, show_default=True, help="Demo cases with shipments.")
@click.option("--password", default="demo-pass-2026", show_default=True, help="Password of every demo account.")
def demo_command(ticket_count, clinicians, reply_count, case_count, password):
    """Fill the database with realistic demo users, tickets and cases."""
    with db.database.connection_context(), bulk_load():
        summary = make_demo(ticket_count, clinicians, password, reply_count)
        if case_count:
            summary += "\n" + make_demo_cases(case_count)
        rebuild_search_index()  # the demo rows were inserted in bulk, past the index
    db.refresh_statistics()  # the planner's picture of the tables changed completely
    click.echo(summary)


@click.command("backup")
@with_appcontext
@click.argument("path", required=False, type=click.Path(dir_okay=False, writable=True))
@click.option("--keep", type=click.IntRange(min=1), metavar="N",
              help="After the backup, delete the oldest smilepass-*.tar.gz in BACKUP_DIR so that N remain.")
def backup_command(path, keep):
    """Write one archive (a .tar, gzipped when it ends in .gz): a consistent database snapshot, every stored
    file and a manifest with their hashes, while the app keeps running. Without PATH it goes to
    BACKUP_DIR/smilepass-<UTC time>.tar.gz (SMILEPASS_BACKUP_DIR). Exits non-zero when anything fails."""
    if path and keep:
        raise click.UsageError("--keep prunes the archives in BACKUP_DIR: leave out PATH to write one there")
    backup_dir = Path(current_app.config["BACKUP_DIR"])
    now = dt.datetime.now(dt.UTC)
    try:
        target = Path(path) if path else rotation.new_archive_path(backup_dir, now)
        report = create_backup(current_app.config["DATABASE_URL"], for_config(current_app.config), target, now)
    # OSError: a folder that cannot be made or written, a full disk; the others: a database that cannot be read,
    # the file storage (a bucket) that cannot be reached.
    except (BackupError, OSError, sqlite3.Error, peewee.PeeweeException, StorageUnavailable) as exc:
        raise click.ClickException(f"backup failed, no archive was written: {exc}") from None
    with db.database.connection_context():
        audit.record("backup_created", detail=f"{report.path} (command line)")
    click.echo("\n".join(report.lines()))
    if keep:
        try:
            removed = rotation.prune(backup_dir, keep)
        except OSError as exc:
            raise click.ClickException(f"the backup was written, but deleting old archives failed: {exc}") from None
        for old in removed:
            click.echo(f"deleted the old backup {old}")


@click.command("restore")
@with_appcontext
@click.argument("path", type=click.Path(dir_okay=False, exists=True))
@click.option("--force", is_flag=True, help="Replace a database that already holds data.")
def restore_command(path, force):
    """Restore a backup archive into this instance's database and upload folder, then migrate it.
    Stop the web server and workers of this instance first."""
    # The restore opens its own connections; one the app holds must not see the file replaced.
    if not db.database.is_closed():
        db.database.close()
    try:
        report = restore_backup(path, current_app.config["DATABASE_URL"], for_config(current_app.config), force)
    except (BackupError, StorageUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    # After the row counts were checked: the restored trail then says when and from what it came back.
    with db.database.connection_context():
        audit.record("backup_restored", detail=f"{path}, taken {report.manifest['created_at']} (command line)")
    click.echo("\n".join(report.lines()))
    # After the migrations (the erasure code needs today's schema): an erasure made after the
    # backup was taken must not come back with it.
    try:
        outcome = reapply(current_app.config)
    except Exception as exc:  # the restore itself is done; say what is left to do
        raise click.ClickException(f"restored, but re-applying the erasure ledger failed ({exc}); fix that and run "
                                   f"`flask --app app reapply-erasures`") from exc
    click.echo("\n".join(outcome.lines()))


@click.command("reapply-erasures")
@with_appcontext
def reapply_erasures_command():
    """Erase again every patient in the erasure ledger whose cases are in the database. restore does
    this itself; run it after copying in a ledger that was missing at restore time."""
    click.echo("\n".join(reapply(current_app.config).lines()))


@click.command("doctor")
@with_appcontext
@click.option("--wait", "wait_seconds", type=click.IntRange(min=0), default=0, show_default=True, metavar="SECONDS",
              help="While a check fails, run them all again every few seconds, for up to SECONDS (right after a "
                   "restart the workers and cron need a moment to report).")
def doctor_command(wait_seconds):
    """Check that this server is ready to run: database, Redis, workers, cron, mail, links, disk, backups,
    scan repair. One line each, OK, WARN or FAIL; exits with status 1 when any check fails."""
    deadline = time.monotonic() + wait_seconds
    while True:
        checks = run_checks(current_app)
        failed = any(check.status is Status.FAIL for check in checks)
        if not failed or time.monotonic() + DOCTOR_RETRY_SECONDS > deadline:
            break
        failing = ", ".join(check.name for check in checks if check.status is Status.FAIL)
        click.echo(f"waiting: {failing} failed; checking again in {DOCTOR_RETRY_SECONDS} s", err=True)
        time.sleep(DOCTOR_RETRY_SECONDS)
    width = max(len(check.name) for check in checks)
    for check in checks:
        click.echo(f"{check.status.value:<4}  {check.name:<{width}}  {check.detail}")
    if failed:
        raise SystemExit(1)

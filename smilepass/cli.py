"""Flask CLI: `flask --app app migrate | users create | demo | backup | restore | reapply-erasures`."""
import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from . import audit, db
from .auth.users import BadPassword, UserExists, create_user
from .backup import BackupError, create_backup, restore_backup
from .demo import make_demo, make_demo_cases
from .stewardship.reapply import reapply


def register(app: Flask) -> None:
    app.cli.add_command(migrate_command)
    app.cli.add_command(users)
    app.cli.add_command(demo_command)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
    app.cli.add_command(reapply_erasures_command)


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


@click.command("demo")
@with_appcontext
@click.option("--tickets", "ticket_count", type=int, default=200, show_default=True)
@click.option("--clinicians", type=int, default=40, show_default=True)
@click.option("--cases", "case_count", type=int, default=0, show_default=True, help="Demo cases with shipments.")
@click.option("--password", default="demo-pass-2026", show_default=True, help="Password of every demo account.")
def demo_command(ticket_count, clinicians, case_count, password):
    """Fill the database with realistic demo users, tickets and cases."""
    with db.database.connection_context():
        summary = make_demo(ticket_count, clinicians, password)
        if case_count:
            summary += "\n" + make_demo_cases(case_count)
    db.refresh_statistics()  # the planner's picture of the tables changed completely
    click.echo(summary)


@click.command("backup")
@with_appcontext
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
def backup_command(path):
    """Write one archive to PATH (a .tar, gzipped when it ends in .gz): a consistent database snapshot,
    every stored file and a manifest with their hashes, while the app keeps running."""
    try:
        report = create_backup(current_app.config["DATABASE_URL"], current_app.config["UPLOAD_DIR"], path)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    with db.database.connection_context():
        audit.record("backup_created", detail=f"{report.path} (command line)")
    click.echo("\n".join(report.lines()))


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
        report = restore_backup(path, current_app.config["DATABASE_URL"], current_app.config["UPLOAD_DIR"], force)
    except BackupError as exc:
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

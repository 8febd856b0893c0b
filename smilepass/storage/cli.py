"""`flask storage …`: moving a single server's files into a bucket, and removing files no row names."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from .. import db
from .base import StorageUnavailable
from .choose import for_config
from .local import LocalStorage
from .maintenance import copy_all, remove_orphans

storage_group = AppGroup("storage", help="The file storage (the upload folder or an S3 bucket).")


@storage_group.command("migrate-to-s3")
def migrate_to_s3_command():
    """Copy every file of the upload folder (SMILEPASS_UPLOAD_DIR) into the bucket SMILEPASS_STORAGE_URL names,
    checking each by SHA-256 read back from the bucket. Safe to run again (files already there are skipped);
    the upload folder is left as it was. Run it with the web servers and workers stopped, then start them
    with the bucket configured."""
    target = for_config(current_app.config)
    if target.kind != "s3":
        raise click.ClickException("SMILEPASS_STORAGE_URL names no bucket (s3://bucket/prefix): nothing to migrate to")
    source = LocalStorage(current_app.config["UPLOAD_DIR"])
    try:
        target.probe()
        report = copy_all(source, target)
    except StorageUnavailable as exc:
        raise click.ClickException(f"the bucket cannot be reached: {exc} (run the command again: copied files "
                                   f"are skipped)") from None
    click.echo(f"copied {len(report.copied)} files to {target.describe()}, {len(report.skipped)} were already "
               f"there")
    if report.failed:
        raise click.ClickException(f"{len(report.failed)} files read back differently: " + ", ".join(report.failed[:5]))


@storage_group.command("orphans")
@click.option("--dry-run", is_flag=True, help="Only list them.")
def orphans_command(dry_run):
    """Remove stored files that no row names and that are older than an hour (left when the storage went
    away between an upload and its clean-up)."""
    try:
        with db.database.connection_context():
            removed = remove_orphans(for_config(current_app.config), dry_run=dry_run)
    except StorageUnavailable as exc:
        raise click.ClickException(f"the file storage cannot be reached: {exc}") from None
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {len(removed)} files no row names")

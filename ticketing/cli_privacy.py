"""`flask privacy purge [--dry-run]`: erase the personal data of tickets closed longer ago
than RETENTION_DAYS (services/retention.py); the scheduler runs the same every night."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from ticketing.models import utcnow
from ticketing.services import retention
from ticketing.services.photos import PhotoStore

privacy = AppGroup("privacy", help="Requesters' personal data: retention.")


@privacy.command("purge")
@click.option("--dry-run", is_flag=True, help="Only say what would be erased; change nothing.")
def purge_command(dry_run: bool) -> None:
    """Erase requesters' data of tickets closed more than RETENTION_DAYS ago; counts and ledgers stay."""
    days = current_app.config["RETENTION_DAYS"]
    result = retention.purge(utcnow(), days, PhotoStore(current_app.config["UPLOAD_FOLDER"]), dry_run=dry_run)
    verb = "would be erased" if dry_run else "erased"
    click.echo(f"Tickets closed more than {days} days ago: personal data of {result.tickets} tickets {verb}, "
               f"{result.photos} photos {'would be ' if dry_run else ''}deleted.")
    click.echo(f"WeChat followers whose remembered phone and place {verb}: {result.followers}.")
    if result.numbers:
        more = " …" if result.tickets > len(result.numbers) else ""
        click.echo("Tickets: " + ", ".join(result.numbers) + more)

"""`flask open311 create-key|keys|revoke-key`: the API keys Open311 client apps post with.

A key is printed once, when it is created; only its hash is kept (services/apikeys.py).
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from ticketing.cli import format_table
from ticketing.extensions import db
from ticketing.models import ApiKey, KeyKind, utcnow
from ticketing.services import apikeys

open311 = AppGroup("open311", help="API keys of Open311 client apps.")


def local(value: datetime | None) -> str:
    """A time in the site's zone, or empty."""
    return value.astimezone(ZoneInfo(current_app.config["TIMEZONE"])).strftime("%Y-%m-%d %H:%M") if value else ""


@open311.command("create-key")
@click.argument("name")
def create_key_command(name: str) -> None:
    """Issue a key for the client app NAME and print it (it is not shown again)."""
    try:
        row, key = apikeys.issue(KeyKind.OPEN311, name, utcnow())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Open311 key {row.id} issued to {row.name!r}. Give the app this key; it is not shown again:",
               err=True)
    click.echo(key)


@open311.command("keys")
def list_keys_command() -> None:
    """List the Open311 keys: id, name, prefix, created, last used, revoked."""
    rows = [
        (str(row.id), row.name, row.prefix + "…", local(row.created_at), local(row.last_used_at),
         local(row.revoked_at))
        for row in db.session.scalars(select(ApiKey).where(ApiKey.kind == KeyKind.OPEN311).order_by(ApiKey.id))
    ]
    if not rows:
        click.echo("No Open311 keys yet (flask open311 create-key NAME).")
        return
    click.echo(format_table(("id", "name", "prefix", "created", "last used", "revoked"), rows))


@open311.command("revoke-key")
@click.argument("key_id", type=int)
def revoke_key_command(key_id: int) -> None:
    """Revoke the Open311 key KEY_ID: the app can no longer post with it."""
    row = db.session.get(ApiKey, key_id)
    if row is None or row.kind != KeyKind.OPEN311:
        raise click.ClickException(f"there is no Open311 key {key_id}")
    if row.revoked_at is not None:
        click.echo(f"Key {key_id} ({row.name}) was already revoked on {local(row.revoked_at)}.")
        return
    apikeys.revoke(row, utcnow())
    click.echo(f"Key {key_id} ({row.name}) revoked.")

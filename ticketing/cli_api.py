"""`flask api create-token|tokens|revoke-token`: the keys staff apps use on /api/v1.

A staff key acts as one staff account (see docs/staff-api.md). It is printed once,
when it is created; only its hash is kept (services/apikeys.py).
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ticketing.cli import format_table
from ticketing.extensions import db
from ticketing.models import ApiKey, KeyKind, User, utcnow
from ticketing.services import apikeys

api = AppGroup("api", help="API keys of staff apps (the staff API, /api/v1).")


def local(value: datetime | None) -> str:
    """A time in the site's zone, or empty."""
    return value.astimezone(ZoneInfo(current_app.config["TIMEZONE"])).strftime("%Y-%m-%d %H:%M") if value else ""


@api.command("create-token")
@click.argument("username")
@click.option("--name", required=True, help="What the key is for, e.g. the app and device.")
def create_token_command(username: str, name: str) -> None:
    """Issue a key that acts as staff account USERNAME and print it (it is not shown again)."""
    user = db.session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        raise click.ClickException(f"there is no account {username!r}")
    try:
        row, key = apikeys.issue(KeyKind.STAFF, name, utcnow(), user=user)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Staff key {row.id} ({row.name!r}) acts as {user.username} ({user.role}). "
               "Give the app this key; it is not shown again:", err=True)
    click.echo(key)


@api.command("tokens")
def list_tokens_command() -> None:
    """List the staff keys: id, account, name, prefix, created, last used, revoked."""
    keys = db.session.scalars(
        select(ApiKey).where(ApiKey.kind == KeyKind.STAFF).options(joinedload(ApiKey.user)).order_by(ApiKey.id)
    )
    rows = [
        (str(row.id), row.user.username if row.user else "", row.name, row.prefix + "…",
         local(row.created_at), local(row.last_used_at), local(row.revoked_at))
        for row in keys
    ]
    if not rows:
        click.echo("No staff keys yet (flask api create-token USERNAME --name NAME).")
        return
    click.echo(format_table(("id", "account", "name", "prefix", "created", "last used", "revoked"), rows))


@api.command("revoke-token")
@click.argument("key_id", type=int)
def revoke_token_command(key_id: int) -> None:
    """Revoke the staff key KEY_ID: the app can no longer act with it."""
    row = db.session.get(ApiKey, key_id)
    if row is None or row.kind != KeyKind.STAFF:
        raise click.ClickException(f"there is no staff key {key_id}")
    if row.revoked_at is not None:
        click.echo(f"Key {key_id} ({row.name}) was already revoked on {local(row.revoked_at)}.")
        return
    apikeys.revoke(row, utcnow())
    click.echo(f"Key {key_id} ({row.name}) revoked.")

"""`flask api create-token|tokens|revoke-token`: the keys staff apps use on /api/v1.

A staff key acts as one staff account (see docs/staff-api.md). It is printed once,
when it is created; only its hash is kept (services/apikeys.py).
"""
from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from ticketing.cli import format_table, local_time, revoke_key, shell_user
from ticketing.extensions import db
from ticketing.models import KeyKind, User, utcnow
from ticketing.services import apikeys

api = AppGroup("api", help="API keys of staff apps (the staff API, /api/v1).")


@api.command("create-token")
@click.argument("username")
@click.option("--name", required=True, help="What the key is for, e.g. the app and device.")
def create_token_command(username: str, name: str) -> None:
    """Issue a key that acts as staff account USERNAME and print it (it is not shown again)."""
    user = db.session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        raise click.ClickException(f"there is no account {username!r}")
    try:
        row, key = apikeys.issue(KeyKind.STAFF, name, utcnow(), user=user, via="cli", actor_label=shell_user())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Staff key {row.id} ({row.name!r}) acts as {user.username} ({user.role}). "
               "Give the app this key; it is not shown again:", err=True)
    click.echo(key)


@api.command("tokens")
def list_tokens_command() -> None:
    """List the staff keys: id, account, name, prefix, created, last used, revoked."""
    rows = [
        (str(row.id), row.user.username if row.user else "", row.name, row.prefix + "…",
         local_time(row.created_at), local_time(row.last_used_at), local_time(row.revoked_at))
        for row in apikeys.of_kind(KeyKind.STAFF)
    ]
    if not rows:
        click.echo("No staff keys yet (flask api create-token USERNAME --name NAME).")
        return
    click.echo(format_table(("id", "account", "name", "prefix", "created", "last used", "revoked"), rows))


@api.command("revoke-token")
@click.argument("key_id", type=int)
def revoke_token_command(key_id: int) -> None:
    """Revoke the staff key KEY_ID: the app can no longer act with it."""
    revoke_key(KeyKind.STAFF, key_id, "staff")

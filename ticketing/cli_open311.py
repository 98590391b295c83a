"""`flask open311 create-key|keys|revoke-key`: the API keys Open311 client apps post with.

A key is printed once, when it is created; only its hash is kept (services/apikeys.py).
"""
from __future__ import annotations

import click
from flask.cli import AppGroup

from ticketing.cli import format_table, local_time, revoke_key, shell_user
from ticketing.models import KeyKind, utcnow
from ticketing.services import apikeys

open311 = AppGroup("open311", help="API keys of Open311 client apps.")


@open311.command("create-key")
@click.argument("name")
def create_key_command(name: str) -> None:
    """Issue a key for the client app NAME and print it (it is not shown again)."""
    try:
        row, key = apikeys.issue(KeyKind.OPEN311, name, utcnow(), via="cli", actor_label=shell_user())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Open311 key {row.id} issued to {row.name!r}. Give the app this key; it is not shown again:",
               err=True)
    click.echo(key)


@open311.command("keys")
def list_keys_command() -> None:
    """List the Open311 keys: id, name, prefix, created, last used, revoked."""
    rows = [
        (str(row.id), row.name, row.prefix + "…", local_time(row.created_at), local_time(row.last_used_at),
         local_time(row.revoked_at))
        for row in apikeys.of_kind(KeyKind.OPEN311)
    ]
    if not rows:
        click.echo("No Open311 keys yet (flask open311 create-key NAME).")
        return
    click.echo(format_table(("id", "name", "prefix", "created", "last used", "revoked"), rows))


@open311.command("revoke-key")
@click.argument("key_id", type=int)
def revoke_key_command(key_id: int) -> None:
    """Revoke the Open311 key KEY_ID: the app can no longer post with it."""
    revoke_key(KeyKind.OPEN311, key_id, "Open311")

"""`flask ledger compile` and `flask ledger export`: the daily per-grid ledgers, by hand.

The scheduler compiles yesterday's at 00:10; `compile` compiles any day again, for
every grid or one, e.g. after late entries. `export` writes a day's ledger lines as
the office's .xlsx or CSV (services/ledger_export.py), masked unless `--full --user`
names a supervisor or admin, under whose name every ticket's reveal is logged.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import and_, select, true

from ticketing.extensions import db
from ticketing.models import Grid, Ledger, User, utcnow
from ticketing.services import ledger_export, scope
from ticketing.services.ledger import compile_day

ledger = AppGroup("ledger", help="The daily per-grid ledgers (台账).")


def parse_day(value: str | None) -> date:
    """A YYYY-MM-DD date; yesterday (local) when not given."""
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    if not value:
        return utcnow().astimezone(tz).date() - timedelta(days=1)
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-11-18", param_hint="--date") from None


@ledger.command("compile")
@click.option("--date", "day", help="The local day, YYYY-MM-DD (default: yesterday).")
@click.option("--grid", "grids", multiple=True, help="A grid code (repeat for several; default: every grid).")
def compile_command(day: str | None, grids: tuple[str, ...]) -> None:
    """Compile (again) the ledgers of a day; recompiling replaces them with the same rows."""
    which = parse_day(day)
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    count = compile_day(which, tz, utcnow(), grid_codes=list(grids) or None)
    if grids and count < len(set(grids)):
        raise click.ClickException(f"compiled {count} of {len(set(grids))} grids: check the grid codes")
    click.echo(f"compiled the ledgers of {which} for {count} grids")


@ledger.command("export")
@click.option("--date", "day", required=True, help="The local day, YYYY-MM-DD.")
@click.option("--grid", "grid", help="A grid code (default: every grid).")
@click.option("--format", "fmt", type=click.Choice(ledger_export.FORMATS), default="xlsx", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), required=True, help="The file to write.")
@click.option("--full", is_flag=True, help="Names, phones and rooms in full (needs --user; logged).")
@click.option("--user", "username", help="The supervisor or admin the full export is for.")
def export_command(day: str, grid: str | None, fmt: str, output: str, full: bool, username: str | None) -> None:
    """Write a day's ledger lines as .xlsx or CSV (personal data masked unless --full)."""
    which = parse_day(day)
    where: Any = true()
    if grid:
        grid_id = db.session.scalar(select(Grid.id).where(Grid.code == grid))
        if grid_id is None:
            raise click.ClickException(f"no grid {grid!r}")
        where = Ledger.grid_id == grid_id
    user = None
    if full:
        user = db.session.scalar(select(User).where(User.username == (username or ""), User.active.is_(True)))
        if user is None or not ledger_export.may_export_full(user):
            raise click.ClickException("--full needs --user naming an active supervisor or admin")
        where = and_(where, scope.place_scope(user, Ledger.grid_id, Ledger.community_id, Ledger.street_id))
    if db.session.scalar(select(Ledger.id).where(where, Ledger.day == which).limit(1)) is None:
        raise click.ClickException(f"no ledger of {which} to export: run `flask ledger compile --date {which}` first")
    lines = ledger_export.lines_of(where, which)
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    result = ledger_export.build(lines, fmt, f"ledger-{grid or 'all'}-{which}", tz, full)
    with open(output, "wb") as out:
        out.write(result.content)
    if user is not None:
        logged = ledger_export.log_full_export(user, lines, utcnow(), "cli")
        db.session.commit()
        click.echo(f"full version for {user.username}: {logged} reveals logged")
    click.echo(f"wrote {len(lines)} lines of {which} to {output}")

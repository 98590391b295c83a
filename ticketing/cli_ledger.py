"""`flask ledger compile`: the daily per-grid ledgers (services/ledger.py), on demand.

The scheduler compiles yesterday's at 00:10; this compiles any day again, for every
grid or one, e.g. after late entries.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import AppGroup

from ticketing.models import utcnow
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

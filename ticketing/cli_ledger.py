"""`flask ledger compile` and `flask ledger export`: the daily per-grid ledgers, by hand.

The scheduler compiles yesterday's at 00:10; `compile` compiles any day again, for
every grid or one, e.g. after late entries. `export` writes a day's ledger lines as
the office's .xlsx or CSV (services/ledger_export.py), or a community's or street's
over a range of days (services/area_export.py, area_files.py), masked unless
`--full --user` names a supervisor or admin: the reveal log needs a person, so every
ticket's reveal is logged under that name, from "cli".
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import AppGroup
from flask_babel import force_locale
from sqlalchemy import and_, select, true

from ticketing.extensions import db
from ticketing.models import Grid, Ledger, User, utcnow
from ticketing.services import area_export, area_files, ledger_export, scope
from ticketing.services.errors import InvalidInput
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
@click.option("--date", "day", help="A grid's (or every grid's) local day, YYYY-MM-DD.")
@click.option("--grid", "grid", help="With --date: a grid code (default: every grid).")
@click.option("--community", help="A community's code: its ledgers from --from to --to.")
@click.option("--street", help="A street's code: its ledgers from --from to --to.")
@click.option("--from", "first", help="With --community/--street: the first local day, YYYY-MM-DD.")
@click.option("--to", "last", help="With --community/--street: the last local day, included.")
@click.option("--format", "fmt", type=click.Choice(ledger_export.FORMATS), default="xlsx", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True),
              help="The file to write (default: ledger-<code>-<days>.<format> here).")
@click.option("--full", is_flag=True, help="Names, phones and rooms in full (needs --user; logged).")
@click.option("--user", "username", help="The supervisor or admin the full export is for.")
def export_command(day: str | None, grid: str | None, community: str | None, street: str | None,
                   first: str | None, last: str | None, fmt: str, output: str | None, full: bool,
                   username: str | None) -> None:
    """Write ledger lines as .xlsx or CSV (personal data masked unless --full).

    A day of one grid or every grid: --date D [--grid CODE]. A community or a street
    over any days (a year at most): --community CODE | --street CODE --from D1 --to D2,
    a workbook of the summary, the grids and the lines (CSV: the lines).
    """
    if community or street or first or last:
        if day or grid:
            raise click.UsageError("--date/--grid and --community/--street/--from/--to are two different exports")
        _export_area(community, street, first, last, fmt, output, full, username)
        return
    if not day:
        raise click.UsageError("give --date D [--grid CODE], or --community/--street CODE with --from D1 --to D2")
    _export_grid_day(day, grid, fmt, output, full, username)


def _full_user(full: bool, username: str | None) -> User | None:
    """The supervisor or admin named by --user when --full is asked for."""
    if not full:
        return None
    user = db.session.scalar(select(User).where(User.username == (username or ""), User.active.is_(True)))
    if user is None or not ledger_export.may_export_full(user):
        raise click.ClickException("--full needs --user naming an active supervisor or admin")
    return user


def _export_grid_day(day: str, grid: str | None, fmt: str, output: str | None, full: bool,
                     username: str | None) -> None:
    which = parse_day(day)
    where: Any = true()
    if grid:
        grid_id = db.session.scalar(select(Grid.id).where(Grid.code == grid))
        if grid_id is None:
            raise click.ClickException(f"no grid {grid!r}")
        where = Ledger.grid_id == grid_id
    user = _full_user(full, username)
    if user is not None:
        where = and_(where, scope.place_scope(user, Ledger.grid_id, Ledger.community_id, Ledger.street_id))
    if db.session.scalar(select(Ledger.id).where(where, Ledger.day == which).limit(1)) is None:
        raise click.ClickException(f"no ledger of {which} to export: run `flask ledger compile --date {which}` first")
    lines = ledger_export.lines_of(where, which)
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    result = ledger_export.build(lines, fmt, f"ledger-{grid or 'all'}-{which}", tz, full)
    output = output or result.filename
    with open(output, "wb") as out:
        out.write(result.content)
    if user is not None:
        logged = ledger_export.log_full_export(user, lines, utcnow(), "cli")
        db.session.commit()
        click.echo(f"full version for {user.username}: {logged} reveals logged")
    click.echo(f"wrote {len(lines)} lines of {which} to {output}")


def _export_area(community: str | None, street: str | None, first: str | None, last: str | None, fmt: str,
                 output: str | None, full: bool, username: str | None) -> None:
    """A community's or street's file over --from..--to; written beside the output and
    renamed into place at the end, so an error leaves no file behind."""
    if bool(community) == bool(street):
        raise click.UsageError("give either --community CODE or --street CODE (one of them)")
    kind, code = ("community", community) if community else ("street", street)
    assert code is not None
    if not first or not last:
        raise click.UsageError("--community/--street need --from D1 and --to D2")
    try:
        span = area_export.export_period("range", first=_day(first, "--from"), last=_day(last, "--to"))
    except InvalidInput as err:
        with force_locale("en"):
            raise click.UsageError(str(err.message)) from None
    area = area_export.find_area(kind, code)
    if area is None:
        raise click.ClickException(f"no {kind} {code!r}")
    user = _full_user(full, username)
    if user is not None and not area_export.may_export(user, area):
        raise click.ClickException(f"{user.username} may not export the {kind} {code!r}: it is not in their scope")
    if not area_export.has_ledgers(area, span):
        raise click.ClickException(f"no ledger of {code} between {span.first} and {span.last}: "
                                   f"run `flask ledger compile --date D` for those days first")
    target = Path(output or area.filename(span, fmt, full))
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    partial = target.with_name(f".{target.name}.partial")
    try:
        with partial.open("wb") as out:
            count = area_files.write(area, span, fmt, out, utcnow(), tz, full)
        if user is not None:
            logged = area_export.log_reveals(user, area, span, utcnow(), "cli")
            db.session.commit()  # logged before the file is in place: a reveal is never missed
            click.echo(f"full version for {user.username}: {logged} reveals logged")
        partial.replace(target)
    except OSError as err:
        raise click.ClickException(f"cannot write {target}: {err.strerror}") from None
    finally:
        partial.unlink(missing_ok=True)
    click.echo(f"wrote {count} lines of {area.name} ({code}), {span.first} to {span.last}, to {target}")


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-11-18", param_hint=option) from None

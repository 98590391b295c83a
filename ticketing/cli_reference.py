"""Flask commands for reference data: `flask reference load`,
`flask calendar show|confirm|set|unset|list`."""
from __future__ import annotations

from datetime import date, datetime

import click
from flask.cli import AppGroup
from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import CalendarDay, utcnow
from ticketing.services import calendar_admin
from ticketing.services.holidays import package_knows
from ticketing.services.workdays import official_workday

reference = AppGroup("reference", help="Time-limit tiers and the category tree.")
calendar = AppGroup("calendar", help="The holiday calendar: special days, admin entries, confirmed years.")


@reference.command("load")
def load_reference_command() -> None:
    """Add the standard tiers and categories that are missing (edits are kept)."""
    from ticketing.reference import ensure_reference_data

    ensure_reference_data()
    db.session.commit()
    click.echo("Time-limit tiers and categories are in place.")


def parse_day(value: str) -> date:
    """A YYYY-MM-DD date, or a usage error."""
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-10-01") from None


@calendar.command("set")
@click.argument("day")
@click.option("--holiday/--workday", required=True, help="Make the day a holiday or a working day.")
@click.option("--note", default="", help="Why, e.g. 台风停工 or 补班.")
def set_day_command(day: str, holiday: bool, note: str) -> None:
    """Override one day of the official calendar."""
    when = parse_day(day)
    calendar_admin.set_day(when, not holiday, note, None, utcnow())
    db.session.commit()
    click.echo(f"{when}: {'holiday' if holiday else 'working day'} (official: "
               f"{'working day' if official_workday(when) else 'holiday'})")


@calendar.command("unset")
@click.argument("day")
def unset_day_command(day: str) -> None:
    """Remove an override; the official calendar applies again."""
    when = parse_day(day)
    if not calendar_admin.unset_day(when, None, utcnow()):
        raise click.ClickException(f"{when} has no override")
    db.session.commit()
    click.echo(f"{when}: override removed")


@calendar.command("list")
def list_days_command() -> None:
    """List the overrides."""
    rows = db.session.scalars(select(CalendarDay).order_by(CalendarDay.day)).all()
    for row in rows:
        click.echo(f"{row.day}  {'working day' if row.is_workday else 'holiday':12}  {row.note}")
    if not rows:
        click.echo("No overrides: the official calendar applies.")


def parse_year(value: int) -> int:
    """A year the calendar covers, or a usage error."""
    if not calendar_admin.FIRST_YEAR <= value <= calendar_admin.LAST_YEAR:
        raise click.BadParameter(f"{value} is not between {calendar_admin.FIRST_YEAR} and {calendar_admin.LAST_YEAR}")
    return value


@calendar.command("show")
@click.argument("year", type=int)
def show_year_command(year: int) -> None:
    """Print each day of YEAR that differs from Monday–Friday working, and each admin entry:
    date, holiday|workday, source (package, statutory, admin), note."""
    for special in calendar_admin.year_days(parse_year(year)):
        kind = "workday" if special.is_workday else "holiday"
        click.echo(f"{special.day.isoformat()}  {kind:7}  {special.source:9}  {special.cli_note}".rstrip())
    if package_knows(year):
        state = "the package has the State Council's schedule"
    elif (row := calendar_admin.confirmation(year)) is not None:
        state = f"statutory holidays computed; make-up working days confirmed {row.confirmed_at:%Y-%m-%d}"
    else:
        state = "statutory holidays computed; make-up working days NOT confirmed (flask calendar confirm)"
    click.echo(f"{year}: {state}", err=True)


@calendar.command("confirm")
@click.argument("year", type=int)
def confirm_year_command(year: int) -> None:
    """Confirm that YEAR's make-up working days (调休) are entered; ends the warnings."""
    row = calendar_admin.confirm_year(parse_year(year), None, utcnow())
    db.session.commit()
    if row is None:
        click.echo(f"{year}: chinese-calendar knows this year; nothing to confirm.")
    else:
        click.echo(f"{year}: confirmed {row.confirmed_at:%Y-%m-%d %H:%M} UTC.")

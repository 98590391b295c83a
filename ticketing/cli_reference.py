"""Flask commands for reference data: `flask reference load`, `flask calendar set|unset|list`."""
from __future__ import annotations

from datetime import date, datetime

import click
from flask.cli import AppGroup
from sqlalchemy import select

from ticketing.cli import shell_user
from ticketing.extensions import db
from ticketing.models import CalendarDay, utcnow
from ticketing.services import audit
from ticketing.services.workdays import official_workday

reference = AppGroup("reference", help="Time-limit tiers and the category tree.")
calendar = AppGroup("calendar", help="Admin overrides of the official working-day calendar.")


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


def day_record(row: CalendarDay) -> dict[str, object]:
    """An override as the audit log keeps it."""
    return {"is_workday": row.is_workday, "note": row.note}


@calendar.command("set")
@click.argument("day")
@click.option("--holiday/--workday", required=True, help="Make the day a holiday or a working day.")
@click.option("--note", default="", help="Why, e.g. 台风停工 or 补班.")
def set_day_command(day: str, holiday: bool, note: str) -> None:
    """Override one day of the official calendar."""
    when = parse_day(day)
    row = db.session.get(CalendarDay, when)
    before = day_record(row) if row is not None else None
    row = row or CalendarDay(day=when)
    row.is_workday, row.note = not holiday, note[:200]
    db.session.add(row)
    audit.record(None, "calendar.set", "calendar_day", when.isoformat(), when.isoformat(), before,
                 day_record(row), utcnow(), via="cli", actor_label=shell_user())
    db.session.commit()
    click.echo(f"{when}: {'holiday' if holiday else 'working day'} (official: "
               f"{'working day' if official_workday(when) else 'holiday'})")


@calendar.command("unset")
@click.argument("day")
def unset_day_command(day: str) -> None:
    """Remove an override; the official calendar applies again."""
    when = parse_day(day)
    row = db.session.get(CalendarDay, when)
    if row is None:
        raise click.ClickException(f"{when} has no override")
    audit.record(None, "calendar.unset", "calendar_day", when.isoformat(), when.isoformat(), day_record(row),
                 None, utcnow(), via="cli", actor_label=shell_user())
    db.session.delete(row)
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

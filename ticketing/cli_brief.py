"""`flask brief send [--date D]`: the supervisors' morning brief, by hand.

The scheduler sends it each working day at 08:00 (services/brief_send.py `morning`);
by hand it is sent on the day asked for, working day or not: whoever runs it means
it (a brief for a weekend duty, or after an outage), and a supervisor who already
has that day's brief does not get it twice.
"""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import AppGroup

from ticketing.models import utcnow
from ticketing.services.brief_send import BriefsFailed, send
from ticketing.services.sweep import app_calendar

brief = AppGroup("brief", help="The supervisors' morning brief (晨报).")


def parse_day(value: str | None) -> date:
    """A YYYY-MM-DD date; today (local) when not given."""
    if not value:
        return utcnow().astimezone(ZoneInfo(current_app.config["TIMEZONE"])).date()
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-11-18", param_hint="--date") from None


@brief.command("send")
@click.option("--date", "day", help="The local day of the brief, YYYY-MM-DD (default: today).")
def send_command(day: str | None) -> None:
    """Send each supervisor the brief of a day (default today) unless they have it already.

    Unlike the scheduled run, this sends on a weekend or holiday too. The brief's lists
    are as things stand now; its ledger lines are those of the day before D.
    """
    which = parse_day(day)
    try:
        written = send(which, utcnow(), app_calendar())
    except BriefsFailed as failed:
        raise click.ClickException(str(failed)) from None
    click.echo(f"morning briefs of {which}: {written} sent")

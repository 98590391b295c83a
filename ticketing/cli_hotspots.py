"""`flask hotspots find`: the recurring problems (高频诉求), found and stored by hand.

The scheduler finds them every night at 00:40 for yesterday (services/hotspots.py);
this finds them for any local day, for one window or both, and prints one cluster per
line: place, category, count and trend.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

import click
from flask import current_app
from flask.cli import AppGroup

from ticketing.extensions import db
from ticketing.models import Hotspot, utcnow
from ticketing.services import hotspots

hotspots_cli = AppGroup("hotspots", help="Recurring problems (高频诉求): clusters of tickets by place and category.")


def parse_day(value: str | None) -> date:
    """A YYYY-MM-DD date; yesterday (local) when not given."""
    if not value:
        return utcnow().astimezone(hotspots.app_tz()).date() - timedelta(days=1)
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-11-18", param_hint="--date") from None


def line(spot: Hotspot) -> str:
    """One cluster: place, category, count, trend (tab-separated)."""
    trend = "new" if spot.is_new else f"{spot.trend:+d}"
    return f"{spot.place_name}\t{spot.category.name_zh} ({spot.category.code})\t{spot.count}\t{trend}"


@hotspots_cli.command("find")
@click.option("--days", type=click.IntRange(1, 366), help="The window in days (default: 30, then 90).")
@click.option("--date", "day", help="The local day the window ends with, YYYY-MM-DD (default: yesterday).")
def find_command(days: int | None, day: str | None) -> None:
    """Find the clusters, store them (replacing a run of the same day and window), print them."""
    which = parse_day(day)
    min_count = current_app.config["HOTSPOT_MIN_COUNT"]
    for window in (days,) if days else hotspots.WINDOWS:
        run = hotspots.run(which, window, utcnow(), min_count)
        db.session.commit()
        click.echo(f"# {run.clusters} clusters of at least {min_count} tickets in the {window} days "
                   f"ending {which}: place, category, count, trend")
        for spot in hotspots.listing(None, which, window).hotspots:
            click.echo(line(spot))

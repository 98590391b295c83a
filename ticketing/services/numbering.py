"""Ticket numbers: the local date and a daily sequence, e.g. 261121-0042.

Easy to read over the phone, and race-free across processes: the counter row is
created or bumped by one INSERT … ON CONFLICT DO UPDATE … RETURNING, which
PostgreSQL serialises on the row lock and SQLite on its write lock, inside the
transaction that stores the ticket (on PostgreSQL, inside the very statement that
stores it: services/intake.py).
"""
from __future__ import annotations

from datetime import datetime, tzinfo

from sqlalchemy import Integer, column, text

from ticketing.extensions import db


def ticket_day(now: datetime, tz: tzinfo) -> str:
    """The day part of the numbers of tickets filed at `now`."""
    return now.astimezone(tz).strftime("%y%m%d")


# The same text on PostgreSQL and SQLite (3.35+), with the day's placeholder to fill in
# (intake nests it in its own statement on PostgreSQL). Text, not an
# insert().on_conflict_do_update() construct: SQLAlchemy cannot cache that construct's
# compiled form and compiled it anew for every ticket.
BUMP_SQL = ("INSERT INTO ticket_counters (day, last) VALUES ({day}, 1)"
            " ON CONFLICT (day) DO UPDATE SET last = ticket_counters.last + 1 RETURNING last")
BUMP = text(BUMP_SQL.format(day=":day")).columns(column("last", Integer))


def next_ticket_number(now: datetime, tz: tzinfo) -> str:
    """Reserve and return the next ticket number for the local day of `now`."""
    day = ticket_day(now, tz)
    last = db.session.execute(BUMP, {"day": day}).scalar_one()
    return f"{day}-{last:04d}"


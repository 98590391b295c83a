"""Ticket numbers: the local date and a daily sequence, e.g. 261121-0042.

Easy to read over the phone, and race-free across processes: the counter row is
bumped with one UPDATE … RETURNING, which PostgreSQL serialises on the row lock and
SQLite on its write lock, inside the transaction that stores the ticket.
"""
from __future__ import annotations

from datetime import datetime, tzinfo

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite

from ticketing.extensions import db
from ticketing.models import TicketCounter


def next_ticket_number(now: datetime, tz: tzinfo) -> str:
    """Reserve and return the next ticket number for the local day of `now`."""
    day = now.astimezone(tz).strftime("%y%m%d")
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    db.session.execute(
        insert(TicketCounter).values(day=day, last=0).on_conflict_do_nothing(index_elements=["day"])
    )
    last = db.session.execute(
        update(TicketCounter)
        .where(TicketCounter.day == day)
        .values(last=TicketCounter.last + 1)
        .returning(TicketCounter.last)
    ).scalar_one()
    return f"{day}-{last:04d}"

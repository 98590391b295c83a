"""Ticket numbers: the local date and a daily sequence, e.g. 261121-0042.

Easy to read over the phone, and race-free across processes: the counter row is
created or bumped by one INSERT … ON CONFLICT DO UPDATE … RETURNING, which
PostgreSQL serialises on the row lock and SQLite on its write lock, inside the
transaction that stores the ticket.
"""
from __future__ import annotations

from datetime import datetime, tzinfo

from sqlalchemy.dialects import postgresql, sqlite

from ticketing.extensions import db
from ticketing.models import TicketCounter


def next_ticket_number(now: datetime, tz: tzinfo) -> str:
    """Reserve and return the next ticket number for the local day of `now`."""
    day = now.astimezone(tz).strftime("%y%m%d")
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(TicketCounter).values(day=day, last=1)
    last = db.session.execute(
        statement.on_conflict_do_update(index_elements=["day"], set_={"last": TicketCounter.last + 1})
        .returning(TicketCounter.last)
    ).scalar_one()
    return f"{day}-{last:04d}"

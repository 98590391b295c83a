"""Ticket numbers: the local date and a daily sequence, e.g. 261121-0042.

Easy to read over the phone, and race-free across processes, by database:

- PostgreSQL: each day has a sequence of its own (`ticket_numbers_261121`), created
  the first time a process numbers a ticket of that day. `nextval` takes no lock
  that lasts until commit, so filings do not queue behind one another; a counter
  row did, and capped intake at what one row lock could pass. Like every sequence
  it skips the number of a filing that fails after taking it (two deliveries of
  one message racing, a crash), so a day's numbers are unique and rising, not
  always gapless.
- SQLite (the embedded default): a row per day in `ticket_counters`, bumped by one
  INSERT … ON CONFLICT DO UPDATE … RETURNING inside the transaction that stores the
  ticket; SQLite runs one writer at a time anyway.

A day first numbered by the counter (before sequences) goes on from its last number.
Sequences of days long past are dropped by the nightly housekeeping.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, tzinfo

from sqlalchemy import Integer, column, text
from sqlalchemy.exc import DBAPIError

from ticketing.extensions import db

SEQUENCE_PREFIX = "ticket_numbers_"
DAY = re.compile(r"^\d{6}$")
# How long a day's sequence is kept after the day: long past any late filing.
KEEP_DAYS = timedelta(days=7)
# Days whose sequence this process has seen exist, by database.
_ready: set[tuple[str, str]] = set()

BUMP = text(
    "INSERT INTO ticket_counters (day, last) VALUES (:day, 1)"
    " ON CONFLICT (day) DO UPDATE SET last = ticket_counters.last + 1 RETURNING last"
).columns(column("last", Integer))
NEXT = text("SELECT nextval(CAST(:sequence AS regclass)) AS last").columns(column("last", Integer))


def ticket_day(now: datetime, tz: tzinfo) -> str:
    """The day part of the numbers of tickets filed at `now`."""
    return now.astimezone(tz).strftime("%y%m%d")


def sequence_name(day: str) -> str:
    """The PostgreSQL sequence of a day's numbers."""
    if not DAY.match(day):
        raise ValueError(f"not a ticket day: {day!r}")
    return SEQUENCE_PREFIX + day


def uses_sequences() -> bool:
    """Whether the database numbers by sequences (PostgreSQL)."""
    return db.session.get_bind().dialect.name == "postgresql"


def next_ticket_number(now: datetime, tz: tzinfo) -> str:
    """Reserve and return the next ticket number for the local day of `now`."""
    day = ticket_day(now, tz)
    if uses_sequences():
        last = db.session.execute(NEXT, {"sequence": prepare_day(day)}).scalar_one()
    else:
        last = db.session.execute(BUMP, {"day": day}).scalar_one()
    return format_number(day, last)


def format_number(day: str, last: int) -> str:
    """`261121-0042`: at least four digits, more past 9999."""
    return f"{day}-{last:04d}"


def prepare_day(day: str) -> str:
    """PostgreSQL: make sure the day's sequence exists; its name.

    Created in a transaction of its own, so that it outlives the filing that needed it,
    and started after the day's counter row, if the counter numbered that day before.
    Two processes creating it at once: one wins, the other finds it made.
    """
    name = sequence_name(day)
    key = (str(db.engine.url), day)
    if key in _ready:
        return name
    exists = text("SELECT to_regclass(:name)").bindparams(name=name)
    with db.engine.connect() as conn:
        try:
            with conn.begin():  # DDL is transactional: nobody sees the sequence before its start is set
                if conn.scalar(exists) is None:
                    conn.exec_driver_sql(f"CREATE SEQUENCE {name} MINVALUE 1")
                    conn.execute(text("SELECT setval(CAST(:name AS regclass), last) FROM ticket_counters"
                                      " WHERE day = :day AND last > 0"), {"name": name, "day": day})
        except DBAPIError:
            if conn.scalar(exists) is None:
                raise  # not the race with another process creating it: a real failure
    _ready.add(key)
    return name


def drop_days_before(day: date) -> int:
    """PostgreSQL: drop the sequences of days before `day`; how many went. Numbers
    already given stay on their tickets; no ticket is filed on so old a day."""
    if not uses_sequences():
        return 0
    cutoff = day.strftime("%y%m%d")
    names = db.session.scalars(text(
        "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()"
        " AND sequencename LIKE :prefix"), {"prefix": SEQUENCE_PREFIX + "%"}).all()
    # Six digits, year first: the names sort as their days do (this century).
    old = [name for name in names if DAY.match(name[len(SEQUENCE_PREFIX):]) and name[len(SEQUENCE_PREFIX):] < cutoff]
    for name in old:
        db.session.execute(text(f"DROP SEQUENCE IF EXISTS {name}"))
    db.session.commit()
    forget()
    return len(old)


def forget() -> None:
    """Forget which days' sequences exist (after dropping some; tests)."""
    _ready.clear()

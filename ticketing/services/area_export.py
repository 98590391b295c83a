"""Ledger exports of a community or a street over a day, a week, a month or any range of days.

What the file holds comes from the compiled ledgers only (services/ledger.py), never
from re-reading the history:

- the summary: the area's roll-up over the period (`ledger_report.rollup`), so the
  figures are those of the dashboard for the same area and period;
- one row per grid: its sums over the period, and what was open and overdue at the
  end of the period's last compiled day (as the roll-up counts them, so the grids add
  up to the summary);
- one line per ticket touched in the period. A ticket touched on several days has a
  line in each of those days' ledgers; the file keeps the line of the **latest** of
  them, i.e. the ticket as it stood at the end of the last day it was touched in the
  period (its state, handler, deadline, result and rating then), and names that day.

A rate is shown only when it is over at least `ledger_report.MIN_TICKETS` tickets
(its n, the denominator), so a grid with fewer tickets than that in the period has
no rates; n is always shown.

Who may export what: an area is exported whole or not at all, so a person may export
an area only when their scope (services/scope.py) covers all of it: admins any area,
a street's supervisors and dispatchers the street and its communities, a community's
its own community; nobody else. The full version (names, phones and rooms) is for
those `ledger_export.may_export_full` allows, and logs a reveal per ticket.

The lines are read in batches from a server-side cursor and written as they come
(services/area_files.py), so a street's month never sits in memory whole.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, Row, and_, distinct, func, literal, select
from sqlalchemy.orm import aliased

from ticketing.extensions import db
from ticketing.models import (
    Building,
    Category,
    Community,
    Complex,
    Grid,
    Ledger,
    LedgerLine,
    RevealLog,
    Role,
    Street,
    Ticket,
    User,
)
from ticketing.models.types import UTCDateTime
from ticketing.services import ledger_report
from ticketing.services.errors import InvalidInput
from ticketing.services.ledger_report import Period

# The longest range one file covers: a year, leap day included.
MAX_DAYS = 366
PERIOD_KINDS = ("day", "week", "month", "range")
AREA_KINDS = ("community", "street")
# Lines fetched from the database at a time: enough to keep the round trips few, few
# enough that a batch (with its 回访 looked up) stays a few megabytes.
BATCH = 2000
# What each grid's row adds up over the period (the stocks are read apart).
GRID_SUMS = ("new", "resolved", "closed", "response_num", "response_den", "resolution_num", "resolution_den",
             "satisfaction_num", "satisfaction_den", "callback_due", "callback_in_time", "callback_reached",
             "accept_n", "accept_total_s", "resolve_n", "resolve_total_s")


def parse_day(value: str | None, field: str) -> date | None:
    """A YYYY-MM-DD date, None when empty; raises `InvalidInput` on anything else."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(_l("%(value)s is not a date like 2026-11-18.", value=value[:20]), field=field) from None


def export_period(kind: str, day: date | None = None, first: date | None = None, last: date | None = None) -> Period:
    """The day, ISO week or calendar month holding `day`, or the days `first`..`last`
    (both included, at most MAX_DAYS); raises `InvalidInput` saying what is wrong."""
    if kind in ledger_report.PERIODS:
        if day is None:
            raise InvalidInput(_l("Choose the day."), field="day")
        return ledger_report.period(kind, day)
    if kind != "range":
        raise InvalidInput(_l("Choose a day, a week, a month or a range of days."), field="period")
    if first is None or last is None:
        raise InvalidInput(_l("Give the first and the last day."), field="from" if first is None else "to")
    if first > last:
        raise InvalidInput(_l("The first day (%(first)s) is after the last (%(last)s).",
                              first=first.isoformat(), last=last.isoformat()), field="from")
    span = Period("range", first, last)
    if span.days > MAX_DAYS:
        raise InvalidInput(_l("One file covers at most %(n)d days; this range has %(days)d.",
                              n=MAX_DAYS, days=span.days), field="to")
    return span


@dataclass(frozen=True)
class ExportArea:
    """A community or a street, the unit a file covers."""

    kind: str  # "community" | "street"
    id: int
    code: str
    name: str
    street_id: int

    def where(self, model: Any) -> ColumnElement[bool]:
        """The rows of `model` (Ledger, HandlerDay: kept per grid, with the grid's
        community and street copied in) of this area."""
        column = model.community_id if self.kind == "community" else model.street_id
        return column == self.id

    def filename(self, span: Period, fmt: str, full: bool) -> str:
        """ledger-CA-2026-11-18.xlsx, ledger-ST01-2026-11-16-2026-11-22-full.csv …"""
        days = span.first.isoformat() if span.days == 1 else f"{span.first.isoformat()}-{span.last.isoformat()}"
        return f"ledger-{self.code}-{days}{'-full' if full else ''}.{fmt}"


def find_area(kind: str, code: str) -> ExportArea | None:
    """The community or street with this code, or None."""
    if kind == "community":
        row = db.session.execute(select(Community.id, Community.code, Community.name, Community.street_id)
                                 .where(Community.code == code)).first()
    elif kind == "street":
        row = db.session.execute(select(Street.id, Street.code, Street.name, Street.id)
                                 .where(Street.code == code)).first()
    else:
        return None
    return ExportArea(kind, *row) if row is not None else None


def may_export(user: User, area: ExportArea) -> bool:
    """Whether the area lies wholly in the user's scope (the module's docstring)."""
    if user.role == Role.ADMIN:
        return True
    if user.role not in (Role.SUPERVISOR, Role.DISPATCHER):
        return False
    if user.community_id is not None:
        return area.kind == "community" and area.id == user.community_id
    return user.street_id is not None and area.street_id == user.street_id


def area_for_key(user: User, key: str) -> ExportArea | None:
    """The area of one of the dashboard's choices (`ledger/pages.Area.key`): "community:CA",
    "street:ST01", or "all" (the user's own community or street), if the user may export it."""
    kind, _, code = key.partition(":")
    if kind == "all" and not code:
        if user.role == Role.ADMIN:
            streets = db.session.scalars(select(Street.code).limit(2)).all()
            kind, code = ("street", streets[0]) if len(streets) == 1 else ("", "")
        elif user.community is not None:
            kind, code = "community", user.community.code
        elif user.street is not None:
            kind, code = "street", user.street.code
    area = find_area(kind, code)
    return area if area is not None and may_export(user, area) else None


def _in_span(area: ExportArea, span: Period) -> ColumnElement[bool]:
    return and_(area.where(Ledger), Ledger.day >= span.first, Ledger.day <= span.last)


@dataclass(frozen=True)
class Summary:
    """The area's figures over the period, and how many of its days were compiled."""

    figures: ledger_report.Figures
    compiled_days: int
    last_compiled: date | None


def summary(area: ExportArea, span: Period) -> Summary:
    """The roll-up of the area's ledgers over the period (as the dashboard shows it)."""
    compiled, last = db.session.execute(select(func.count(distinct(Ledger.day)), func.max(Ledger.day))
                                        .where(_in_span(area, span))).one()
    return Summary(ledger_report.rollup(area.where(Ledger), span), int(compiled or 0), last)


@dataclass(frozen=True)
class GridFigures:
    """One grid's figures over the period."""

    community: str
    code: str
    name: str
    sums: dict[str, int]
    open_at_end: int
    overdue_at_end: int

    def rate(self, name: str) -> ledger_report.Rate:
        """One of the 三率, or "callback" for the 有效回访率."""
        if name == "callback":
            return ledger_report.Rate(self.sums["callback_reached"], self.sums["callback_due"])
        return ledger_report.Rate(self.sums[f"{name}_num"], self.sums[f"{name}_den"])

    def mean_s(self, name: str) -> int | None:
        """The mean time to accept ("accept") or to resolve ("resolve"), in seconds."""
        n = self.sums[f"{name}_n"]
        return round(self.sums[f"{name}_total_s"] / n) if n else None


def grid_figures(area: ExportArea, span: Period) -> list[GridFigures]:
    """Each grid of the area with a ledger in the period, by community and grid code.

    Open and overdue are those of the period's last compiled day (of the area, as
    `rollup` takes them), so the grids' stocks add up to the summary's.
    """
    in_span = _in_span(area, span)
    sums = (select(Ledger.grid_id, *(func.sum(getattr(Ledger, name)).label(name) for name in GRID_SUMS))
            .where(in_span).group_by(Ledger.grid_id).subquery())
    last_day = select(func.max(Ledger.day)).where(in_span).scalar_subquery()
    stocks = {grid_id: (int(open_n or 0), int(overdue_n or 0)) for grid_id, open_n, overdue_n in db.session.execute(
        select(Ledger.grid_id, Ledger.open_at_end, Ledger.overdue_at_end).where(area.where(Ledger),
                                                                               Ledger.day == last_day))}
    rows = db.session.execute(
        select(sums, Community.name.label("community"), Grid.code, Grid.name)
        .join(Grid, Grid.id == sums.c.grid_id).join(Community, Community.id == Grid.community_id)
        .order_by(Community.code, Grid.code))
    return [GridFigures(row.community, row.code, row.name, {name: int(getattr(row, name) or 0) for name in GRID_SUMS},
                        *stocks.get(row.grid_id, (0, 0)))
            for row in rows]


def _latest_lines(area: ExportArea, span: Period) -> Any:
    """The query of the lines: per ticket, its line of the latest day it was touched in
    the period, with what the file shows of the ticket, by community, grid and number."""
    ranked = (select(LedgerLine.id.label("line_id"), Ledger.day.label("day"), Ledger.grid_id.label("grid_id"),
                     func.row_number().over(partition_by=LedgerLine.ticket_id,
                                            order_by=(Ledger.day.desc(), LedgerLine.id.desc())).label("latest"))
              .join(Ledger, LedgerLine.ledger_id == Ledger.id).where(_in_span(area, span)).subquery())
    line = aliased(LedgerLine)
    return (select(ranked.c.day, Community.name.label("community_name"), Grid.name.label("grid_name"),
                   line.ticket_id, line.status, line.handler, line.deadline, line.overdue, line.result, line.rating,
                   Ticket.number, Ticket.channel, Ticket.created_at, Ticket.requester_name, Ticket.requester_phone,
                   Ticket.unit_room, Ticket.address_text, Ticket.description,
                   Category.name_zh.label("category_name"), Complex.name.label("complex_name"),
                   Building.name.label("building_name"))
            .select_from(ranked)
            .join(line, line.id == ranked.c.line_id)
            .join(Ticket, Ticket.id == line.ticket_id)
            .join(Grid, Grid.id == ranked.c.grid_id)
            .join(Community, Community.id == Grid.community_id)
            .outerjoin(Category, Category.id == Ticket.category_id)
            .outerjoin(Complex, Complex.id == Ticket.complex_id)
            .outerjoin(Building, Building.id == Ticket.building_id)
            .where(ranked.c.latest == 1)
            .order_by(Community.code, Grid.code, Ticket.number))


def line_batches(area: ExportArea, span: Period, size: int = BATCH) -> Iterator[Sequence[Row[Any]]]:
    """The lines of the file (see `_latest_lines`), `size` at a time, from a server-side
    cursor on PostgreSQL: the whole result is never held."""
    result = db.session.execute(_latest_lines(area, span).execution_options(yield_per=size))
    yield from result.partitions()


def has_ledgers(area: ExportArea, span: Period) -> bool:
    """Whether any ledger of the area was compiled for a day of the period."""
    return db.session.scalar(select(Ledger.id).where(_in_span(area, span)).limit(1)) is not None


def line_count(area: ExportArea, span: Period, cap: int) -> int:
    """How many ledger lines the area has in the period, counted up to `cap` + 1 only:
    enough to tell a file too big to make in a request (at most `cap` + 1 index entries
    read; a street's month on the 5 M-ticket database: 10-60 ms, against 180 ms for
    the whole count of its 1.2 M lines). Lines, not tickets: a ticket touched on
    several days counts once per day, so this is at least the file's line count."""
    lines = (select(LedgerLine.id).join(Ledger, LedgerLine.ledger_id == Ledger.id)
             .where(_in_span(area, span)).limit(cap + 1).subquery())
    return int(db.session.scalar(select(func.count()).select_from(lines)) or 0)


def log_reveals(user: User, area: ExportArea, span: Period, now: datetime, remote_addr: str = "") -> int:
    """A reveal (purpose "export") per ticket of a full export, in one INSERT … SELECT:
    the ticket ids never come into Python. Returns how many; the caller commits."""
    tickets = (select(distinct(LedgerLine.ticket_id).label("ticket_id"))
               .join(Ledger, LedgerLine.ledger_id == Ledger.id).where(_in_span(area, span)).subquery())
    rows = select(tickets.c.ticket_id, literal(user.id), literal(now, UTCDateTime()), literal("export"),
                  literal(remote_addr[:64]))
    insert = RevealLog.__table__.insert().from_select(["ticket_id", "user_id", "at", "purpose", "remote_addr"], rows)
    # SQLAlchemy keeps an INSERT's row count only when asked to.
    result = db.session.execute(insert.execution_options(preserve_rowcount=True))
    return int(result.rowcount)  # type: ignore[attr-defined]


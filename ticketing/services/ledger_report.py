"""Reading the compiled ledgers: roll-ups over a day, a week or a month, rankings, trends.

Everything here reads `ledgers` and `ledger_handlers` rows, never tickets, so the
history's size does not matter: a street of a thousand grids is 1,000 ledgers and
about 4,000 handler rows a day, added up by the database (its dashboard: about
200 ms for a day or a week, 390 ms for a month; bench/ledger_bench.py).

How a roll-up adds up the days and grids (community, street, or any set of grids):

- counts of what happened (filed, dispatched, accepted, resolved, closed, escalated,
  reopened, by channel and category) are sums;
- the 三率 are Σ numerators / Σ denominators: exact, never an average of rates;
- open and overdue are stocks: those of the period's last compiled day, summed over
  its grids (adding up days would count a ticket once per day it stayed open);
- mean times are Σ durations / Σ count (both kept per ledger), so exact; so is the
  mean time on hold of the resolved tickets that were held;
- the 回访 figures (callbacks due, finished in time, reached) are sums, and the
  有效回访率 is Σ reached / Σ due;
- the 90th percentile cannot be added up. A roll-up shows the largest of its daily
  p90s, which is a true bound: every day at least 90 % took no longer than that, so
  over the period too. It reads "90 % within".
"""
from __future__ import annotations

import calendar as cal
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, cast, func, select, true

from ticketing.extensions import db
from ticketing.models import Grid, HandlerDay, Ledger

PERIODS = ("day", "week", "month")
RATES = ("response", "resolution", "satisfaction")
FLOWS = ("new", "dispatched", "accepted", "resolved", "closed", "escalated", "reopened",
         "patrol_new", "patrol_resolved")
STOCKS = ("open_at_end", "overdue_at_end", "on_hold_at_end")
CALLBACKS = ("callback_due", "callback_in_time", "callback_reached")
TREND_DAYS = 30
# The small-sample rule: a unit (grid, handler, community) with fewer tickets than this
# in the period gets no rate and no place in a ranking, in the dashboard and the
# supervisors' brief alike; a rate over a handful of tickets makes an unfair league table.
MIN_TICKETS = 10


def enough(tickets: int) -> bool:
    """Whether a unit with `tickets` in the period may be given rates and a rank."""
    return tickets >= MIN_TICKETS


@dataclass(frozen=True)
class Period:
    """A span of local days, both ends included."""

    kind: str
    first: date
    last: date

    @property
    def days(self) -> int:
        """How many days the period holds."""
        return (self.last - self.first).days + 1

    def previous(self) -> Period:
        """The period of the same kind just before."""
        return period(self.kind, self.first - timedelta(days=1))

    def following(self) -> Period:
        """The period of the same kind just after."""
        return period(self.kind, self.last + timedelta(days=1))


def period(kind: str, day: date) -> Period:
    """The day, the ISO week (Monday to Sunday) or the calendar month holding `day`."""
    if kind == "week":
        monday = day - timedelta(days=day.weekday())
        return Period(kind, monday, monday + timedelta(days=6))
    if kind == "month":
        return Period(kind, day.replace(day=1), day.replace(day=cal.monthrange(day.year, day.month)[1]))
    if kind != "day":
        raise ValueError(f"unknown period {kind!r}")
    return Period(kind, day, day)


@dataclass(frozen=True)
class Rate:
    """A rate kept as its parts."""

    num: int
    den: int

    @property
    def value(self) -> float | None:
        """The fraction, or None when nothing was due."""
        return self.num / self.den if self.den else None

    @property
    def percent(self) -> str:
        """"87.5%", or "—" when nothing was due."""
        return "—" if self.value is None else f"{self.value * 100:.1f}%"


@dataclass
class Figures:
    """The summed figures of some ledgers."""

    counts: dict[str, int]
    rates: dict[str, Rate]
    accept_mean_s: int | None = None
    accept_p90_s: int | None = None
    resolve_mean_s: int | None = None
    resolve_p90_s: int | None = None
    # The time on hold of the resolved tickets that were held: how many, and their mean.
    hold_n: int = 0
    hold_mean_s: int | None = None
    by_channel: dict[str, int] = field(default_factory=dict)
    by_category: dict[str, int] = field(default_factory=dict)
    ledgers: int = 0  # how many grid-days were added up

    @property
    def callbacks(self) -> Rate:
        """有效回访率: callbacks that reached the resident / callbacks due."""
        return Rate(self.counts.get("callback_reached", 0), self.counts.get("callback_due", 0))


def rates_of(row: Any) -> dict[str, Rate]:
    """The three rates of a row that has `<rate>_num` and `<rate>_den` (summed or not)."""
    return {name: Rate(int(getattr(row, f"{name}_num") or 0), int(getattr(row, f"{name}_den") or 0))
            for name in RATES}


def callback_rate(row: Any) -> Rate:
    """The 有效回访率 of a row that has callback_reached and callback_due (summed or not)."""
    return Rate(int(row.callback_reached or 0), int(row.callback_due or 0))


def _callback_sums(model: Any) -> list[Any]:
    return [func.sum(getattr(model, name)).label(name) for name in CALLBACKS]


def _rate_sums(model: Any) -> list[Any]:
    return [func.sum(getattr(model, f"{name}_{part}")).label(f"{name}_{part}")
            for name in RATES for part in ("num", "den")]


def _in_period(model: Any, span: Period) -> ColumnElement[bool]:
    return and_(model.day >= span.first, model.day <= span.last)


def _mean(total: Any, n: Any) -> int | None:
    return round(int(total) / int(n)) if n else None


def rollup(where: ColumnElement[bool], span: Period) -> Figures:
    """Add up the ledgers selected by `where` over `span` (see the module's docstring)."""
    in_span = and_(where, _in_period(Ledger, span))
    row = db.session.execute(select(
        func.count().label("ledgers"), *(func.sum(getattr(Ledger, name)).label(name) for name in FLOWS),
        *_rate_sums(Ledger), *_callback_sums(Ledger),
        *(func.sum(getattr(Ledger, name)).label(name)
          for name in ("accept_n", "accept_total_s", "resolve_n", "resolve_total_s", "hold_n", "hold_total_s")),
        func.max(Ledger.accept_p90_s).label("accept_p90_s"), func.max(Ledger.resolve_p90_s).label("resolve_p90_s"),
    ).where(in_span)).one()
    figures = Figures(counts={name: int(getattr(row, name) or 0) for name in (*FLOWS, *CALLBACKS)},
                      rates=rates_of(row),
                      accept_mean_s=_mean(row.accept_total_s, row.accept_n), accept_p90_s=row.accept_p90_s,
                      resolve_mean_s=_mean(row.resolve_total_s, row.resolve_n), resolve_p90_s=row.resolve_p90_s,
                      hold_n=int(row.hold_n or 0), hold_mean_s=_mean(row.hold_total_s, row.hold_n),
                      ledgers=int(row.ledgers))
    last_day = select(func.max(Ledger.day)).where(in_span).scalar_subquery()
    stocks = db.session.execute(select(*(func.sum(getattr(Ledger, name)) for name in STOCKS))
                                .where(where, Ledger.day == last_day)).one()
    figures.counts.update({name: int(value or 0) for name, value in zip(STOCKS, stocks, strict=True)})
    figures.by_channel = breakdown(Ledger.by_channel, in_span)
    figures.by_category = breakdown(Ledger.by_category, in_span)
    return figures


def breakdown(column: Any, where: ColumnElement[bool]) -> dict[str, int]:
    """Add up a JSON object of counts (by channel, by category) over the ledgers
    selected, inside the database: its JSON functions unnest them."""
    postgres = db.session.get_bind().dialect.name == "postgresql"
    pairs = (func.json_each_text if postgres else func.json_each)(column).table_valued("key", "value")
    rows = db.session.execute(select(pairs.c.key, func.sum(cast(pairs.c.value, Integer)))
                              .select_from(Ledger).join(pairs, true()).where(where).group_by(pairs.c.key))
    return {key: int(n) for key, n in sorted(rows, key=lambda kn: (-kn[1], kn[0]))}


@dataclass
class Ranked:
    """One grid's or one handler's line of a ranking."""

    key: str
    name: str
    rates: dict[str, Rate]
    extra: dict[str, Any] = field(default_factory=dict)
    rank: int = 0  # 1 for the best


def _ranked(lines: list[Ranked], by: str) -> list[Ranked]:
    """Best `by` rate first; ties by the larger denominator; those with nothing due last."""
    def order(line: Ranked) -> tuple[int, float, int, str]:
        rate = line.rates[by]
        return (rate.value is None, -(rate.value or 0), -rate.den, line.name)
    ranked = sorted(lines, key=order)
    for place, line in enumerate(ranked, start=1):
        line.rank = place
    return ranked


def grid_ranking(where: ColumnElement[bool], span: Period, by: str = "response") -> list[Ranked]:
    """The grids' 三率 over `span`, ranked by `by`."""
    rows = db.session.execute(
        select(Grid.code, Grid.name, *_rate_sums(Ledger), func.sum(Ledger.new).label("new"),
               func.sum(Ledger.resolved).label("resolved"), *_callback_sums(Ledger))
        .join(Grid, Ledger.grid_id == Grid.id).where(where, _in_period(Ledger, span))
        .group_by(Grid.code, Grid.name))
    return _ranked([Ranked(r.code, r.name, rates_of(r), {"new": int(r.new or 0), "resolved": int(r.resolved or 0),
                                                          "callback": callback_rate(r)})
                    for r in rows], by)


def handler_ranking(where: ColumnElement[bool], span: Period, by: str = "response") -> list[Ranked]:
    """The handlers' 三率 over `span` (all their grids in `where` together), ranked by `by`."""
    rows = db.session.execute(
        select(HandlerDay.handler_key, func.max(HandlerDay.name).label("name"), *_rate_sums(HandlerDay),
               func.sum(HandlerDay.accepted).label("accepted"), func.sum(HandlerDay.resolved).label("resolved"),
               *_callback_sums(HandlerDay))
        .where(where, _in_period(HandlerDay, span)).group_by(HandlerDay.handler_key))
    return _ranked([Ranked(r.handler_key, r.name, rates_of(r),
                           {"accepted": int(r.accepted or 0), "resolved": int(r.resolved or 0),
                            "callback": callback_rate(r)})
                    for r in rows], by)


@dataclass(frozen=True)
class TrendDay:
    """One day of the trend: what was filed and resolved, what stayed open, the rates."""

    day: date
    new: int
    resolved: int
    open_at_end: int
    overdue_at_end: int
    rates: dict[str, Rate]


def trend(where: ColumnElement[bool], last: date, days: int = TREND_DAYS) -> list[TrendDay]:
    """Each of the `days` days up to `last`, zeros for a day not compiled."""
    first = last - timedelta(days=days - 1)
    rows = {r.day: r for r in db.session.execute(
        select(Ledger.day, *(func.sum(getattr(Ledger, n)).label(n) for n in ("new", "resolved", *STOCKS)),
               *_rate_sums(Ledger))
        .where(where, Ledger.day >= first, Ledger.day <= last).group_by(Ledger.day))}
    out = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        r = rows.get(day)
        if r is None:
            out.append(TrendDay(day, 0, 0, 0, 0, {name: Rate(0, 0) for name in RATES}))
        else:
            out.append(TrendDay(day, int(r.new or 0), int(r.resolved or 0), int(r.open_at_end or 0),
                                int(r.overdue_at_end or 0), rates_of(r)))
    return out

"""Reading the compiled ledgers: roll-ups over a day, a week or a month, rankings, trends.

Everything here reads the ledger tables, never tickets, so the history's size does
not matter. A street of a thousand grids is 1,000 ledgers and about 3,000 handler
rows a day; a whole street or community (`Whole`) is read from the roll-ups the
compile keeps (services/ledger_rollup.py), one row a day, and the rankings are
ordered and cut by the database, so only the lines shown come back (its dashboard:
well under 300 ms for any view of a month; bench/ledger_bench.py).

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Float, Integer, and_, case, cast, func, or_, select, true

from ticketing.extensions import db
from ticketing.models import CommunityDay, Grid, HandlerDay, Ledger, StreetDay

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

    @property
    def enough(self) -> bool:
        """Whether enough tickets stand behind the rate to show it (the small-sample rule)."""
        return enough(self.den)


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


def _rates_in(values: Mapping[Any, Any]) -> dict[str, Rate]:
    """`rates_of` for a plain dict of a row: a ranking of thousands reads it quicker."""
    return {name: Rate(int(values[f"{name}_num"] or 0), int(values[f"{name}_den"] or 0)) for name in RATES}


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


@dataclass(frozen=True)
class Whole:
    """A whole street or community, or every one of them (`id` None): its figures are
    read from the roll-ups the compile keeps (models/rollups.py), one row a day,
    instead of from its grids' ledgers. They are the same figures."""

    level: str  # "street" or "community"
    id: int | None = None

    @property
    def model(self) -> Any:
        """StreetDay or CommunityDay."""
        return StreetDay if self.level == "street" else CommunityDay

    def where(self) -> ColumnElement[bool]:
        """Its rows in the roll-up table."""
        return true() if self.id is None else getattr(self.model, f"{self.level}_id") == self.id


def _source(where: ColumnElement[bool], whole: Whole | None) -> tuple[Any, ColumnElement[bool]]:
    """The rows to add up: the roll-ups of a whole street or community, else the grid ledgers."""
    return (whole.model, whole.where()) if whole is not None else (Ledger, where)


def rollup(where: ColumnElement[bool], span: Period, whole: Whole | None = None) -> Figures:
    """Add up the ledgers selected by `where` over `span` (see the module's docstring);
    when `where` is all of a street or community, say so with `whole`, and its
    roll-up rows are read instead (the same figures, a row a day)."""
    model, where = _source(where, whole)
    in_span = and_(where, _in_period(model, span))
    ledgers = func.count() if model is Ledger else func.sum(model.ledgers)
    row = db.session.execute(select(
        ledgers.label("ledgers"), *(func.sum(getattr(model, name)).label(name) for name in FLOWS),
        *_rate_sums(model), *_callback_sums(model),
        *(func.sum(getattr(model, name)).label(name)
          for name in ("accept_n", "accept_total_s", "resolve_n", "resolve_total_s", "hold_n", "hold_total_s")),
        func.max(model.accept_p90_s).label("accept_p90_s"), func.max(model.resolve_p90_s).label("resolve_p90_s"),
    ).where(in_span)).one()
    figures = Figures(counts={name: int(getattr(row, name) or 0) for name in (*FLOWS, *CALLBACKS)},
                      rates=rates_of(row),
                      accept_mean_s=_mean(row.accept_total_s, row.accept_n), accept_p90_s=row.accept_p90_s,
                      resolve_mean_s=_mean(row.resolve_total_s, row.resolve_n), resolve_p90_s=row.resolve_p90_s,
                      hold_n=int(row.hold_n or 0), hold_mean_s=_mean(row.hold_total_s, row.hold_n),
                      ledgers=int(row.ledgers or 0))
    last_day = select(func.max(model.day)).where(in_span).scalar_subquery()
    stocks = db.session.execute(select(*(func.sum(getattr(model, name)) for name in STOCKS))
                                .where(where, model.day == last_day)).one()
    figures.counts.update({name: int(value or 0) for name, value in zip(STOCKS, stocks, strict=True)})
    figures.by_channel = breakdown(model.by_channel, in_span)
    figures.by_category = breakdown(model.by_category, in_span)
    return figures


def as_of(where: ColumnElement[bool], day: date, whole: Whole | None = None) -> datetime | None:
    """The oldest compile of the day's ledgers selected: every figure of that day is at
    least that fresh. None when the day has not been compiled."""
    model, where = _source(where, whole)
    return db.session.scalar(select(func.min(model.compiled_at)).where(where, model.day == day))


def breakdown(column: Any, where: ColumnElement[bool]) -> dict[str, int]:
    """Add up a JSON object of counts (by channel, by category) over the rows selected
    (grid ledgers or roll-ups), inside the database: its JSON functions unnest them."""
    postgres = db.session.get_bind().dialect.name == "postgresql"
    pairs = (func.json_each_text if postgres else func.json_each)(column).table_valued("key", "value")
    rows = db.session.execute(select(pairs.c.key, func.sum(cast(pairs.c.value, Integer)))
                              .select_from(column.class_).join(pairs, true()).where(where).group_by(pairs.c.key))
    return {key: int(n) for key, n in sorted(rows, key=lambda kn: (-kn[1], kn[0]))}


@dataclass
class Ranked:
    """One grid's or one handler's line of a ranking."""

    key: str
    name: str
    rates: dict[str, Rate]
    extra: dict[str, Any] = field(default_factory=dict)
    rank: int = 0  # 1 for the best; 0: too few tickets behind the rate ranked by, not ranked


@dataclass
class Ranking:
    """A ranking as a page shows it: the best and the worst, and apart, unranked, the
    units with too few tickets behind the rate ranked by (the small-sample rule)."""

    top: list[Ranked]
    bottom: list[Ranked]  # empty unless the ranking was cut to its two ends
    ranked: int  # how many units were ranked
    unranked: list[Ranked]  # most tickets first; cut like the ranking
    unranked_count: int
    page: int = 0  # with a page of the whole list: its number (from 1), and how many there are
    pages: int = 0

    @property
    def lines(self) -> list[Ranked]:
        """Every line at hand: the ranked ones best first, then the unranked."""
        return [*self.top, *self.bottom, *self.unranked]

    @property
    def cut(self) -> bool:
        """Whether lines were left out between the two ends (the whole list is a link away)."""
        return not self.pages and (bool(self.bottom) or len(self.unranked) < self.unranked_count)


def _order_name(column: Any) -> Any:
    """Names in code-point order, as Python sorts them, whatever the database's locale."""
    return column.collate("C") if db.session.get_bind().dialect.name == "postgresql" else column


def _rank(units: Any, by: str, extra: tuple[str, ...], ends: int | None, page: tuple[int, int] | None) -> Ranking:
    """Rank the aggregated `units` (a subquery with key, name, the rate parts and `extra`)
    inside the database, so that only the lines shown come back.

    Best `by` rate first; ties by the larger denominator, then by name. A unit with
    fewer than MIN_TICKETS behind that rate is not ranked: it follows the ranked ones,
    most tickets first. With `ends`, only the best and the worst `ends` come back (all
    when there are at most twice as many) and the first 2 × `ends` unranked; with
    `page` (number, size), that page of the whole list; with neither, all of it."""
    num, den = units.c[f"{by}_num"], units.c[f"{by}_den"]
    ranked = den >= MIN_TICKETS
    value = case((ranked, cast(num, Float) / den))  # a double, as Python divides: equal fractions tie
    lines = select(units, ranked.label("ranked"), func.row_number().over(order_by=(
        ranked.desc(), value.desc().nulls_last(), den.desc(), _order_name(units.c.name), units.c.key)).label("position"),
        func.sum(case((ranked, 1), else_=0)).over().label("n_ranked"), func.count().over().label("n")).subquery()
    query = select(lines).order_by(lines.c.position)
    c = lines.c
    if page is not None:
        number, size = page
        query = query.where(c.position > (number - 1) * size, c.position <= number * size)
    elif ends is not None:
        query = query.where(or_(c.position <= ends, and_(c.ranked, c.position > c.n_ranked - ends),
                                and_(~c.ranked, c.position <= c.n_ranked + 2 * ends)))
    out = Ranking([], [], 0, [], 0)
    total = 0
    for row in db.session.execute(query).mappings():
        line = Ranked(row["key"], row["name"] or "", _rates_in(row),
                      {name: int(row[name] or 0) for name in extra} | {"callback": callback_rate_in(row)})
        out.ranked, total = int(row["n_ranked"]), int(row["n"])
        if row["ranked"]:
            line.rank = row["position"]
            short = ends is None or line.rank <= ends or out.ranked <= 2 * ends
            (out.top if short else out.bottom).append(line)
        else:
            out.unranked.append(line)
    if total == 0 and page is not None and page[0] > 1:  # past the end: how long the list is, still
        return _rank(units, by, extra, None, (1, page[1]))
    out.unranked_count = total - out.ranked
    if page is not None:
        out.page, out.pages = page[0], max(1, -(-total // page[1]))
    return out


def callback_rate_in(values: Any) -> Rate:
    """`callback_rate` of a mapping."""
    return Rate(int(values["callback_reached"] or 0), int(values["callback_due"] or 0))


def grid_ranking(where: ColumnElement[bool], span: Period, by: str = "response") -> list[Ranked]:
    """The grids' 三率 over `span`, ranked by `by`; those with too few tickets behind it
    after them, unranked (rank 0)."""
    return grids_ranked(where, span, by).lines


def grids_ranked(where: ColumnElement[bool], span: Period, by: str = "response", ends: int | None = None,
                 page: tuple[int, int] | None = None) -> Ranking:
    """The grids' ranking over `span` by `by`, cut to its `ends` or to a page (number,
    size) when asked (see `_rank`)."""
    # Added up by the grid's id, then named: grouping by its code and name costs twice as much.
    sums = (select(Ledger.grid_id, *_rate_sums(Ledger), func.sum(Ledger.new).label("new"),
                   func.sum(Ledger.resolved).label("resolved"), *_callback_sums(Ledger))
            .where(where, _in_period(Ledger, span)).group_by(Ledger.grid_id).subquery())
    units = (select(Grid.code.label("key"), Grid.name.label("name"), *(c for c in sums.c if c.name != "grid_id"))
             .join(Grid, sums.c.grid_id == Grid.id).subquery())
    return _rank(units, by, ("new", "resolved"), ends, page)


def handler_ranking(where: ColumnElement[bool], span: Period, by: str = "response") -> list[Ranked]:
    """The handlers' 三率 over `span` (all their grids in `where` together), ranked by
    `by`; those with too few tickets behind it after them, unranked (rank 0)."""
    return handlers_ranked(where, span, by).lines


def handlers_ranked(where: ColumnElement[bool], span: Period, by: str = "response", ends: int | None = None,
                    page: tuple[int, int] | None = None) -> Ranking:
    """The handlers' ranking over `span` by `by`, cut to its `ends` or to a page (number,
    size) when asked (see `_rank`)."""
    units = (select(HandlerDay.handler_key.label("key"), func.max(HandlerDay.name).label("name"),
                    *_rate_sums(HandlerDay), func.sum(HandlerDay.accepted).label("accepted"),
                    func.sum(HandlerDay.resolved).label("resolved"), *_callback_sums(HandlerDay))
             .where(where, _in_period(HandlerDay, span)).group_by(HandlerDay.handler_key).subquery())
    return _rank(units, by, ("accepted", "resolved"), ends, page)


@dataclass(frozen=True)
class TrendDay:
    """One day of the trend: what was filed and resolved, what stayed open, the rates."""

    day: date
    new: int
    resolved: int
    open_at_end: int
    overdue_at_end: int
    rates: dict[str, Rate]


def trend(where: ColumnElement[bool], last: date, days: int = TREND_DAYS, whole: Whole | None = None) -> list[TrendDay]:
    """Each of the `days` days up to `last`, zeros for a day not compiled."""
    model, where = _source(where, whole)
    first = last - timedelta(days=days - 1)
    rows = {r.day: r for r in db.session.execute(
        select(model.day, *(func.sum(getattr(model, n)).label(n) for n in ("new", "resolved", *STOCKS)),
               *_rate_sums(model))
        .where(where, model.day >= first, model.day <= last).group_by(model.day))}
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

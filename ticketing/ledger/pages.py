"""What the ledger pages show, gathered from the compiled ledgers for one request.

The dashboard reads only the ledger tables (plus the console's 督办 counts) and never
scans tickets. A whole street or community is added up from its roll-ups, one row a
day (models/rollups.py); the rankings are aggregated, ordered and cut to their two
ends by the database, so that only the lines shown come back; the map reads today's
ledger of each grid. "Today" is today's ledgers as the scheduler last compiled them
(every 10 minutes), shown "as of" that time: exact to the compile, and as cheap as
yesterday's.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, and_, select

from ticketing.extensions import db
from ticketing.ledger import charts
from ticketing.models import Category, Community, Grid, HandlerDay, Ledger, Role, Street, User
from ticketing.services import ledger_export, ledger_report, scope, supervision
from ticketing.services.ledger_report import Period

RATE_LABELS: dict[str, Any] = {"response": _l("Response rate"), "resolution": _l("Resolution rate"),
                               "satisfaction": _l("Satisfaction rate")}
PERIOD_LABELS: dict[str, Any] = {"day": _l("Day"), "week": _l("Week"), "month": _l("Month")}
RATE_COLOURS = {"response": "#1d4f91", "resolution": "#1e6b35", "satisfaction": "#b3261e"}
SHORT_LIST = 10  # rankings longer than twice this show the top and the bottom ten
RANKINGS = ("grid", "handler")  # what `?all=` may name
ALL_PAGE = 200  # a whole ranking is shown by pages of this many lines


@dataclass(frozen=True)
class Area:
    """A part of the user's scope the dashboard can be narrowed to."""

    key: str  # "all", "community:CA", "street:ST01"
    label: str
    community_id: int | None = None
    street_id: int | None = None

    def where(self, user: User, model: Any) -> ColumnElement[bool]:
        """The rows of `model` (Ledger, HandlerDay) in this area and the user's scope."""
        clause = scope.place_scope(user, model.grid_id, model.community_id, model.street_id)
        if self.community_id is not None:
            clause = and_(clause, model.community_id == self.community_id)
        if self.street_id is not None:
            clause = and_(clause, model.street_id == self.street_id)
        return clause

    def whole(self, user: User) -> ledger_report.Whole | None:
        """The whole street or community (or every street, for an admin) that `where`
        selects, whose roll-ups then stand for its grid ledgers; None for a set of
        grids (a grid worker's). By the rule of `scope.place_scope`, and the areas of
        `areas_for`, which are inside the user's scope."""
        if self.community_id is not None:
            return ledger_report.Whole("community", self.community_id)
        if self.street_id is not None:
            return ledger_report.Whole("street", self.street_id)
        if user.role == Role.ADMIN:
            return ledger_report.Whole("street")
        if user.role in (Role.SUPERVISOR, Role.DISPATCHER):
            if user.community_id is not None:
                return ledger_report.Whole("community", user.community_id)
            if user.street_id is not None:
                return ledger_report.Whole("street", user.street_id)
        return None


def areas_for(user: User) -> list[Area]:
    """Everything in scope first, then each street and community in it."""
    if user.role == Role.GRID_WORKER:
        return [Area("all", str(_l("My grids")))]
    if user.role != Role.ADMIN and user.community_id is not None:
        assert user.community is not None
        return [Area("all", user.community.name)]
    streets = db.session.scalars(select(Street).order_by(Street.code)).all() if user.role == Role.ADMIN else (
        [user.street] if user.street is not None else [])
    out = [Area("all", str(_l("Everything")) if user.role == Role.ADMIN else streets[0].name if streets else "")]
    for street in streets:
        if user.role == Role.ADMIN and len(streets) > 1:
            out.append(Area(f"street:{street.code}", street.name, street_id=street.id))
        for community in db.session.scalars(select(Community).where(Community.street_id == street.id)
                                            .order_by(Community.code)):
            out.append(Area(f"community:{community.code}", community.name, community_id=community.id))
    return out


def duration_label(seconds: int | None) -> str:
    """A time span in its two largest units: 45 min, 3 h 20 min, 2 d 5 h; "—" for none."""
    if seconds is None:
        return "—"
    minutes = round(seconds / 60)
    if minutes < 60:
        return _("%(m)d min", m=minutes)
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return _("%(h)d h %(m)d min", h=hours, m=minutes) if minutes else _("%(h)d h", h=hours)
    days, hours = divmod(hours, 24)
    return _("%(d)d d %(h)d h", d=days, h=hours) if hours else _("%(d)d d", d=days)


def chosen(options: list[Area], key: str | None) -> Area:
    """The area asked for, or the first (the whole scope)."""
    return next((a for a in options if a.key == key), options[0])


class _GridColumns:
    """Grid's columns under the names `Area.where` expects of a per-grid row."""

    grid_id = Grid.id
    community_id = Grid.community_id
    street_id = Community.street_id


def grids_in(user: User, area: Area) -> list[Any]:
    """The grids of the area the user may see, in code order: what the map draws of
    each (id, code, name, boundary, community_name) as plain rows, not ORM objects,
    since a street may have a thousand."""
    query = (select(Grid.id, Grid.code, Grid.name, Grid.boundary, Community.name.label("community_name"))
             .join(Community, Grid.community_id == Community.id)
             .where(area.where(user, _GridColumns)).order_by(Grid.code))
    return list(db.session.execute(query))


def grid_in_scope(user: User, code: str) -> Grid | None:
    """The grid with this code if the user may read its ledgers."""
    return db.session.scalar(select(Grid).join(Community, Grid.community_id == Community.id).where(
        Grid.code == code, Area("all", "").where(user, _GridColumns)))


@dataclass
class Dashboard:
    """Everything the dashboard shows."""

    area: Area
    areas: list[Area]
    span: Period
    by: str
    today: date
    as_of: datetime | None
    today_figures: ledger_report.Figures
    figures: ledger_report.Figures
    grid_map: charts.GridMap
    grids: ledger_report.Ranking
    handlers: ledger_report.Ranking
    trend: list[ledger_report.TrendDay]
    counts_chart: charts.LineChart
    rates_chart: charts.LineChart
    supervision: supervision.SupervisionPage | None

    @property
    def yesterday(self) -> date:
        """The day before today."""
        return self.today - timedelta(days=1)


def load_dashboard(user: User, area: Area, areas: list[Area], span: Period, by: str, today: date,
                   everything: str = "", page: int = 1) -> Dashboard:
    """Gather the dashboard of `area` for `span` (rankings and roll-up) and today.

    `everything` names the ranking shown whole ("grid", "handler"; any other
    non-empty value: both), `page` by `page` of ALL_PAGE lines; the others show their
    two ends."""
    def cut(kind: str) -> dict[str, Any]:
        if everything == kind or (everything and everything not in RANKINGS):
            return {"page": (max(page, 1), ALL_PAGE)}
        return {"ends": SHORT_LIST}

    ledgers, handlers = area.where(user, Ledger), area.where(user, HandlerDay)
    whole = area.whole(user)
    todays = {row.grid_id: row for row in db.session.execute(
        select(Ledger.grid_id, Ledger.open_at_end, Ledger.overdue_at_end).where(ledgers, Ledger.day == today))}
    # The oldest compile of the area's grids: every figure shown is at least that fresh.
    as_of = ledger_report.as_of(ledgers, today, whole)
    trend_end = min(span.last, today - timedelta(days=1))
    points = ledger_report.trend(ledgers, trend_end, whole=whole)
    days = [p.day for p in points]
    counts_chart = charts.line_chart(days, [
        charts.Series(str(_l("Filed")), "#1d4f91", [p.new for p in points]),
        charts.Series(str(_l("Resolved")), "#1e6b35", [p.resolved for p in points]),
        charts.Series(str(_l("Overdue at day's end")), "#b3261e", [p.overdue_at_end for p in points], dashed=True)])
    rates_chart = charts.line_chart(days, [
        charts.Series(str(RATE_LABELS[name]), RATE_COLOURS[name],
                      [p.rates[name].value if p.rates[name].enough else None for p in points])
        for name in ledger_report.RATES], top=1, percent=True)
    grid_map = charts.grid_map(grids_in(user, area), todays, _("open %(open)d, overdue %(overdue)d"),
                               _("no ledger yet"))
    watch = None
    if user.has_role(Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN):
        watch = supervision.load_supervision(user, supervision.default_levels(user), 1)
    return Dashboard(
        area=area, areas=areas, span=span, by=by, today=today, as_of=as_of,
        today_figures=ledger_report.rollup(ledgers, ledger_report.period("day", today), whole),
        figures=ledger_report.rollup(ledgers, span, whole),
        grid_map=grid_map,
        grids=ledger_report.grids_ranked(ledgers, span, by, **cut("grid")),
        handlers=ledger_report.handlers_ranked(handlers, span, by, **cut("handler")),
        trend=points, counts_chart=counts_chart, rates_chart=rates_chart, supervision=watch)


@dataclass
class LedgerPage:
    """One grid's day: its ledger (None when not compiled), lines, handlers, neighbours."""

    grid: Grid
    day: date
    ledger: Ledger | None
    lines: list[Any]
    handlers: list[HandlerDay]


def load_ledger_page(grid: Grid, day: date) -> LedgerPage:
    """The grid's ledger of `day` with its lines (tickets loaded with them) and handlers."""
    row = db.session.scalar(select(Ledger).where(Ledger.grid_id == grid.id, Ledger.day == day))
    lines = ledger_export.lines_of(Ledger.grid_id == grid.id, day) if row else []
    handlers = list(db.session.scalars(select(HandlerDay).where(HandlerDay.grid_id == grid.id, HandlerDay.day == day)
                                       .order_by(HandlerDay.name)))
    return LedgerPage(grid, day, row, lines, handlers)


def categories_by_code() -> dict[str, Category]:
    """The categories by code, for the breakdowns kept by code."""
    return {c.code: c for c in db.session.scalars(select(Category))}

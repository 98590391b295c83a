"""The supervisors' morning brief (晨报): their community or street on one page.

`compose(user, day, now, calendar)` gathers, for what the user sees (services/scope.py):

- yesterday's ledger in a few lines: new, resolved, the 三率 each with its n
  (`ledger_report.rollup` of the compiled ledgers of `day - 1`);
- the tickets that will breach later today (the deadline they work against falls
  before local midnight), those already overdue, those on the 督办 lists
  (services/supervision.py), and the 回访 due by tonight (services/callbacks.py);
- new or growing recurring problems (services/hotspots.py) and governance tasks past
  their deadline (services/governance.py);
- 红/黄/绿 per grid by the rules of services/brief_rules.py.

It stays cheap on a street of a thousand grids and millions of tickets: the ledger
part reads compiled ledgers, never the history; the live part counts open tickets per
grid in the database through the deadline and 督办 indexes; every list is cut at
LIST_MAX lines and the rest counted ("… and N more"). A rate is shown only with at
least `ledger_report.MIN_TICKETS` tickets behind it ("样本少" otherwise).

Delivery (`send`, `morning`) is in services/brief_send.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select

from ticketing.extensions import db
from ticketing.models import (
    CallbackState,
    CallbackTask,
    Category,
    Community,
    Grid,
    Ledger,
    Role,
    Street,
    Ticket,
    User,
)
from ticketing.services import callbacks, governance, hotspots, ledger_report, scope, supervision
from ticketing.services.brief_rules import COLOURS, RATE_DAYS, GridFigures, judge
from ticketing.services.ledger_report import RATES, Figures, Rate
from ticketing.services.sweep import PHASES
from ticketing.services.ticket_lists import current_deadline
from ticketing.services.workdays import DAY, WorkCalendar

LIST_MAX = 5  # lines of each list; the rest are counted
GRID_LINES = 20  # red and yellow grids listed on the page, each colour


@dataclass(frozen=True)
class TicketLine:
    """One ticket (or 回访) of a list: no personal data, only what to act on."""

    number: str
    category_id: int
    place: str  # community · grid, or the community when the ticket has no grid
    deadline: datetime | None
    level: int = 0  # the 督办 list's rung (supervision.LEVEL_LABELS)
    reason: str = ""  # a 回访's reason (labels.CALLBACK_REASON_LABELS)


@dataclass
class Listing:
    """The first lines of a list and how many it holds in all."""

    total: int
    lines: list[Any] = field(default_factory=list)

    @property
    def more(self) -> int:
        """How many are not shown ("… and N more")."""
        return max(0, self.total - len(self.lines))


@dataclass
class Brief:
    """One supervisor's morning brief."""

    day: date
    now: datetime
    scope_name: str
    yesterday: Figures
    due_today: Listing
    overdue: Listing
    supervised: Listing
    callbacks: Listing  # open 回访 due by tonight, the late ones included
    callbacks_late: int
    hotspots: Listing
    overdue_tasks: Listing
    grids: list[GridFigures]  # every grid in scope, worst first

    @property
    def yesterday_day(self) -> date:
        """The day whose ledger the brief reports."""
        return self.day - DAY

    @property
    def compiled(self) -> bool:
        """Whether yesterday's ledgers were compiled (a brief still goes out without them)."""
        return self.yesterday.ledgers > 0

    def rate_shown(self, name: str) -> bool:
        """The small-sample rule: yesterday's rate is shown only with enough tickets behind it."""
        return ledger_report.enough(self.yesterday.rates[name].den)

    @property
    def colour_counts(self) -> dict[str, int]:
        """How many grids are red, yellow and green."""
        counts = dict.fromkeys(COLOURS, 0)
        for grid in self.grids:
            counts[grid.colour] += 1
        return counts

    def grids_of(self, colour: str, limit: int = GRID_LINES) -> Listing:
        """The grids of one colour, worst first, cut at `limit`."""
        found = [grid for grid in self.grids if grid.colour == colour]
        return Listing(len(found), found[:limit])


# --- the adapters to the other parts of issue 17 ----------------------------------------


def recurring_problems(user: User, day: date) -> list[Any]:
    """The recurring problems (高频诉求) stored for `day` in the user's scope, most
    significant first; only the new or growing ones (the brief lists no others), asked of
    the database as plain rows: `hotspots.new_or_growing(user, day)`."""
    return list(hotspots.new_or_growing(user, day))


def tasks_past_deadline(user: User, now: datetime) -> list[Any]:
    """Open governance tasks (治理任务) past their deadline in the user's scope:
    `governance.overdue_tasks(user, now)`."""
    return governance.overdue_tasks(user, now)


# --- composing ---------------------------------------------------------------------------


def scope_name(user: User) -> str:
    """The community or street the brief covers (everything for an admin)."""
    if user.community_id is not None:
        community = db.session.get(Community, user.community_id)
        return community.name if community is not None else ""
    if user.street_id is not None:
        street = db.session.get(Street, user.street_id)
        return street.name if street is not None else ""
    return ""


def as_community_supervisor(user: User, community: Community) -> User:
    """A stand-in for the community's supervisor, never saved: a street supervisor's
    (or an admin's) view of one community of theirs reads exactly what that
    community's supervisor reads, through the same scope rules."""
    return User(role=Role.SUPERVISOR, street_id=community.street_id, community_id=community.id,
                locale=user.locale, username="", display_name="", password_hash="")


def community_for(user: User, code: str) -> Community | None:
    """The community with this code if the user's brief covers it (admins: any)."""
    where: ColumnElement[bool] = Community.code == code
    if user.role != Role.ADMIN:
        if user.community_id is not None:
            where = and_(where, Community.id == user.community_id)
        elif user.street_id is not None:
            where = and_(where, Community.street_id == user.street_id)
        else:
            return None
    return db.session.scalar(select(Community).where(where))


def communities_for(user: User) -> list[Community]:
    """The communities a street's supervisor (or an admin) may narrow the brief to."""
    if user.role == Role.ADMIN:
        return list(db.session.scalars(select(Community).order_by(Community.code)))
    if user.community_id is None and user.street_id is not None:
        return list(db.session.scalars(
            select(Community).where(Community.street_id == user.street_id).order_by(Community.code)))
    return []


def categories_of(brief: Brief) -> dict[int, Category]:
    """The categories the brief's lines name, by id."""
    ids = {line.category_id for listing in (brief.due_today, brief.overdue, brief.supervised, brief.callbacks)
           for line in listing.lines}
    ids |= {getattr(problem, "category_id", None) for problem in brief.hotspots.lines} - {None}
    if not ids:
        return {}
    return {c.id: c for c in db.session.scalars(select(Category).where(Category.id.in_(ids)))}


def clock_ends(lower: datetime | None, upper: datetime) -> ColumnElement[bool]:
    """Open tickets whose running clock (accept-by while dispatched, resolve-by while
    accepted) ends in [lower, upper). On hold the clock is paused: never late, as in the sweep."""
    return or_(*(and_(Ticket.status == phase.status, phase.due < upper,
                      *([phase.due >= lower] if lower is not None else []))
                 for phase in PHASES))


def grids_in_scope(user: User) -> dict[int, GridFigures]:
    """Every grid the user sees, by id, with its names."""
    rows = db.session.execute(
        select(Grid.id, Grid.code, Grid.name, Community.name)
        .join(Community, Grid.community_id == Community.id)
        .where(scope.place_scope(user, Grid.id, Grid.community_id, Community.street_id)).order_by(Grid.code))
    return {grid_id: GridFigures(grid_id, code, name, community) for grid_id, code, name, community in rows}


def grid_rates(user: User, day: date) -> dict[int, dict[str, Rate]]:
    """Each grid's 三率 over the RATE_DAYS compiled days before `day`."""
    sums = [func.sum(getattr(Ledger, f"{name}_{part}")).label(f"{name}_{part}")
            for name in RATES for part in ("num", "den")]
    rows = db.session.execute(
        select(Ledger.grid_id, *sums)
        .where(scope.place_scope(user, Ledger.grid_id, Ledger.community_id, Ledger.street_id),
               Ledger.day >= day - timedelta(days=RATE_DAYS), Ledger.day < day)
        .group_by(Ledger.grid_id))
    return {row.grid_id: ledger_report.rates_of(row) for row in rows}


def counts_by_grid(where: ColumnElement[bool]) -> dict[int | None, int]:
    """How many tickets match, per grid (None: placed in a community without a grid)."""
    return {grid_id: int(n) for grid_id, n in db.session.execute(
        select(Ticket.grid_id, func.count()).where(where).group_by(Ticket.grid_id))}


class Lines:
    """Reads the first lines of the brief's ticket lists, naming their places."""

    def __init__(self, grids: dict[int, GridFigures]) -> None:
        self.grids = grids
        self.communities: dict[int, str] = {}

    def _place(self, grid_id: int | None, community_id: int) -> str:
        """"东怡社区 · 第一网格", or the community alone for a ticket without a grid."""
        grid = self.grids.get(grid_id) if grid_id is not None else None
        if grid is not None:
            return f"{grid.community} · {grid.name}"
        if community_id not in self.communities:
            community = db.session.get(Community, community_id)
            self.communities[community_id] = community.name if community is not None else ""
        return self.communities[community_id]

    def tickets(self, where: ColumnElement[bool]) -> list[TicketLine]:
        """The first tickets matching, the most pressing deadline first (none last)."""
        deadline = current_deadline()
        rows = db.session.execute(
            select(Ticket.number, Ticket.category_id, Ticket.grid_id, Ticket.community_id, deadline,
                   Ticket.escalation_level)
            .where(where).order_by(deadline.is_(None), deadline, Ticket.id).limit(LIST_MAX))
        return [TicketLine(number, category_id, self._place(grid_id, community_id), due, level)
                for number, category_id, grid_id, community_id, due, level in rows]

    def callbacks(self, where: ColumnElement[bool]) -> list[TicketLine]:
        """The first open 回访, soonest due first."""
        rows = db.session.execute(
            select(Ticket.number, Ticket.category_id, Ticket.grid_id, Ticket.community_id, CallbackTask.due_at,
                   CallbackTask.reason)
            .join(Ticket, CallbackTask.ticket_id == Ticket.id)
            .where(where).order_by(CallbackTask.due_at, CallbackTask.id).limit(LIST_MAX))
        return [TicketLine(number, category_id, self._place(grid_id, community_id), due, reason=reason)
                for number, category_id, grid_id, community_id, due, reason in rows]


def ticket_listing(lines: Lines, where: ColumnElement[bool], per_grid: dict[int | None, int]) -> Listing:
    """A list of tickets whose per-grid counts are already known."""
    total = sum(per_grid.values())
    return Listing(total, lines.tickets(where) if total else [])


def callback_listing(user: User, lines: Lines, now: datetime, end_of_day: datetime) -> tuple[Listing, int]:
    """The open 回访 due by tonight (the late ones included), and how many are late."""
    where = and_(CallbackTask.state == CallbackState.OPEN, CallbackTask.due_at < end_of_day,
                 callbacks.task_scope(user))
    total, late = db.session.execute(
        select(func.count(), func.coalesce(func.sum(case((CallbackTask.due_at < now, 1), else_=0)), 0))
        .select_from(CallbackTask).join(Ticket, CallbackTask.ticket_id == Ticket.id).where(where)).one()
    return Listing(int(total), lines.callbacks(where) if total else []), int(late)


def compose(user: User, day: date, now: datetime, calendar: WorkCalendar) -> Brief:
    """The brief of the user's scope for the local `day`, as things stand at `now`."""
    end_of_day = datetime.combine(day + DAY, time(), calendar.tz)
    in_scope = scope.ticket_scope(user)
    grids = grids_in_scope(user)
    lines = Lines(grids)
    wheres = {
        "due_today": and_(in_scope, clock_ends(now, end_of_day)),
        "overdue": and_(in_scope, clock_ends(None, now)),
        "supervised": and_(in_scope, supervision.supervised_condition()),
    }
    listings: dict[str, Listing] = {}
    for measure, where in wheres.items():
        per_grid = counts_by_grid(where)
        for grid_id, n in per_grid.items():
            if grid_id in grids:
                grids[grid_id].counts[measure] = n
        listings[measure] = ticket_listing(lines, where, per_grid)
    for grid_id, rates in grid_rates(user, day).items():
        if grid_id in grids:
            grids[grid_id].rates = rates
    callback_list, late = callback_listing(user, lines, now, end_of_day)
    problems = [h for h in recurring_problems(user, day) if h.is_new or h.trend > 0]
    tasks = tasks_past_deadline(user, now)
    judged = sorted((judge(grid) for grid in grids.values()), key=lambda g: (g.severity, g.code))
    return Brief(
        day=day, now=now, scope_name=scope_name(user),
        yesterday=ledger_report.rollup(
            scope.place_scope(user, Ledger.grid_id, Ledger.community_id, Ledger.street_id),
            ledger_report.period("day", day - DAY)),
        due_today=listings["due_today"], overdue=listings["overdue"], supervised=listings["supervised"],
        callbacks=callback_list, callbacks_late=late,
        hotspots=Listing(len(problems), problems[:LIST_MAX]), overdue_tasks=Listing(len(tasks), tasks[:LIST_MAX]),
        grids=judged,
    )

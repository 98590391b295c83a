"""The daily ledger (台账): each grid's day, compiled from tickets and events by SQL.

A day is the local (Asia/Shanghai) day, [00:00, 24:00), turned into UTC bounds.
Per grid, over that window:

- new: tickets filed, also by channel and by category code;
- dispatched, accepted, resolved, closed (rated or closed without rating),
  escalated, reopened: tickets with such an event;
- by status: the tickets touched (filed, or any event) by their state at the end of
  the day; open at end: all the grid's tickets open then, whenever filed; overdue at
  end: those of them past the deadline that applied (accept-by while dispatched,
  resolve-by while accepted; on hold the clock is paused);
- 响应率: acceptances within the accept-by / acceptances due that day (accepted, or
  expired unaccepted); 解决率: tickets closed that day and never reopened / closed
  that day; 满意率: rated satisfied or basically satisfied / rated that day, of the
  residents' tickets (a grid worker's own patrol report is nobody's to rate) — a rating
  the resident gave on a 回访 call (`callback_rate`) is the resident's own and counts
  alike, and closes the ticket when it was still resolved;
- patrol: the grid workers' own reports filed and resolved that day, apart;
- holds: the tickets on hold at the end of the day, and the time on hold of the
  tickets resolved that day that were ever held (count and sum);
- 回访 (services/callbacks.py): the callback tasks due that day, those finished (the
  resident reached, or given up after the last try) by their deadline, and those whose
  resident was reached; 有效回访率 = reached / due. A grid's tasks are its tickets';
- mean and 90th percentile (nearest rank) of dispatch → accept and filing → resolve,
  over the acceptances and resolutions of the day;
- one line per ticket touched: its state at the end of the day, and its handler,
  deadline, result and rating as they are when compiled;
- each handler's share of the 三率 (`HandlerDay`), so handlers are ranked without
  reading tickets;
- the day's roll-up of each street and community of the grids compiled
  (services/ledger_rollup.py), re-added from their grid ledgers in the same
  transaction, so a dashboard reads one row a day for a whole street.

Today can be compiled too (the scheduler does so every 10 minutes): it is then the
day so far, and "overdue at the end" means overdue at the moment of compiling.

The state at the end of the day is the `from_status` of the ticket's first event
after it, or its current status when it has none, so compiling yesterday reads
today's events, not the history. Nothing is loaded ticket by ticket: the
aggregates come back as a few numbers per grid and the lines are written by one
INSERT … SELECT. Compiling a day again replaces its rows (upsert), so late changes
are folded in by recompiling.

What a compile reads follows the day, not the history: the day's tickets are found
through two indexes (filed that day, events that day) and fetched by key, the
tickets open at the end through the status index and the events since. On a
street of 1,000 grids with 70,000 tickets filed that day it takes 4.4–7.2 s whether
5 million tickets came before or 1 million (bench/ledger_bench.py).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, cast

from sqlalchemy import (
    CTE,
    ColumnElement,
    and_,
    any_,
    case,
    delete,
    distinct,
    func,
    literal,
    or_,
    select,
    text,
    union,
)
from sqlalchemy.dialects import postgresql, sqlite

from ticketing.extensions import db
from ticketing.models import (
    OPEN_STATUSES,
    CallbackState,
    CallbackTask,
    Category,
    Channel,
    Community,
    Grid,
    HandlerDay,
    Ledger,
    LedgerLine,
    PropertyCompany,
    Rating,
    Status,
    Team,
    Ticket,
    TicketEvent,
    User,
)
from ticketing.services import ledger_rollup

# Event action → the count it adds to.
ACTION_COUNTS = {
    "dispatch": "dispatched", "accept": "accepted", "resolve": "resolved", "rate": "closed",
    "auto_close": "closed", "escalate": "escalated", "reopen": "reopened", "redo": "reopened",
}
CLOSING = ("rate", "auto_close")
# The resident's own rating: online, or given on a 回访 call (services/callbacks.py).
RATINGS = ("rate", "callback_rate")
CALLBACK_FIGURES = ("callback_due", "callback_in_time", "callback_reached")
PATROL_AND_HOLDS = ("patrol_new", "patrol_resolved", "on_hold_at_end", "hold_n", "hold_total_s")
SATISFIED = (Rating.SATISFIED, Rating.BASIC)


@dataclass(frozen=True)
class Window:
    """A local day and its bounds in UTC; `cutoff` is when deadlines are judged: the
    day's end, or the moment of compiling for the day still under way."""

    day: date
    start: datetime
    end: datetime
    cutoff: datetime


def window(day: date, tz: tzinfo, now: datetime | None = None) -> Window:
    """The UTC bounds of the local day `day`, as seen at `now`."""
    start = datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC)
    return Window(day, start, end, min(end, now) if now is not None else end)


def compile_day(day: date, tz: tzinfo, now: datetime, grid_codes: Iterable[str] | None = None) -> int:
    """Compile (again) the ledgers of `day` for every grid, or those named; commits.
    Returns how many grids were compiled."""
    w = window(day, tz, now)
    query = select(Grid.id, Grid.community_id, Community.street_id).join(Community, Grid.community_id == Community.id)
    if grid_codes is not None:
        query = query.where(Grid.code.in_(list(grid_codes)))
    grids = db.session.execute(query.order_by(Grid.id)).all()
    if not grids:
        return 0
    rows = {grid_id: _blank(grid_id, community_id, street_id, w.day, now)
            for grid_id, community_id, street_id in grids}
    # Every grid: no list of ids to test each ticket against.
    in_grids = Ticket.grid_id.in_(list(rows)) if grid_codes is not None else Ticket.grid_id.is_not(None)
    _plan_for_a_day()
    # The places the grids' ledgers of the day were kept under until now (a grid may
    # have moved): their roll-ups are added up again too.
    before = db.session.execute(select(Ledger.community_id, Ledger.street_id).distinct()
                                .where(Ledger.day == w.day, Ledger.grid_id.in_(list(rows)))).all()
    _count_new(rows, w, in_grids)
    _count_actions(rows, w, in_grids)
    _count_open_at_end(rows, w, in_grids)
    _count_rates(rows, w, in_grids)
    _count_times(rows, w, in_grids)
    _count_callbacks(rows, w, in_grids)
    _count_patrol_and_holds(rows, w, in_grids)
    _upsert(list(rows.values()))  # first, so the lines have their ledgers' ids
    _write_lines(w, in_grids, list(rows))
    _count_states(rows, w)
    _upsert(list(rows.values()))  # again, with the counts by state read from the lines
    _write_handlers(w, grids, in_grids)
    _write_handler_callbacks(w, grids, in_grids)
    # Their streets' and communities' roll-ups, in the same transaction: always their sum.
    places = [(c, s) for _grid, c, s in grids] + [tuple(p) for p in before]
    ledger_rollup.write(w.day, (s for _c, s in places), (c for c, _s in places))
    db.session.commit()
    return len(rows)


def _plan_for_a_day() -> None:
    """On PostgreSQL, for this transaction: plan for reading one day's rows by index.

    No JIT: compiling a plan to machine code costs more than it saves on aggregates
    over a day. Random reads priced as on an SSD or from the cache (the default
    prices a spinning disk): otherwise the planner prefers reading every ticket ever
    filed to fetching the day's hundred thousand by id, and the compile would take
    longer as the history grows.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL jit = off"))
        db.session.execute(text("SET LOCAL random_page_cost = 1.1"))


def _blank(grid_id: int, community_id: int, street_id: int, day: date, now: datetime) -> dict[str, Any]:
    row: dict[str, Any] = {"grid_id": grid_id, "community_id": community_id, "street_id": street_id, "day": day,
                               "compiled_at": now, "by_channel": {}, "by_category": {}, "by_status": {},
                               "accept_mean_s": None, "accept_p90_s": None, "resolve_mean_s": None, "resolve_p90_s": None}
    for name in ("new", "accept_n", "accept_total_s", "resolve_n", "resolve_total_s", *sorted(set(ACTION_COUNTS.values())), "open_at_end", "overdue_at_end",
                 "response_num", "response_den", "resolution_num", "resolution_den",
                 "satisfaction_num", "satisfaction_den", *PATROL_AND_HOLDS):
        row[name] = 0
    return row


def _in_window(column: Any, w: Window) -> ColumnElement[bool]:
    return and_(column >= w.start, column < w.end)


def _day_events(w: Window, in_grids: ColumnElement[bool]) -> Any:
    """The day's events of the grids' tickets, joined to their tickets."""
    return (select().select_from(TicketEvent).join(Ticket, TicketEvent.ticket_id == Ticket.id)
            .where(_in_window(TicketEvent.at, w), in_grids))


def _count_new(rows: dict[int, dict[str, Any]], w: Window, in_grids: ColumnElement[bool]) -> None:
    filed = and_(_in_window(Ticket.created_at, w), in_grids)
    for grid_id, channel, n in db.session.execute(
            select(Ticket.grid_id, Ticket.channel, func.count()).where(filed).group_by(Ticket.grid_id, Ticket.channel)):
        rows[grid_id]["by_channel"][channel] = n
        rows[grid_id]["new"] += n
    for grid_id, code, n in db.session.execute(
            select(Ticket.grid_id, Category.code, func.count()).join(Category, Ticket.category_id == Category.id)
            .where(filed).group_by(Ticket.grid_id, Category.code)):
        rows[grid_id]["by_category"][code] = n


def _closed_on_a_call() -> ColumnElement[bool]:
    """A rating given on a 回访 call that closed a resolved ticket (of a closed one, it only rates)."""
    return and_(TicketEvent.action == "callback_rate", TicketEvent.from_status == Status.RESOLVED)


def _closes() -> ColumnElement[bool]:
    """An event that closed the ticket: rated, closed without rating, or rated on a call."""
    return or_(TicketEvent.action.in_(CLOSING), _closed_on_a_call())


def _count_actions(rows: dict[int, dict[str, Any]], w: Window, in_grids: ColumnElement[bool]) -> None:
    bucket = case(*((TicketEvent.action == action, literal(name)) for action, name in ACTION_COUNTS.items()),
                  (_closed_on_a_call(), literal("closed")))
    query = (_day_events(w, in_grids).add_columns(Ticket.grid_id, bucket.label("bucket"),
                                                  func.count(distinct(TicketEvent.ticket_id)))
             .where(or_(TicketEvent.action.in_(list(ACTION_COUNTS)), _closed_on_a_call()))
             .group_by(Ticket.grid_id, bucket))
    for grid_id, name, n in db.session.execute(query):
        rows[grid_id][name] = n


def state_at_end(w: Window) -> ColumnElement[str]:
    """A ticket's state when the day ended: where its first later event found it, or where it is."""
    first_later = (select(TicketEvent.from_status)
                   .where(TicketEvent.ticket_id == Ticket.id, TicketEvent.at >= w.end)
                   .order_by(TicketEvent.at, TicketEvent.id).limit(1).scalar_subquery())
    return func.coalesce(first_later, Ticket.status)


def _at_end(w: Window, where: ColumnElement[bool]) -> CTE:
    """The tickets selected by `where`, each with its state at the end of the day and
    what the ledger shows of it. A materialized CTE, so the state is looked up once
    per ticket, not again for each expression that uses it."""
    return (select(Ticket.id, Ticket.grid_id, state_at_end(w).label("state"), Ticket.accept_due_at,
                   Ticket.resolve_due_at, Ticket.assignee_id, Ticket.team_id, Ticket.company_id,
                   Ticket.result_note, Ticket.rating)
            .where(where).cte("at_end").prefix_with("MATERIALIZED"))


def _deadline(t: Any) -> ColumnElement[Any]:
    """The deadline that applied in the state `t.state` (`t` from `_at_end`): accept-by
    while dispatched, resolve-by while accepted or on hold (on hold its clock is
    paused, so it is shown but not overdue)."""
    return case((t.state == Status.DISPATCHED, t.accept_due_at),
                (t.state.in_([Status.ACCEPTED, Status.ON_HOLD]), t.resolve_due_at))


def _overdue(t: Any, w: Window) -> ColumnElement[bool]:
    return or_(and_(t.state == Status.DISPATCHED, t.accept_due_at < w.cutoff),
               and_(t.state == Status.ACCEPTED, t.resolve_due_at < w.cutoff))


def _touched(w: Window, in_grids: ColumnElement[bool]) -> ColumnElement[bool]:
    """Filed that day, or with an event that day. A union of two index ranges, not an
    OR, so the database reads the day's tickets and events, not every ticket."""
    touched = union(select(Ticket.id).where(_in_window(Ticket.created_at, w)),
                    select(TicketEvent.ticket_id).where(_in_window(TicketEvent.at, w)))
    return and_(in_grids, _ticket_id_in(touched))


def _ticket_id_in(ids: Any) -> ColumnElement[bool]:
    """`Ticket.id IN (ids)`. On PostgreSQL the ids are gathered into an array first and
    the tickets fetched by key: asked for a join, the planner weighs its guess of the
    number of ids against reading every ticket, and over a history of millions it
    reads them all (seconds, growing with the history)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return Ticket.id == any_(func.array(ids.scalar_subquery()))
    return Ticket.id.in_(ids)


def _count_states(rows: dict[int, dict[str, Any]], w: Window) -> None:
    """The tickets touched by their state at the end of the day, counted from the lines
    just written (each line has that state), so the touched tickets are read once."""
    for grid_id, status, n in db.session.execute(
            select(Ledger.grid_id, LedgerLine.status, func.count())
            .join(Ledger, LedgerLine.ledger_id == Ledger.id)
            .where(Ledger.day == w.day, Ledger.grid_id.in_(list(rows)))
            .group_by(Ledger.grid_id, LedgerLine.status)):
        rows[grid_id]["by_status"][status] = n


def _count_open_at_end(rows: dict[int, dict[str, Any]], w: Window, in_grids: ColumnElement[bool]) -> None:
    """All the grid's tickets open at the end of the day, and those past their deadline:
    open now, or changed since (its first later event says how it was)."""
    changed_since = union(select(Ticket.id).where(Ticket.status.in_(list(OPEN_STATUSES))),
                          select(TicketEvent.ticket_id).where(TicketEvent.at >= w.end))
    t = _at_end(w, and_(in_grids, Ticket.created_at < w.end, _ticket_id_in(changed_since))).c
    for grid_id, open_n, overdue_n, held_n in db.session.execute(
            select(t.grid_id, func.count(), func.sum(case((_overdue(t, w), 1), else_=0)),
                   func.sum(case((t.state == Status.ON_HOLD, 1), else_=0)))
            .where(t.state.in_(list(OPEN_STATUSES))).group_by(t.grid_id)):
        rows[grid_id]["open_at_end"] = open_n
        rows[grid_id]["overdue_at_end"] = int(overdue_n or 0)
        rows[grid_id]["on_hold_at_end"] = int(held_n or 0)


def _accepted_in_time() -> ColumnElement[bool]:
    """An acceptance by the accept-by (or with none set)."""
    return and_(TicketEvent.action == "accept",
                or_(Ticket.accept_due_at.is_(None), TicketEvent.at <= Ticket.accept_due_at))


def _count_rates(rows: dict[int, dict[str, Any]], w: Window, in_grids: ColumnElement[bool]) -> None:
    events = _day_events(w, in_grids)
    for grid_id, num, den in db.session.execute(
            events.add_columns(Ticket.grid_id, func.sum(case((_accepted_in_time(), 1), else_=0)), func.count())
            .where(TicketEvent.action.in_(["accept", "expire"])).group_by(Ticket.grid_id)):
        rows[grid_id].update(response_num=int(num or 0), response_den=den)
    never_reopened = case((Ticket.reopen_count == 0, TicketEvent.ticket_id))
    for grid_id, num, den in db.session.execute(
            events.add_columns(Ticket.grid_id, func.count(distinct(never_reopened)),
                               func.count(distinct(TicketEvent.ticket_id)))
            .where(_closes()).group_by(Ticket.grid_id)):
        rows[grid_id].update(resolution_num=num, resolution_den=den)
    for grid_id, num, den in db.session.execute(
            events.add_columns(Ticket.grid_id, func.sum(case((Ticket.rating.in_(SATISFIED), 1), else_=0)),
                               func.count())
            .where(TicketEvent.action.in_(RATINGS), _residents()).group_by(Ticket.grid_id)):
        rows[grid_id].update(satisfaction_num=int(num or 0), satisfaction_den=den)


def _due_callbacks(w: Window, in_grids: ColumnElement[bool]) -> Any:
    """The grids' 回访 tasks due that day, with their tickets, and what each adds up to."""
    in_time = and_(CallbackTask.state != CallbackState.OPEN, CallbackTask.finished_at <= CallbackTask.due_at)
    return (select().select_from(CallbackTask).join(Ticket, CallbackTask.ticket_id == Ticket.id)
            .where(_in_window(CallbackTask.due_at, w), in_grids)
            .add_columns(func.count().label("callback_due"),
                         func.sum(case((in_time, 1), else_=0)).label("callback_in_time"),
                         func.sum(case((CallbackTask.reached.is_(True), 1), else_=0)).label("callback_reached")))


def _count_callbacks(rows: dict[int, dict[str, Any]], w: Window, in_grids: ColumnElement[bool]) -> None:
    for row in rows.values():
        row.update(dict.fromkeys(CALLBACK_FIGURES, 0))
    for *figures, grid_id in db.session.execute(
            _due_callbacks(w, in_grids).add_columns(Ticket.grid_id).group_by(Ticket.grid_id)):
        rows[grid_id].update({name: int(n or 0) for name, n in zip(CALLBACK_FIGURES, figures, strict=True)})


def _residents() -> ColumnElement[bool]:
    """A resident's ticket, not a grid worker's own patrol report (which the 满意率 leaves out)."""
    return Ticket.channel != Channel.PATROL


def _count_patrol_and_holds(rows: dict[int, dict[str, Any]], w: Window, in_grids: ColumnElement[bool]) -> None:
    """The patrol's own reports apart (filed: from the channels already counted; resolved),
    and the time on hold of the tickets resolved that day that were ever held."""
    for row in rows.values():
        row["patrol_new"] = row["by_channel"].get(Channel.PATROL.value, 0)
    resolved = (_day_events(w, in_grids)
                .add_columns(Ticket.grid_id.label("grid_id"), Ticket.id.label("ticket_id"),
                             Ticket.channel.label("channel"), Ticket.paused_seconds.label("paused"))
                .where(TicketEvent.action == "resolve").distinct().subquery())
    held = case((resolved.c.paused > 0, 1), else_=0)
    for grid_id, patrol, held_n, held_s in db.session.execute(
            select(resolved.c.grid_id, func.sum(case((resolved.c.channel == Channel.PATROL, 1), else_=0)),
                   func.sum(held), func.sum(case((resolved.c.paused > 0, resolved.c.paused), else_=0)))
            .group_by(resolved.c.grid_id)):
        rows[grid_id].update(patrol_resolved=int(patrol or 0), hold_n=int(held_n or 0),
                             hold_total_s=int(held_s or 0))


def seconds_between(later: Any, earlier: Any) -> ColumnElement[float]:
    """`later - earlier` in seconds, in the dialect at hand."""
    if db.session.get_bind().dialect.name == "postgresql":
        # Fractional seconds, though SQLAlchemy types every EXTRACT as an integer.
        return cast(ColumnElement[float], func.extract("epoch", later - earlier))
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _count_times(rows: dict[int, dict[str, Any]], w: Window, in_grids: ColumnElement[bool]) -> None:
    for name, action, since in (("accept", "accept", Ticket.dispatched_at), ("resolve", "resolve", Ticket.created_at)):
        took = seconds_between(TicketEvent.at, since)
        durations = (_day_events(w, in_grids)
                     .add_columns(Ticket.grid_id.label("grid_id"), took.label("took"),
                                  func.row_number().over(partition_by=Ticket.grid_id, order_by=took).label("rank"),
                                  func.count().over(partition_by=Ticket.grid_id).label("n"))
                     .where(TicketEvent.action == action, since.is_not(None), since <= TicketEvent.at)
                     .subquery())
        # Nearest-rank 90th percentile: the ceil(0.9 n)-th smallest, in integer arithmetic.
        p90 = func.max(case((durations.c.rank == (durations.c.n * 9 + 9) // 10, durations.c.took)))
        for grid_id, n, total, slow in db.session.execute(
                select(durations.c.grid_id, func.count(), func.sum(durations.c.took), p90)
                .group_by(durations.c.grid_id)):
            rows[grid_id].update({f"{name}_mean_s": round(float(total) / n), f"{name}_p90_s": round(float(slow)),
                                  f"{name}_n": n, f"{name}_total_s": round(float(total))})


def _upsert(rows: list[dict[str, Any]]) -> None:
    """Insert the ledgers, or update those compiled before (same id, new content)."""
    table = Ledger.__table__
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table)
    kept = ("id", "grid_id", "day")
    statement = statement.on_conflict_do_update(
        index_elements=["grid_id", "day"],
        set_={c.name: statement.excluded[c.name] for c in table.c if c.name not in kept})
    db.session.execute(statement, rows)


def _write_lines(w: Window, in_grids: ColumnElement[bool], grid_ids: list[int]) -> None:
    """Replace the lines of the day's ledgers with one INSERT … SELECT over the tickets touched."""
    ledgers = select(Ledger.id).where(Ledger.day == w.day, Ledger.grid_id.in_(grid_ids))
    db.session.execute(delete(LedgerLine).where(LedgerLine.ledger_id.in_(ledgers)))
    at_end = _at_end(w, _touched(w, in_grids))
    t = at_end.c
    handler = func.coalesce(User.display_name, Team.name, PropertyCompany.name, "")
    lines = (select(Ledger.id, t.id, t.state, handler, _deadline(t), case((_overdue(t, w), True), else_=False),
                    t.result_note, t.rating)
             .select_from(at_end)
             .join(Ledger, and_(Ledger.grid_id == t.grid_id, Ledger.day == w.day))
             .outerjoin(User, t.assignee_id == User.id)
             .outerjoin(Team, t.team_id == Team.id)
             .outerjoin(PropertyCompany, t.company_id == PropertyCompany.id))
    db.session.execute(LedgerLine.__table__.insert().from_select(
        ["ledger_id", "ticket_id", "status", "handler", "deadline", "overdue", "result", "rating"], lines))


def _handler_events(w: Window, in_grids: ColumnElement[bool]) -> Any:
    """The day's 三率 events, each with its handler and what it adds to the handler's rates.

    Acceptances and resolutions belong to whoever did them; an expiry to the person
    (or team, or company) who let it lapse, as the event recorded; a closing and a
    rating to the ticket's assignee, who resolved it (a closed ticket keeps him).
    """
    action = TicketEvent.action
    expired = action == "expire"
    missed_by = TicketEvent.detail["missed_by"].as_integer()
    user = case((action.in_(["accept", "resolve"]), TicketEvent.actor_id), (expired, missed_by),
                else_=Ticket.assignee_id)
    nobody = and_(expired, missed_by.is_(None))
    team = case((nobody, TicketEvent.detail["team_id"].as_integer()))
    company = case((nobody, TicketEvent.detail["company_id"].as_integer()))
    closing = _closes()
    rated = action.in_(RATINGS)

    def flag(condition: ColumnElement[bool]) -> Any:
        return case((condition, 1), else_=0)

    return (_day_events(w, in_grids)
            .add_columns(Ticket.grid_id.label("grid_id"), user.label("user_id"), team.label("team_id"),
                         company.label("company_id"),
                         flag(action == "accept").label("accepted"), flag(action == "resolve").label("resolved"),
                         flag(_accepted_in_time()).label("response_num"),
                         flag(action.in_(["accept", "expire"])).label("response_den"),
                         flag(and_(closing, Ticket.reopen_count == 0)).label("resolution_num"),
                         flag(closing).label("resolution_den"),
                         flag(and_(rated, _residents(), Ticket.rating.in_(SATISFIED))).label("satisfaction_num"),
                         flag(and_(rated, _residents())).label("satisfaction_den"))
            .where(action.in_(["accept", "expire", "resolve", *CLOSING, *RATINGS])).subquery())


HANDLER_FIGURES = ("accepted", "resolved", "response_num", "response_den", "resolution_num", "resolution_den",
                   "satisfaction_num", "satisfaction_den")


def _write_handlers(w: Window, grids: Sequence[Any], in_grids: ColumnElement[bool]) -> None:
    """Replace the day's handler rows of the grids: one GROUP BY over the day's events."""
    places = {grid_id: (community_id, street_id) for grid_id, community_id, street_id in grids}
    db.session.execute(delete(HandlerDay).where(HandlerDay.day == w.day, HandlerDay.grid_id.in_(list(places))))
    events = _handler_events(w, in_grids)
    who = (events.c.grid_id, events.c.user_id, events.c.team_id, events.c.company_id)
    rows = db.session.execute(select(*who, *(func.sum(events.c[name]) for name in HANDLER_FIGURES))
                              .group_by(*who)).all()
    names = _handler_names(rows)
    records = []
    for grid_id, user_id, team_id, company_id, *figures in rows:
        key = f"u{user_id}" if user_id else f"t{team_id}" if team_id else f"c{company_id}" if company_id else "none"
        community_id, street_id = places[grid_id]
        records.append(dict(grid_id=grid_id, community_id=community_id, street_id=street_id, day=w.day,
                            handler_key=key, user_id=user_id, team_id=team_id, company_id=company_id,
                            name=names.get(key, ""), **{n: int(v or 0) for n, v in zip(HANDLER_FIGURES, figures, strict=True)}))
    if records:
        db.session.execute(HandlerDay.__table__.insert(), records)


def _write_handler_callbacks(w: Window, grids: Sequence[Any], in_grids: ColumnElement[bool]) -> None:
    """Add the day's 回访 figures to the handlers' rows, one GROUP BY over the tasks due.

    A task counts for its ticket's handler (the assignee, else the team or company whose
    queue holds it), as a closing does; a handler with no 三率 event that day gets a row.
    """
    places = {grid_id: (community_id, street_id) for grid_id, community_id, street_id in grids}
    team = case((Ticket.assignee_id.is_(None), Ticket.team_id))
    company = case((and_(Ticket.assignee_id.is_(None), Ticket.team_id.is_(None)), Ticket.company_id))
    who = (Ticket.grid_id, Ticket.assignee_id, team, company)
    rows = db.session.execute(
        _due_callbacks(w, in_grids).add_columns(*who).group_by(*who)).all()
    if not rows:
        return
    names = _handler_names([(grid_id, user_id, team_id, company_id)
                            for *_figures, grid_id, user_id, team_id, company_id in rows])
    records = []
    for *figures, grid_id, user_id, team_id, company_id in rows:
        key = f"u{user_id}" if user_id else f"t{team_id}" if team_id else f"c{company_id}" if company_id else "none"
        community_id, street_id = places[grid_id]
        records.append(dict(grid_id=grid_id, community_id=community_id, street_id=street_id, day=w.day,
                            handler_key=key, user_id=user_id, team_id=team_id, company_id=company_id,
                            name=names.get(key, ""),
                            **{n: int(v or 0) for n, v in zip(CALLBACK_FIGURES, figures, strict=True)}))
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(HandlerDay.__table__)
    db.session.execute(statement.on_conflict_do_update(
        index_elements=["grid_id", "day", "handler_key"],
        set_={name: statement.excluded[name] for name in CALLBACK_FIGURES}), records)


def _handler_names(rows: Sequence[Any]) -> dict[str, str]:
    """The display names of the handlers in `rows`, by key, in one query per kind."""
    names: dict[str, str] = {}
    for prefix, model, label, position in (("u", User, User.display_name, 1), ("t", Team, Team.name, 2),
                                           ("c", PropertyCompany, PropertyCompany.name, 3)):
        ids = {row[position] for row in rows if row[position]}
        if ids:
            names.update({f"{prefix}{i}": n for i, n in db.session.execute(
                select(model.id, label).where(model.id.in_(ids)))})
    return names

"""Counting the recurring problems (services/hotspots.py): SQL aggregates rolled up per place.

The database does the counting: one GROUP BY over the window and the period before it
(an index range of `created_at`) gives, per finest place (building, complex, grid,
community ids as the ticket has them) × category × week, the tickets, the 不满意
ratings, the reopened and the first and last time; a second gives the window's
tickets per handler. Python then adds these few rows up to each level. Texts are
read only where they can change a cluster, and only so many (`TEXT_PLACES`,
`TEXTS_PER_PLACE`): at a busy place where tickets fall under several categories.
"""
from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    func,
    or_,
    select,
    text,
)

from ticketing.extensions import db
from ticketing.models import Building, Complex, Rating, Status, Ticket
from ticketing.services import hotspot_texts
from ticketing.services.sqlparts import among

# Not counted: a merged ticket counts in the one it joined, a rejected one was not the
# place's problem, a withdrawn one was taken back before anyone acted.
NOT_COUNTED = (Status.MERGED, Status.REJECTED, Status.WITHDRAWN)
TEXT_PLACES = 2000  # busiest places whose texts are read for near-identical wording
TEXTS_PER_PLACE = 60  # latest tickets read per such place (both periods)
DESCRIPTION_READ = 200  # characters of a description read

# street, community, grid, complex, building, category: the finest group the SQL counts.
Fine = tuple[int, int, int | None, int | None, int | None, int]
Key = tuple[str, int, int]  # level, place id, category id
Handler = tuple[str, int]  # ("user" | "team" | "company", id)


@dataclass(frozen=True)
class Span:
    """The window (`days` local days ending with `day`) and the period before, in UTC."""

    day: date
    days: int
    start: datetime
    end: datetime
    previous_start: datetime
    weeks: tuple[datetime, ...]  # where each 7-day part of the window starts

    def bucket(self, at: datetime) -> int:
        """-1 for the period before, else the window's 7-day part `at` falls in."""
        return -1 if at < self.start else bisect.bisect_right(self.weeks, at) - 1


def span(day: date, days: int, tz: tzinfo, now: datetime) -> Span:
    """The window of `days` local days ending with `day` (up to `now` if that is sooner)."""
    if days < 1:
        raise ValueError("a window has at least one day")
    first = day - timedelta(days=days - 1)
    start = datetime.combine(first, time(), tzinfo=tz).astimezone(UTC)
    end = min(datetime.combine(day + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC), now)
    previous = datetime.combine(first - timedelta(days=days), time(), tzinfo=tz).astimezone(UTC)
    weeks = tuple(datetime.combine(first + timedelta(days=7 * k), time(), tzinfo=tz).astimezone(UTC)
                  for k in range(math.ceil(days / 7)))
    return Span(day, days, start, max(end, start), previous, weeks)


@dataclass
class Cell:
    """The tickets of one fine group in one part of the window (or the period before)."""

    count: int = 0
    unsatisfied: int = 0
    reopened: int = 0
    merged: int = 0  # joined from another category by their wording
    first: datetime | None = None
    last: datetime | None = None

    def add(self, n: int, unsatisfied: int, reopened: int, first: datetime, last: datetime, merged: int = 0) -> None:
        self.count += n
        self.unsatisfied += unsatisfied
        self.reopened += reopened
        self.merged += merged
        self.first = first if self.first is None else min(self.first, first)
        self.last = last if self.last is None else max(self.last, last)


Cells = dict[Fine, dict[int, Cell]]  # fine group → bucket → cell


FINE_COLUMNS = (Ticket.street_id, Ticket.community_id, Ticket.grid_id, Ticket.complex_id, Ticket.building_id,
                Ticket.category_id)


def counted(s: Span, since: datetime) -> ColumnElement[bool]:
    """The tickets that count, filed from `since` to the window's end."""
    return and_(Ticket.created_at >= since, Ticket.created_at < s.end, Ticket.status.not_in(list(NOT_COUNTED)))


def count_cells(s: Span) -> Cells:
    """The window's and the period before's tickets per fine group and week, by one GROUP BY."""
    bucket = case((Ticket.created_at < s.start, -1),
                  *[(Ticket.created_at < edge, k) for k, edge in enumerate(s.weeks[1:])],
                  else_=len(s.weeks) - 1).label("bucket")
    query = (select(*FINE_COLUMNS, bucket, func.count(),
                    func.sum(case((Ticket.rating == Rating.UNSATISFIED, 1), else_=0)),
                    func.sum(case((Ticket.reopen_count > 0, 1), else_=0)),
                    func.min(Ticket.created_at), func.max(Ticket.created_at))
             .where(counted(s, s.previous_start)).group_by(*FINE_COLUMNS, bucket))
    cells: Cells = {}
    for *fine, part, n, unsatisfied, reopened, first, last in db.session.execute(query):
        cell = cells.setdefault(tuple(fine), {}).setdefault(part, Cell())
        cell.add(n, int(unsatisfied or 0), int(reopened or 0), aware(first), aware(last))
    return cells


def aware(at: datetime) -> datetime:
    """A time from an aggregate, in UTC (SQLite hands MIN/MAX back as naive text or datetimes)."""
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def handler_of(assignee_id: int | None, team_id: int | None, company_id: int | None) -> Handler | None:
    """Who has (or had) the ticket: the person, else the team's or company's queue."""
    if assignee_id is not None:
        return ("user", assignee_id)
    if team_id is not None:
        return ("team", team_id)
    if company_id is not None:
        return ("company", company_id)
    return None


def count_handlers(s: Span) -> dict[Fine, Counter[Handler]]:
    """The window's tickets per fine group and handler."""
    who = (Ticket.assignee_id, Ticket.team_id, Ticket.company_id)
    query = select(*FINE_COLUMNS, *who, func.count()).where(counted(s, s.start)).group_by(*FINE_COLUMNS, *who)
    out: dict[Fine, Counter[Handler]] = {}
    for street, community, grid, cx, building, category, user, team, company, n in db.session.execute(query):
        handler = handler_of(user, team, company)
        if handler is not None:
            out.setdefault((street, community, grid, cx, building, category), Counter())[handler] += n
    return out


def finest_place(fine: Fine) -> tuple[str, int]:
    """The most specific place a fine group names."""
    _street, community, grid, cx, building, _category = fine
    if building is not None:
        return "building", building
    if cx is not None:
        return "complex", cx
    return ("grid", grid) if grid is not None else ("community", community)


@dataclass(frozen=True)
class Read:
    """A ticket read whole: for near-identical wording, and for a cluster's sample."""

    id: int
    fine: Fine
    created_at: datetime
    text: str
    unsatisfied: bool
    reopened: bool
    handler: Handler | None
    requester_name: str
    unit_room: str
    requester_phone: str


READ_COLUMNS = (Ticket.id, *FINE_COLUMNS, Ticket.created_at, func.substr(Ticket.description, 1, DESCRIPTION_READ),
                Ticket.rating, Ticket.reopen_count, Ticket.assignee_id, Ticket.team_id, Ticket.company_id,
                Ticket.requester_name, Ticket.unit_room, Ticket.requester_phone)


def read_latest(where: ColumnElement[bool], partition: tuple[Any, ...], latest: int) -> list[Read]:
    """The latest `latest` tickets of each partition among those `where` selects."""
    rank = func.row_number().over(partition_by=partition, order_by=(Ticket.created_at.desc(), Ticket.id.desc()))
    inner = select(*READ_COLUMNS, rank.label("rank")).where(where).subquery()
    return _reads(db.session.execute(select(*[c for c in inner.c if c.name != "rank"]).where(inner.c.rank <= latest)))


READ_SQL = ("x.id, x.street_id, x.community_id, x.grid_id, x.complex_id, x.building_id, x.category_id, x.created_at, "
            f"substr(x.description, 1, {DESCRIPTION_READ}), x.rating, x.reopen_count, x.assignee_id, x.team_id, "
            "x.company_id, x.requester_name, x.unit_room, x.requester_phone")


def on_postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def latest_by_key(s: Span, since: datetime, columns: tuple[str, ...], keys: Iterable[tuple[int, ...]],
                  latest: int) -> list[Read]:
    """PostgreSQL: the latest `latest` counted tickets from `since` to the window's end for
    each key (values of `columns`, e.g. building_id and category_id), each read through the
    index that starts with those columns (ix_tickets_building_category), not by sorting the
    whole window."""
    keys = sorted(set(keys))
    if not keys:
        return []
    names = [f"k{i}" for i in range(len(columns))]
    arrays = ", ".join(f"CAST(:{name} AS integer[])" for name in names)
    match = " AND ".join(f"t.{column} = g.{name}" for column, name in zip(columns, names, strict=True))
    excluded = ", ".join(f"'{status}'" for status in NOT_COUNTED)
    sql = (f"SELECT {READ_SQL} FROM unnest({arrays}) AS g({', '.join(names)}) CROSS JOIN LATERAL ("
           f"SELECT * FROM tickets t WHERE {match} AND t.created_at >= :since AND t.created_at < :end "
           f"AND t.status NOT IN ({excluded}) ORDER BY t.created_at DESC, t.id DESC LIMIT :latest) AS x")
    params: dict[str, Any] = {name: [key[i] for key in keys] for i, name in enumerate(names)}
    return _reads(db.session.execute(text(sql), {**params, "since": since, "end": s.end, "latest": latest}))


def _reads(rows: Iterable[Any]) -> list[Read]:
    out = []
    for (ticket_id, street, community, grid, cx, building, category, at, said, rating, reopens, user, team,
         company, name, room, phone) in rows:
        out.append(Read(ticket_id, (street, community, grid, cx, building, category), aware(at), said or "",
                        rating == Rating.UNSATISFIED, bool(reopens), handler_of(user, team, company),
                        name or "", room or "", phone or ""))
    return out


def place_filter(places: Iterable[tuple[str, int]]) -> ColumnElement[bool]:
    """Tickets whose most specific place is one of `places`."""
    ids: dict[str, set[int]] = {"building": set(), "complex": set(), "grid": set(), "community": set()}
    for level, place_id in places:
        ids[level].add(place_id)
    no_building, no_complex = Ticket.building_id.is_(None), Ticket.complex_id.is_(None)
    return or_(among(Ticket.building_id, ids["building"]),
               and_(no_building, among(Ticket.complex_id, ids["complex"])),
               and_(no_building, no_complex, among(Ticket.grid_id, ids["grid"])),
               and_(no_building, no_complex, Ticket.grid_id.is_(None), among(Ticket.community_id, ids["community"])))


def place_names(places: Iterable[tuple[str, int]]) -> dict[tuple[str, int], list[str]]:
    """The names (and aliases) of buildings and complexes, and of a building's complex:
    what residents write to say where, taken out before texts are compared."""
    places = list(places)
    names: dict[tuple[str, int], list[str]] = {}
    buildings = [i for level, i in places if level == "building"]
    for b_id, b_name, b_aliases, c_name, c_aliases in db.session.execute(
            select(Building.id, Building.name, Building.aliases, Complex.name, Complex.aliases)
            .join(Complex, Building.complex_id == Complex.id).where(among(Building.id, buildings))):
        names[("building", b_id)] = [b_name, c_name, *b_aliases.splitlines(), *c_aliases.splitlines()]
    complexes = [i for level, i in places if level == "complex"]
    for c_id, c_name, c_aliases in db.session.execute(
            select(Complex.id, Complex.name, Complex.aliases).where(among(Complex.id, complexes))):
        names[("complex", c_id)] = [c_name, *c_aliases.splitlines()]
    return names


@dataclass
class Regrouping:
    """What near-identical wording changed: tickets moved to another category, and the
    tickets read on the way (reused for the clusters' samples)."""

    moves: dict[int, int] = field(default_factory=dict)
    read: dict[int, Read] = field(default_factory=dict)


def regroup(s: Span, cells: Cells, handlers: dict[Fine, Counter[Handler]], min_count: int) -> Regrouping:
    """Move tickets of near-identical wording at one place into one category, in `cells`
    and `handlers` alike. Only places with at least `min_count` tickets in the window
    under two or more categories are read, the busiest `TEXT_PLACES` of them."""
    by_place: dict[tuple[str, int], Counter[int]] = {}
    for fine, parts in cells.items():
        n = sum(cell.count for part, cell in parts.items() if part >= 0)
        if n:
            by_place.setdefault(finest_place(fine), Counter())[fine[5]] += n
    busy = [(place, counts) for place, counts in by_place.items()
            if len(counts) >= 2 and sum(counts.values()) >= min_count]
    busy.sort(key=lambda item: (-sum(item[1].values()), item[0]))
    busy = busy[:TEXT_PLACES]
    result = Regrouping()
    if not busy:
        return result
    places = dict(busy)
    rows = read_places(s, places)
    names = place_names(places)
    at_place: dict[tuple[str, int], list[Read]] = {}
    for row in rows:
        at_place.setdefault(finest_place(row.fine), []).append(row)
        result.read[row.id] = row
    for place, read in at_place.items():
        said = [hotspot_texts.Said(r.id, r.fine[5], hotspot_texts.normalised(r.text, names.get(place, ())))
                for r in read]
        result.moves.update(hotspot_texts.regrouped(said, dict(places[place])))
    for ticket_id, category in result.moves.items():
        move(s, result.read[ticket_id], category, cells, handlers)
    return result


def read_places(s: Span, places: dict[tuple[str, int], Any]) -> list[Read]:
    """The latest TEXTS_PER_PLACE tickets of both periods at each place: on PostgreSQL a
    building's through its index, the rest (tickets placed no closer than a complex) by one
    ranking of the window's tickets that have no building."""
    partition = (Ticket.community_id, Ticket.grid_id, Ticket.complex_id, Ticket.building_id)
    if not on_postgres():
        return read_latest(and_(counted(s, s.previous_start), place_filter(places)), partition, TEXTS_PER_PLACE)
    buildings = [(place_id,) for level, place_id in places if level == "building"]
    rows = latest_by_key(s, s.previous_start, ("building_id",), buildings, TEXTS_PER_PLACE)
    others = [place for place in places if place[0] != "building"]
    if others:
        rows += read_latest(and_(counted(s, s.previous_start), place_filter(others)), partition, TEXTS_PER_PLACE)
    return rows


def move(s: Span, row: Read, category: int, cells: Cells, handlers: dict[Fine, Counter[Handler]]) -> None:
    """Count one ticket under `category` instead of its own (unless it changed since it was
    counted, e.g. recategorised a moment ago: then it stays where it was counted)."""
    part = s.bucket(row.created_at)
    street, community, grid, cx, building, _own = old = row.fine
    new: Fine = (street, community, grid, cx, building, category)
    cell = cells.get(old, {}).get(part)
    if cell is None or cell.count <= 0:
        return
    cell.count -= 1
    cell.unsatisfied -= row.unsatisfied
    cell.reopened -= row.reopened
    if cell.count <= 0:
        del cells[old][part]
    cells.setdefault(new, {}).setdefault(part, Cell()).add(
        1, int(row.unsatisfied), int(row.reopened), row.created_at, row.created_at, merged=1)
    if part >= 0 and row.handler is not None and handlers.get(old, Counter())[row.handler] > 0:
        handlers[old][row.handler] -= 1
        handlers.setdefault(new, Counter())[row.handler] += 1

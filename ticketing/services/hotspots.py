"""Recurring problems (高频诉求): clusters of tickets by place and category, found each night.

A cluster is the tickets filed at one place — a building, a complex, a grid or a
community — under one category, in a window of `days` local (Asia/Shanghai) days
ending with `day` (the nightly job: 30 and 90 days ending yesterday). Merged,
rejected and withdrawn tickets are not counted. For each cluster:

- `count` in the window and `previous_count` in the same number of days just before;
  `trend` = count − previous_count; `is_new` when nothing came before;
- the first and last ticket, the tickets per week, the latest `SAMPLE` tickets, the
  handlers who had them, how many were rated 不满意 and how many reopened;
- near-identical wording: at one place, tickets whose texts are near-identical join
  the category most of them were filed under, even when the classifier or staff put
  some under another (services/hotspot_texts.py says when texts are alike); the
  cluster's `merged` says how many joined so, and `wording` is its typical text;
- the threshold: a cluster of fewer than `min_count` tickets (HOTSPOT_MIN_COUNT,
  3 by default) is not kept;
- the most specific level: a cluster is not kept when one cluster one level down
  (a building of the complex, a complex of the grid, a grid of the community; same
  category) holds at least 80 % (`EXPLAINED_SHARE`) of its tickets and is itself kept
  or left out by this same rule: the narrower place explains it, and its tickets are
  not listed twice. A complex whose tickets spread over its buildings stays;
- the score that ranks clusters, most significant first:
  score = count + 2 × 不满意 + 2 × reopened + rise, where rise = max(0, count − previous_count).
  Each ticket counts one; a ticket the resident was not satisfied with, or that had to
  be reopened, counts three (the problem was not solved); a growing cluster gets its
  growth on top, a shrinking one loses nothing. Ties: more tickets, then the latest.

`find` computes the clusters and stores nothing; `run` finds and stores them as the
run of that day and window, replacing an earlier run of the same day and window (the
caller commits). `for_scope` reads the latest stored run on or before a day, limited to
what a user may see (services/scope.place_scope).

Where the parts live: the SQL counting and the texts read, hotspot_count.py; the levels,
the narrowest place, samples and names, hotspot_rollup.py (`SAMPLE`, `EXPLAINED_SHARE`);
near-identical wording, hotspot_texts.py; writing a run, hotspot_store.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import ColumnElement, and_, delete, func, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import joinedload

from ticketing.extensions import db
from ticketing.models import Hotspot, HotspotRun, HotspotTicket, Ticket, User
from ticketing.models.hotspots import LEVELS
from ticketing.services import hotspot_store, scope
from ticketing.services.hotspot_count import (
    count_cells,
    count_handlers,
    counted,
    on_postgres,
    regroup,
    span,
)
from ticketing.services.hotspot_rollup import (
    handler_labels,
    kept,
    place_labels,
    roll_up,
    samples,
    wording,
)
from ticketing.services.sqlparts import among

KEEP_DAYS = 60  # runs older than this (days before the one stored) are deleted
WINDOWS = (30, 90)  # what the nightly job finds
DEFAULT_MIN_COUNT = 3
# Clusters with nothing of the kind in the period before, or more than then (the morning brief's).
NEW_OR_GROWING = or_(Hotspot.previous_count == 0, Hotspot.count > Hotspot.previous_count)


def score(count: int, previous: int, unsatisfied: int, reopened: int) -> int:
    """count + 2 × 不满意 + 2 × reopened + max(0, count − previous): see the module's docstring."""
    return count + 2 * unsatisfied + 2 * reopened + max(0, count - previous)


@dataclass
class Found:
    """A cluster found: its column values (as Hotspot has them), and the ids of its latest
    tickets, latest first. Plain values, not ORM objects: a night may find tens of thousands."""

    values: dict[str, Any]
    sample: list[int]

    def order(self) -> tuple[Any, ...]:
        """Most significant first: score, then tickets, then the latest; then a fixed order."""
        v = self.values
        return (-v["score"], -v["count"], -v["last_at"].timestamp(), LEVELS.index(v["level"]), v["place_id"],
                v["category_id"])


def gather(day: date, days: int, now: datetime, min_count: int, tz: tzinfo) -> list[Found]:
    """The clusters of the window, most significant first (see the module's docstring)."""
    s = span(day, days, tz, now)
    if on_postgres():  # the window's groups sorted in memory, not in temporary files
        db.session.execute(text("SET LOCAL work_mem = '64MB'"))
    cells = count_cells(s)
    handlers = count_handlers(s)
    regrouping = regroup(s, cells, handlers, min_count)
    chosen = kept(roll_up(s, cells, handlers), min_count)
    if not chosen:
        return []
    sampled = samples(s, cells, chosen, regrouping)
    places, people = place_labels(chosen), handler_labels(chosen)
    found = []
    for t in chosen:
        level, place_id, category_id = t.key
        rows = sampled.get(t.key, [])
        found.append(Found({
            "day": day, "days": days, "level": level, "place_id": place_id,
            "place_name": places.get((level, place_id), ""), "street_id": t.street_id,
            "community_id": t.community_id, "grid_id": t.grid_id, "category_id": category_id, "count": t.count,
            "previous_count": t.previous, "unsatisfied": t.unsatisfied, "reopened": t.reopened, "merged": t.merged,
            "score": score(t.count, t.previous, t.unsatisfied, t.reopened), "first_at": t.first, "last_at": t.last,
            "weekly": list(t.weekly), "wording": wording(rows),
            "handlers": [{"name": people.get(h, ""), "count": n} for h, n in
                         sorted(((h, n) for h, n in t.handlers.items() if n > 0), key=lambda hn: (-hn[1], hn[0]))],
        }, [r.id for r in rows]))
    found.sort(key=Found.order)
    return found


def app_tz() -> ZoneInfo:
    """The time zone local days are counted in (TIMEZONE)."""
    return ZoneInfo(current_app.config["TIMEZONE"])


def find(day: date, days: int, now: datetime, min_count: int = DEFAULT_MIN_COUNT,
         tz: tzinfo | None = None) -> list[Hotspot]:
    """The clusters of the `days` local days ending with `day`, most significant first;
    stores nothing (the Hotspot objects are not added to the session)."""
    return [Hotspot(**f.values) for f in gather(day, days, now, min_count, tz or app_tz())]


def run(day: date, days: int, now: datetime, min_count: int = DEFAULT_MIN_COUNT,
        tz: tzinfo | None = None) -> HotspotRun:
    """Find the clusters and store them as the run of `day` and `days`, replacing an
    earlier run of the same; the caller commits."""
    return store(day, days, gather(day, days, now, min_count, tz or app_tz()), now, min_count)


def claim_run(day: date, days: int, now: datetime, min_count: int, clusters: int) -> int:
    """The run's row, made or taken over (its id). The upsert locks the row until the
    caller commits, so a second run of the same day and window waits for the first."""
    dialect = db.session.get_bind().dialect.name
    upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = {"found_at": now, "min_count": min_count, "clusters": clusters}
    statement = upsert(HotspotRun).values(day=day, days=days, **values)
    statement = statement.on_conflict_do_update(index_elements=["day", "days"], set_=values)
    return int(db.session.execute(statement.returning(HotspotRun.id)).scalar_one())


def store(day: date, days: int, found: list[Found], now: datetime, min_count: int) -> HotspotRun:
    """Replace the run of `day` and `days` with `found`, and drop runs older than KEEP_DAYS
    before it; in bulk, the caller commits."""
    run_id = claim_run(day, days, now, min_count, len(found))
    hotspot_store.forget(select(Hotspot.id).where(Hotspot.run_id == run_id))
    hotspot_store.write([{**f.values, "run_id": run_id} for f in found], [f.sample for f in found])
    old = select(HotspotRun.id).where(HotspotRun.day < day - timedelta(days=KEEP_DAYS))
    hotspot_store.forget(select(Hotspot.id).where(Hotspot.run_id.in_(old)))
    db.session.execute(delete(HotspotRun).where(HotspotRun.id.in_(old)))
    run_row = db.session.get(HotspotRun, run_id, populate_existing=True)
    assert run_row is not None
    return run_row


# --- reading the stored runs --------------------------------------------------------


def latest_run(day: date, days: int) -> HotspotRun | None:
    """The latest run of the window on or before `day`."""
    return db.session.scalar(select(HotspotRun).where(HotspotRun.day <= day, HotspotRun.days == days)
                             .order_by(HotspotRun.day.desc()).limit(1))


@dataclass
class Listing:
    """A page of a run's clusters in a scope: the run (None: never run), how many in all, these."""

    run: HotspotRun | None
    total: int
    hotspots: list[Hotspot]


def listing(user: User | None, day: date, days: int = 30, where: ColumnElement[bool] | None = None,
            limit: int | None = None, offset: int = 0) -> Listing:
    """The stored clusters of the latest run on or before `day` that `user` may see (None:
    all) and `where` selects (a street, a community), most significant first, `limit` of
    them from `offset`."""
    run_row = latest_run(day, days)
    if run_row is None:
        return Listing(None, 0, [])
    query = select(Hotspot).where(Hotspot.day == run_row.day, Hotspot.days == run_row.days)
    if user is not None:
        query = query.where(scope.place_scope(user, Hotspot.grid_id, Hotspot.community_id, Hotspot.street_id))
    if where is not None:
        query = query.where(where)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    ordered = query.order_by(Hotspot.score.desc(), Hotspot.count.desc(), Hotspot.last_at.desc(), Hotspot.id)
    ordered = ordered.options(joinedload(Hotspot.category))
    ordered = ordered.offset(offset)
    if limit is not None:
        ordered = ordered.limit(limit)
    return Listing(run_row, total, list(db.session.scalars(ordered)))


@dataclass(frozen=True)
class Summary:
    """A stored cluster's figures without the rest of it: what a list that counts and names
    clusters needs (the morning brief), read as plain rows however many there are."""

    id: int
    level: str
    place_id: int
    place_name: str
    category_id: int
    count: int
    previous_count: int
    score: int

    @property
    def trend(self) -> int:
        return self.count - self.previous_count

    @property
    def is_new(self) -> bool:
        return self.previous_count == 0


def new_or_growing(user: User | None, day: date, days: int = 30) -> list[Summary]:
    """The stored clusters `user` may see that are new or grew since the period before, most
    significant first, as summaries (a street's worst case is thousands: no ORM objects)."""
    run_row = latest_run(day, days)
    if run_row is None:
        return []
    query = select(Hotspot.id, Hotspot.level, Hotspot.place_id, Hotspot.place_name, Hotspot.category_id,
                   Hotspot.count, Hotspot.previous_count, Hotspot.score).where(
        Hotspot.day == run_row.day, Hotspot.days == run_row.days, NEW_OR_GROWING)
    if user is not None:
        query = query.where(scope.place_scope(user, Hotspot.grid_id, Hotspot.community_id, Hotspot.street_id))
    query = query.order_by(Hotspot.score.desc(), Hotspot.count.desc(), Hotspot.last_at.desc(), Hotspot.id)
    return [Summary(*row) for row in db.session.execute(query)]


def for_scope(user: User | None, day: date, days: int = 30) -> list[Hotspot]:
    """The stored clusters of the latest run on or before `day`, limited to what `user`
    may see (None: everything), most significant first."""
    return listing(user, day, days).hotspots


def visible(user: User | None, hotspot_id: int) -> Hotspot | None:
    """A stored cluster by id, if `user` may see it (None: any)."""
    query = select(Hotspot).where(Hotspot.id == hotspot_id)
    if user is not None:
        query = query.where(scope.place_scope(user, Hotspot.grid_id, Hotspot.community_id, Hotspot.street_id))
    return db.session.scalar(query)


def sample_tickets(spots: list[Hotspot]) -> dict[int, list[Ticket]]:
    """Each cluster's sampled tickets, latest first: the links, then the tickets by key
    (asked as one join, the planner may read every ticket instead)."""
    out: dict[int, list[Ticket]] = {spot.id: [] for spot in spots}
    if not spots:
        return out
    links = db.session.execute(select(HotspotTicket.hotspot_id, HotspotTicket.ticket_id)
                               .where(HotspotTicket.hotspot_id.in_(list(out)))
                               .order_by(HotspotTicket.hotspot_id, HotspotTicket.position)).all()
    tickets = {t.id: t for t in db.session.scalars(select(Ticket).where(among(Ticket.id, {i for _s, i in links})))}
    for spot_id, ticket_id in links:
        if ticket_id in tickets:
            out[spot_id].append(tickets[ticket_id])
    return out


PLACE_COLUMNS = {"building": Ticket.building_id, "complex": Ticket.complex_id, "grid": Ticket.grid_id,
                 "community": Ticket.community_id}
MAP_POINTS = 500  # dots drawn at most on a cluster's map
END_OF_TIME = datetime.max.replace(tzinfo=UTC)


def points(spot: Hotspot, tz: tzinfo | None = None) -> tuple[list[tuple[float, float, str]], int]:
    """Where the cluster's tickets were reported from — (lat, lon, number) of at most
    MAP_POINTS, latest first — and how many have no point. Places carry no coordinates,
    so a ticket without its own (a map pin, a phone's position) is left off the map.
    The tickets that joined by their wording from another category are among the sample's."""
    s = span(spot.day, spot.days, tz or app_tz(), END_OF_TIME)
    mine = and_(counted(s, s.start), PLACE_COLUMNS[spot.level] == spot.place_id, Ticket.category_id == spot.category_id)
    located = and_(Ticket.lat.is_not(None), Ticket.lon.is_not(None))
    rows: list[tuple[Any, Any, str]] = [tuple(row) for row in db.session.execute(
        select(Ticket.lat, Ticket.lon, Ticket.number).where(mine, located)
        .order_by(Ticket.created_at.desc()).limit(MAP_POINTS))]
    missing = db.session.scalar(select(func.count()).select_from(Ticket).where(mine, ~located)) or 0
    joined = select(HotspotTicket.ticket_id).where(HotspotTicket.hotspot_id == spot.id)
    for lat, lon, number in db.session.execute(select(Ticket.lat, Ticket.lon, Ticket.number).where(
            Ticket.id.in_(joined), Ticket.category_id != spot.category_id)):
        if lat is None or lon is None:
            missing += 1
        elif len(rows) < MAP_POINTS:
            rows.append((lat, lon, number))
    return [(float(lat), float(lon), number) for lat, lon, number in rows], int(missing)

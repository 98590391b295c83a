"""What a recurring problem is made of (services/hotspots.py): the fine groups added up to
each level, the rule of the narrowest place, and what a kept cluster shows besides its
counts — its latest tickets, the names of its place and handlers, its typical wording."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, and_, literal, or_, select

from ticketing.extensions import db
from ticketing.models import Building, Community, Complex, Grid, PropertyCompany, Team, Ticket, User
from ticketing.models.hotspots import LEVELS
from ticketing.services import hotspot_texts, privacy
from ticketing.services.hotspot_count import (
    FINE_COLUMNS,
    Cells,
    Fine,
    Handler,
    Key,
    Read,
    Regrouping,
    Span,
    among,
    counted,
    latest_by_key,
    on_postgres,
    read_latest,
)

SAMPLE = 20  # latest tickets kept per cluster
EXPLAINED_SHARE = 0.8  # a cluster one level down holding this share explains its parent


@dataclass
class Tally:
    """One candidate cluster, added up from the fine groups."""

    key: Key
    street_id: int
    community_id: int
    grid_id: int | None
    weekly: list[int]
    count: int = 0
    previous: int = 0
    unsatisfied: int = 0
    reopened: int = 0
    merged: int = 0
    first: datetime | None = None
    last: datetime | None = None
    parts: Counter[Key] = field(default_factory=Counter)  # the window's tickets per cluster one level down
    handlers: Counter[Handler] = field(default_factory=Counter)


def keys_of(fine: Fine) -> list[Key]:
    """The clusters a fine group's tickets count in, most specific first."""
    _street, community, grid, cx, building, category = fine
    keys = [(level, place, category) for level, place in (("building", building), ("complex", cx), ("grid", grid))
            if place is not None]
    return [*keys, ("community", community, category)]


def roll_up(s: Span, cells: Cells, handlers: dict[Fine, Counter[Handler]]) -> dict[Key, Tally]:
    """Every candidate cluster at each of the four levels."""
    tallies: dict[Key, Tally] = {}
    for fine, parts in cells.items():
        keys = keys_of(fine)
        current = sum(cell.count for part, cell in parts.items() if part >= 0)
        for i, key in enumerate(keys):
            tally = tallies.get(key)
            if tally is None:
                grid = fine[2] if key[0] != "community" else None
                tally = tallies[key] = Tally(key, fine[0], fine[1], grid, [0] * len(s.weeks))
            for part, cell in parts.items():
                if part < 0:
                    tally.previous += cell.count
                    continue
                tally.count += cell.count
                tally.unsatisfied += cell.unsatisfied
                tally.reopened += cell.reopened
                tally.merged += cell.merged
                tally.weekly[part] += cell.count
                if cell.count > 0 and cell.first is not None and cell.last is not None:
                    tally.first = cell.first if tally.first is None else min(tally.first, cell.first)
                    tally.last = cell.last if tally.last is None else max(tally.last, cell.last)
            if i > 0 and current:
                tally.parts[keys[i - 1]] += current
            tally.handlers.update(handlers.get(fine, Counter()))
    return tallies


def kept(tallies: dict[Key, Tally], min_count: int) -> list[Tally]:
    """The clusters over the threshold that no narrower cluster explains (most specific
    level first, so that each level knows which of the one below are shown or explained)."""
    represented: set[Key] = set()
    out: list[Tally] = []
    by_level: dict[str, list[Tally]] = {level: [] for level in LEVELS}
    for tally in tallies.values():
        by_level[tally.key[0]].append(tally)
    for level in LEVELS:
        for tally in by_level[level]:
            if tally.count <= 0:
                continue
            if any(n >= EXPLAINED_SHARE * tally.count and child in represented for child, n in tally.parts.items()):
                represented.add(tally.key)
            elif tally.count >= min_count:
                represented.add(tally.key)
                out.append(tally)
    return out


def samples(s: Span, cells: Cells, chosen: list[Tally], regrouping: Regrouping) -> dict[Key, list[Read]]:
    """The latest SAMPLE tickets of each chosen cluster: the database hands back the latest
    of each fine group under them (the latest of a cluster are among those), on PostgreSQL
    a building's through its index, the rest by one ranking of the window's tickets."""
    wanted = {tally.key for tally in chosen}
    pairs: set[tuple[int, int]] = set()
    loose: set[Key] = set()  # wanted clusters with tickets that have no building
    for fine, parts in cells.items():
        if not any(part >= 0 and cell.count > 0 for part, cell in parts.items()):
            continue
        keys = [key for key in keys_of(fine) if key in wanted]
        if keys and fine[4] is not None:
            pairs.add((fine[4], fine[5]))
        elif keys:
            loose.update(keys)
    if on_postgres():
        rows = latest_by_key(s, s.start, ("building_id", "category_id"), pairs, SAMPLE)
        rows += read_latest(sample_filter(s, loose, Ticket.building_id.is_(None)), FINE_COLUMNS[1:], SAMPLE) \
            if loose else []
    else:
        rows = read_latest(sample_filter(s, wanted), FINE_COLUMNS[1:], SAMPLE)
    pool = {row.id: row for row in rows}
    pool.update({i: row for i, row in regrouping.read.items() if row.created_at >= s.start})
    found: dict[Key, list[Read]] = {}
    for row in pool.values():
        street, community, grid, cx, building, own = row.fine
        category = regrouping.moves.get(row.id, own)
        for key in keys_of((street, community, grid, cx, building, category)):
            if key in wanted:
                found.setdefault(key, []).append(row)
    return {key: sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)[:SAMPLE]
            for key, rows in found.items()}


def sample_filter(s: Span, keys: set[Key], *more: ColumnElement[bool]) -> ColumnElement[bool]:
    """The window's counted tickets under any of these clusters' places and categories."""
    ids: dict[str, set[int]] = {level: set() for level in LEVELS}
    for level, place_id, _category in keys:
        ids[level].add(place_id)
    columns = dict(zip(LEVELS, (Ticket.building_id, Ticket.complex_id, Ticket.grid_id, Ticket.community_id),
                       strict=True))
    return and_(counted(s, s.start), or_(*[among(columns[level], ids[level]) for level in LEVELS]),
                among(Ticket.category_id, {key[2] for key in keys}), *more)


def place_labels(chosen: list[Tally]) -> dict[tuple[str, int], str]:
    """What each cluster's place is called: 红星小区3号楼, 红星小区, 东怡社区第一网格, 东怡社区
    (a building after its complex, a grid after its community, unless its name starts so)."""
    ids: dict[str, set[int]] = {level: set() for level in LEVELS}
    for tally in chosen:
        ids[tally.key[0]].add(tally.key[1])
    queries: dict[str, Select[Any]] = {
        "building": select(Building.id, Complex.name, Building.name).join(Complex, Building.complex_id == Complex.id)
        .where(among(Building.id, ids["building"])),
        "complex": select(Complex.id, literal(""), Complex.name).where(among(Complex.id, ids["complex"])),
        "grid": select(Grid.id, Community.name, Grid.name).join(Community, Grid.community_id == Community.id)
        .where(among(Grid.id, ids["grid"])),
        "community": select(Community.id, literal(""), Community.name).where(among(Community.id, ids["community"])),
    }
    return {(level, place): name if name.startswith(prefix) else prefix + name
            for level, query in queries.items() if ids[level] for place, prefix, name in db.session.execute(query)}


def handler_labels(chosen: list[Tally]) -> dict[Handler, str]:
    """The names of the people, teams and companies who handled the chosen clusters' tickets."""
    wanted: dict[str, set[int]] = {"user": set(), "team": set(), "company": set()}
    for tally in chosen:
        for kind, handler_id in tally.handlers:
            wanted[kind].add(handler_id)
    names: dict[Handler, str] = {}
    for kind, model, column in (("user", User, User.display_name), ("team", Team, Team.name),
                                ("company", PropertyCompany, PropertyCompany.name)):
        if wanted[kind]:
            names.update({(kind, i): name for i, name in db.session.execute(
                select(model.id, column).where(among(model.id, wanted[kind])))})
    return names


def wording(rows: list[Read]) -> str:
    """The typical text of a cluster's sample, masked (numbers, rooms, the requester's details)."""
    if not rows:
        return ""
    row = rows[hotspot_texts.typical([r.text for r in rows])]
    # mask_text reads only the requester's name, room and phone, which the row carries.
    return hotspot_texts.shortened(privacy.mask_text(row.text, cast(Ticket, row)))

"""Where a ticket belongs: a building, complex, grid, community and street, as ids.

Intake places every ticket with `resolve`: from the ids a channel gives, checked
against each other, else from a complex or building the address names. The places
above a building or complex are cached per process (services/refcache.py): they are
read for every ticket filed and change rarely.

Only open places are found: a deactivated place, or one under a deactivated place, is
never given to a new ticket (tickets already filed keep theirs).
"""
from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, Select, func, or_, select, true
from sqlalchemy.orm import aliased

from ticketing.extensions import db
from ticketing.models import Building, Community, Complex, Grid, Street
from ticketing.services import refcache


@dataclass(frozen=True)
class Placement:
    """Where a ticket belongs, as far as it could be told: ids from the street down."""

    street_id: int
    community_id: int
    grid_id: int | None = None
    complex_id: int | None = None
    building_id: int | None = None


def _places_above(query: Select[Any]) -> Placement | None:
    row = db.session.execute(query).one_or_none()
    return None if row is None else Placement(*row)


def _open(query: Select[Any]) -> Select[Any]:
    """The query joined up to the street, keeping only rows whose places are all active."""
    return query.join(Community, Grid.community_id == Community.id).join(Street, Community.street_id == Street.id) \
        .where(Grid.active.is_(True), Community.active.is_(True), Street.active.is_(True))


# Up to this many open buildings are kept as one map per process: a street office's
# (the bench street has 10,000) in one query a minute instead of one per building
# first met. Beyond it each building is looked up and kept on its own.
BUILDING_MAP_LIMIT = 50_000


def building_place(building_id: int) -> Placement | None:
    """The building and the places above it; None for an unknown or deactivated one (cached).
    A building that lies in another grid than its complex is placed in its own grid.

    From the map of every open building; one the map lacks (added since it was read,
    or past the limit) is looked up on its own, so a new building is placed at once."""
    found = (refcache.remember(("building places",), _open_buildings) or {}).get(building_id)
    if found is not None:
        return found
    return refcache.remember(("building place", building_id),
                             lambda: _places_above(_buildings().where(Building.id == building_id)))


def _buildings() -> Select[Any]:
    """Open buildings with the places above them, as `Placement` columns."""
    return _open(
        select(Community.street_id, Community.id, Grid.id, Complex.id, Building.id)
        .join(Complex, Building.complex_id == Complex.id)
        .join(Grid, func.coalesce(Building.grid_id, Complex.grid_id) == Grid.id)
    ).where(Building.active.is_(True), Complex.active.is_(True))


def _open_buildings() -> dict[int, Placement]:
    """Every open building's placement by id; empty past `BUILDING_MAP_LIMIT`."""
    rows = db.session.execute(_buildings().limit(BUILDING_MAP_LIMIT + 1)).all()
    if len(rows) > BUILDING_MAP_LIMIT:
        return {}
    return {row[4]: Placement(*row) for row in rows}


def complex_place(complex_id: int) -> Placement | None:
    """The complex and the places above it; None for an unknown or deactivated one (cached as above)."""
    return refcache.remember(("complex place", complex_id), lambda: _places_above(_open(
        select(Community.street_id, Community.id, Grid.id, Complex.id)
        .join(Grid, Complex.grid_id == Grid.id))
        .where(Complex.id == complex_id, Complex.active.is_(True))))


def community_place(community_id: int) -> Placement | None:
    """The community and its street; None for an unknown or deactivated one (cached as above)."""
    return refcache.remember(("community place", community_id), lambda: _places_above(
        select(Community.street_id, Community.id).join(Street, Community.street_id == Street.id)
        .where(Community.id == community_id, Community.active.is_(True), Street.active.is_(True))))


def grid_place(grid_id: int) -> Placement | None:
    """The grid and the places above it; None for an unknown or deactivated one (cached as above)."""
    return refcache.remember(("grid place", grid_id), lambda: _places_above(_open(
        select(Community.street_id, Community.id, Grid.id).select_from(Grid)).where(Grid.id == grid_id)))


@dataclass(frozen=True)
class CommunityEntry:
    """A community as the doors list and choose it: ids, code, name, and whether it takes
    new tickets (it and its street are active)."""

    id: int
    street_id: int
    code: str
    name: str
    open: bool


def communities() -> tuple[CommunityEntry, ...]:
    """Every community, in code order (cached): the doors' lists and scopes read no row."""
    return refcache.remember(("communities",), lambda: tuple(
        CommunityEntry(c_id, street_id, code, name, bool(c_active and s_active))
        for c_id, street_id, code, name, c_active, s_active in db.session.execute(
            select(Community.id, Community.street_id, Community.code, Community.name, Community.active,
                   Street.active).join(Street, Community.street_id == Street.id).order_by(Community.code))
    )) or ()


def community_open(community: Community) -> bool:
    """True when the community and its street are active: new tickets may be filed there."""
    return community.active and community.street.active


def grid_open(grid: Grid) -> bool:
    """True when the grid and the places above it are active."""
    return grid.active and community_open(grid.community)


@dataclass(frozen=True)
class Named:
    """A complex or building as free text may name it: its id, grid and names (stripped)."""

    id: int
    grid_id: int | None
    names: tuple[str, ...]
    buildings: tuple[Named, ...] = ()


def longest(candidates: Iterable[Named], text: str) -> tuple[Named | None, int]:
    """The candidate the text names with the longest name, and that length: 锦华苑二期 wins
    over 锦华苑 and 11号楼 over 1号楼, whichever comes first; the first on a tie."""
    best, best_length = None, 0
    for candidate in candidates:
        for name in candidate.names:
            if len(name) > best_length and name in text:
                best, best_length = candidate, len(name)
    return best, best_length


@dataclass(frozen=True)
class CommunityNames:
    """A community's open complexes and buildings with their names, in the order they are tried."""

    street_id: int
    open: bool
    complexes: tuple[Named, ...]


def _names(name: str, aliases: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in [name, *(aliases or "").splitlines()] if n.strip())


def _load_names(communities: ColumnElement[bool]) -> dict[int, CommunityNames]:
    """Read the open complexes and buildings of the communities `communities` selects, in
    code order: three statements however many there are, once per `refcache.TTL`."""
    found = db.session.execute(select(Community.id, Community.street_id, Community.active, Street.active)
                               .join(Street, Community.street_id == Street.id)
                               .where(communities).order_by(Community.code)).all()
    if not found:
        return {}
    # The order of Community.grids, Grid.complexes and Complex.buildings (models/places.py).
    open_grids = (Grid.active.is_(True), Complex.active.is_(True), Grid.community_id.in_(select(Community.id).join(
        Street, Community.street_id == Street.id).where(communities, Community.active.is_(True), Street.active.is_(True))))
    complexes = db.session.execute(
        select(Grid.community_id, Complex.id, Complex.grid_id, Complex.name, Complex.aliases)
        .join(Grid, Complex.grid_id == Grid.id).where(*open_grids)
        .order_by(Grid.code, Complex.name, Complex.id)).all()
    own_grid = aliased(Grid)
    buildings: dict[int, list[Named]] = {}
    for b_id, complex_id, grid_id, name, aliases in db.session.execute(
        select(Building.id, Building.complex_id, Building.grid_id, Building.name, Building.aliases)
        .join(Complex, Building.complex_id == Complex.id).join(Grid, Complex.grid_id == Grid.id)
        .outerjoin(own_grid, Building.grid_id == own_grid.id)
        .where(*open_grids, Building.active.is_(True), or_(Building.grid_id.is_(None), own_grid.active.is_(True)))
        .order_by(Building.name, Building.id)):
        buildings.setdefault(complex_id, []).append(Named(b_id, grid_id, _names(name, aliases)))
    of_community: dict[int, list[Named]] = {}
    for community_id, c_id, grid_id, name, aliases in complexes:
        of_community.setdefault(community_id, []).append(
            Named(c_id, grid_id, _names(name, aliases), tuple(buildings.get(c_id, ()))))
    return {c_id: CommunityNames(street_id, bool(c_active and s_active), tuple(of_community.get(c_id, ())))
            for c_id, street_id, c_active, s_active in found}


def community_names(community_id: int) -> CommunityNames | None:
    """The names free text may use for the community's places; None for an unknown community (cached)."""
    return refcache.remember(("community names", community_id),
                             lambda: _load_names(Community.id == community_id).get(community_id))


def communities_naming_a_complex(text: str) -> set[int]:
    """The communities one of whose open complexes the text names (as `place_in` finds
    them): every complex name of the city tested once against the text normalised once,
    from one cached list, where asking community by community normalised it for each."""
    names = refcache.remember(("complex names",), lambda: tuple(
        (name, community_id) for community_id, found in _load_names(true()).items()
        for complex_ in found.complexes for name in complex_.names)) or ()
    text = unicodedata.normalize("NFKC", text)
    return {community_id for name, community_id in names if name in text}


def street_names(street_id: int) -> tuple[tuple[int, CommunityNames], ...]:
    """`community_names` of every community of the street, in code order, read at once (cached)."""
    return refcache.remember(("street names", street_id),
                             lambda: tuple(_load_names(Community.street_id == street_id).items())) or ()


def _place(names: CommunityNames, community_id: int, text: str) -> Placement:
    return _placed(names, community_id, text)[0]


def _placed(names: CommunityNames, community_id: int, text: str) -> tuple[Placement, int]:
    """The placement, and how long the complex's name found in the text is (0: none)."""
    placed = Placement(names.street_id, community_id)
    text = unicodedata.normalize("NFKC", text)  # ３栋 and 3栋 are the same building
    found, length = longest(names.complexes, text)
    if found is None:
        return placed, 0
    placed = replace(placed, grid_id=found.grid_id, complex_id=found.id)
    building, _ = longest(found.buildings, text)
    if building is None:
        return placed, length
    return replace(placed, grid_id=building.grid_id or found.grid_id, building_id=building.id), length


def place_in(community_id: int, text: str) -> Placement | None:
    """`place_from_text` by the community's id, from the cached names; None for an unknown community."""
    names = community_names(community_id)
    return None if names is None else _place(names, community_id, text)


def place_in_streets(street_ids: Sequence[int], text: str) -> Placement | None:
    """The complex (and building) of these streets' communities the text names with the
    longest name (the first on a tie), if any."""
    best, best_length = None, 0
    for street_id in street_ids:
        for community_id, names in street_names(street_id):
            placed, length = _placed(names, community_id, text)
            if length > best_length:
                best, best_length = placed, length
    return best


def place_from_text(community: Community, text: str) -> Placement:
    """Find a complex and building of the community named in free text, if any.

    Only open places are found; the names come from the cache (`community_names`), so
    placing by text reads nothing per request.
    """
    return place_in(community.id, text) or Placement(community.street_id, community.id)


def resolve(building_id: int | None, complex_id: int | None, community_id: int | None, grid_id: int | None,
            address_text: str, errors: dict[str, object]) -> Placement | None:
    """Check the place ids against each other and fill in what follows from them (and,
    at community level, the complex the address names); each problem goes in `errors`
    under its field's name."""
    unknown = _l("Choose a place from the list.")
    above: Placement | None = None  # of the building, else of the complex
    if building_id:
        above = building_place(building_id)
        if above is None:
            errors["building_id"] = unknown
            return None
    elif complex_id:
        above = complex_place(complex_id)
    if complex_id and (above is None or above.complex_id != complex_id):
        errors["complex_id"] = unknown
        return None
    if above is not None:
        if community_id and above.community_id != community_id:
            errors["community_id"] = _l("Choose your community.")
            return None
        return above
    community = community_place(community_id) if community_id else None
    if community is None:
        errors["community_id"] = _l("Choose your community.")
        return None
    grid = grid_place(grid_id) if grid_id else None
    if grid_id and (grid is None or grid.community_id != community.community_id):
        errors["grid_id"] = unknown
        return None
    if address_text:
        found = place_in(community.community_id, address_text)
        if found is not None and found.complex_id is not None:
            return found
    return grid or community

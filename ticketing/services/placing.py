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
from dataclasses import dataclass, replace
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, select

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


def building_place(building_id: int) -> Placement | None:
    """The building and the places above it; None for an unknown or deactivated one (cached).
    A building that lies in another grid than its complex is placed in its own grid."""
    return refcache.remember(("building place", building_id), lambda: _places_above(_open(
        select(Community.street_id, Community.id, Grid.id, Complex.id, Building.id)
        .join(Complex, Building.complex_id == Complex.id)
        .join(Grid, func.coalesce(Building.grid_id, Complex.grid_id) == Grid.id))
        .where(Building.id == building_id, Building.active.is_(True), Complex.active.is_(True))))


def complex_place(complex_id: int) -> Placement | None:
    """The complex and the places above it; None for an unknown or deactivated one (cached as above)."""
    return refcache.remember(("complex place", complex_id), lambda: _places_above(_open(
        select(Community.street_id, Community.id, Grid.id, Complex.id)
        .join(Grid, Complex.grid_id == Grid.id))
        .where(Complex.id == complex_id, Complex.active.is_(True))))


def community_open(community: Community) -> bool:
    """True when the community and its street are active: new tickets may be filed there."""
    return community.active and community.street.active


def grid_open(grid: Grid) -> bool:
    """True when the grid and the places above it are active."""
    return grid.active and community_open(grid.community)


def place_from_text(community: Community, text: str) -> Placement:
    """Find a complex and building of the community named in free text, if any."""
    text = unicodedata.normalize("NFKC", text)  # ３栋 and 3栋 are the same building
    found_complex: Complex | None = None
    if not community_open(community):
        return Placement(community.street_id, community.id)
    for grid in community.grids:
        if not grid.active:
            continue
        for cx in grid.complexes:
            if not cx.active:
                continue
            names = [cx.name, *cx.aliases.splitlines()]
            if any(n.strip() and n.strip() in text for n in names):
                found_complex = cx
                break
        if found_complex:
            break
    if found_complex is None:
        return Placement(community.street_id, community.id)
    placed = Placement(community.street_id, community.id, found_complex.grid_id, found_complex.id)
    for building in found_complex.buildings:
        names = [building.name, *building.aliases.splitlines()]
        if building.active and (building.grid is None or building.grid.active) \
                and any(n.strip() and n.strip() in text for n in names):
            return replace(placed, grid_id=building.grid_id or found_complex.grid_id, building_id=building.id)
    return placed


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
    community = db.session.get(Community, community_id) if community_id else None
    if community is None or not community_open(community):
        errors["community_id"] = _l("Choose your community.")
        return None
    grid = db.session.get(Grid, grid_id) if grid_id else None
    if grid_id and (grid is None or grid.community_id != community.id or not grid.active):
        errors["grid_id"] = unknown
        return None
    if address_text:
        found = place_from_text(community, address_text)
        if found.complex_id is not None:
            return found
    return Placement(community.street_id, community.id, grid.id if grid is not None else None)

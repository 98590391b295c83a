"""What a governance task may name: the places and the people or units in the user's scope.

The task form offers these lists, and services/governance.py checks a posted choice
against the same lists, so a task never names a place or a person the supervisor may
not see. Values are "<kind>:<id>": `community:3`, `grid:7`, `complex:12`, `building:40`
for places; `user:5`, `team:2`, `company:1` for who is responsible.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, and_, false, or_, select, true
from sqlalchemy.orm import joinedload, selectinload

from ticketing.extensions import db
from ticketing.labels import ROLE_LABELS
from ticketing.models import (
    Building,
    Community,
    Complex,
    Grid,
    PropertyCompany,
    Role,
    Street,
    TaskLevel,
    Team,
    User,
)
from ticketing.services import scope

# A group of a select: its label, then (value, label) pairs.
Group = tuple[str, list[tuple[str, str]]]

LEVEL_LABELS: dict[str, Any] = {
    TaskLevel.COMMUNITY: _l("Community"), TaskLevel.GRID: _l("Grid"),
    TaskLevel.COMPLEX: _l("Complex or courtyard"), TaskLevel.BUILDING: _l("Building"),
}


@dataclass(frozen=True)
class Place:
    """A place a task covers, with what scope and the ledgers need of it."""

    level: str
    id: int
    name: str
    grid_id: int | None  # None for a community
    community_id: int
    street_id: int

    @property
    def value(self) -> str:
        """The place as the form posts it."""
        return f"{self.level}:{self.id}"


def parse(value: str | None) -> tuple[str, int] | None:
    """`"complex:12"` → ("complex", 12); anything else → None."""
    kind, _, raw = (value or "").partition(":")
    return (kind, int(raw)) if kind and raw.isdigit() and len(raw) < 10 else None


def find_place(level: str, place_id: int | None) -> Place | None:
    """The place of that level and id with the grid, community and street it lies in."""
    if place_id is None:
        return None
    if level == TaskLevel.BUILDING:
        building = db.session.get(Building, place_id)
        if building is None:
            return None
        # A building may lie in another grid than its complex; its tickets go to that grid.
        lies_in = building.grid or building.complex.grid
        return Place(level, building.id, f"{building.complex.name} {building.name}", lies_in.id,
                     lies_in.community_id, lies_in.community.street_id)
    if level == TaskLevel.COMPLEX:
        cx = db.session.get(Complex, place_id)
        return None if cx is None else Place(level, cx.id, cx.name, cx.grid_id, cx.grid.community_id,
                                             cx.grid.community.street_id)
    if level == TaskLevel.GRID:
        grid = db.session.get(Grid, place_id)
        return None if grid is None else Place(level, grid.id, f"{grid.community.name} {grid.name}", grid.id,
                                               grid.community_id, grid.community.street_id)
    if level == TaskLevel.COMMUNITY:
        community = db.session.get(Community, place_id)
        return None if community is None else Place(level, community.id, community.name, None, community.id,
                                                    community.street_id)
    return None


def place_names(places: Iterable[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """The names of many places at once (a query per level): for the task lists."""
    wanted: dict[str, set[int]] = {}
    for level, place_id in places:
        wanted.setdefault(level, set()).add(place_id)
    names: dict[tuple[str, int], str] = {}
    queries: dict[str, Any] = {
        TaskLevel.BUILDING: lambda ids: select(Building.id, Complex.name + " " + Building.name)
        .join(Complex, Building.complex_id == Complex.id).where(Building.id.in_(ids)),
        TaskLevel.COMPLEX: lambda ids: select(Complex.id, Complex.name).where(Complex.id.in_(ids)),
        TaskLevel.GRID: lambda ids: select(Grid.id, Community.name + " " + Grid.name)
        .join(Community, Grid.community_id == Community.id).where(Grid.id.in_(ids)),
        TaskLevel.COMMUNITY: lambda ids: select(Community.id, Community.name).where(Community.id.in_(ids)),
    }
    for level, ids in wanted.items():
        if level in queries:
            names.update({(level, row_id): name for row_id, name in db.session.execute(queries[level](ids))})
    return names


def communities_in(user: User) -> Select[tuple[int]]:
    """The ids of the communities a supervisor, dispatcher or admin covers."""
    query = select(Community.id)
    if user.role == Role.ADMIN:
        return query
    if user.role in (Role.SUPERVISOR, Role.DISPATCHER):
        if user.community_id is not None:
            return query.where(Community.id == user.community_id)
        if user.street_id is not None:
            return query.where(Community.street_id == user.street_id)
    return query.where(false())


def place_options(user: User) -> list[Group]:
    """The active communities, grids, complexes and buildings in scope, a group per level."""
    ids = communities_in(user)
    communities = db.session.scalars(select(Community).join(Street, Community.street_id == Street.id).where(
        Community.id.in_(ids), Community.active.is_(True), Street.active.is_(True)).order_by(Community.code)).all()
    open_ids = [c.id for c in communities]
    grids = db.session.execute(
        select(Grid.id, Community.name, Grid.name).join(Community, Grid.community_id == Community.id)
        .where(Grid.community_id.in_(open_ids), Grid.active.is_(True)).order_by(Grid.code)).all()
    complexes = db.session.execute(
        select(Complex.id, Grid.name, Complex.name).join(Grid, Complex.grid_id == Grid.id)
        .where(Grid.community_id.in_(open_ids), Grid.active.is_(True), Complex.active.is_(True))
        .order_by(Grid.code, Complex.name)).all()
    buildings = db.session.execute(
        select(Building.id, Complex.name, Building.name).join(Complex, Building.complex_id == Complex.id)
        .join(Grid, Complex.grid_id == Grid.id)
        .where(Grid.community_id.in_(open_ids), Grid.active.is_(True), Complex.active.is_(True),
               Building.active.is_(True)).order_by(Grid.code, Complex.name, Building.name)).all()
    groups: list[Group] = [
        (str(LEVEL_LABELS[TaskLevel.COMMUNITY]), [(f"community:{c.id}", c.name) for c in communities]),
        (str(LEVEL_LABELS[TaskLevel.GRID]), [(f"grid:{i}", f"{c} · {g}") for i, c, g in grids]),
        (str(LEVEL_LABELS[TaskLevel.COMPLEX]), [(f"complex:{i}", _("%(complex)s (%(grid)s)", complex=cx, grid=g))
                                                 for i, g, cx in complexes]),
        (str(LEVEL_LABELS[TaskLevel.BUILDING]), [(f"building:{i}", f"{cx} {b}") for i, cx, b in buildings]),
    ]
    return [group for group in groups if group[1]]


def _where(user: User) -> str:
    """Where a person works, for their line in the list."""
    if user.company is not None:
        return user.company.name
    if user.team is not None:
        return user.team.name
    if user.grids:
        return ", ".join(grid.name for grid in user.grids)
    place = user.community or user.street
    return place.name if place is not None else ""


def people(user: User) -> list[User]:
    """The active staff a task in `user`'s scope may name: those `user` manages, and the
    supervisors and dispatchers of their community or street (all staff, for an admin)."""
    if user.role == Role.ADMIN:
        clause: Any = true()
    else:
        area = (User.community_id == user.community_id if user.community_id is not None else
                User.street_id == user.street_id if user.street_id is not None else false())
        clause = or_(scope.managed_people(user),
                     and_(User.role.in_((Role.SUPERVISOR, Role.DISPATCHER)), area))
    return list(db.session.scalars(
        select(User).where(User.active.is_(True), clause)
        .options(joinedload(User.company), joinedload(User.team), joinedload(User.community),
                 joinedload(User.street), selectinload(User.grids))
        .order_by(User.role, User.display_name, User.id)))


def responsible_options(user: User) -> list[Group]:
    """Who may be made responsible: people, volunteer and mediation teams, property companies."""
    communities = communities_in(user)
    teams = db.session.scalars(select(Team).where(Team.active.is_(True), Team.community_id.in_(communities))
                               .order_by(Team.name)).all()
    company_ids: Any = (select(PropertyCompany.id) if user.role == Role.ADMIN else
                        select(Complex.property_company_id).join(Grid, Complex.grid_id == Grid.id)
                        .where(Grid.community_id.in_(communities)))
    companies = db.session.scalars(select(PropertyCompany).where(
        PropertyCompany.active.is_(True), PropertyCompany.id.in_(company_ids)).order_by(PropertyCompany.name)).all()
    groups: list[Group] = [
        (str(_l("People")), [(f"user:{p.id}", _("%(name)s (%(role)s · %(where)s)", name=p.display_name,
                                                 role=ROLE_LABELS.get(p.role, p.role), where=_where(p)))
                             for p in people(user)]),
        (str(_l("Teams")), [(f"team:{t.id}", t.name) for t in teams]),
        (str(_l("Property companies")), [(f"company:{c.id}", c.name) for c in companies]),
    ]
    return [group for group in groups if group[1]]


def values(groups: list[Group]) -> set[str]:
    """Every value of grouped options."""
    return {value for _label, options in groups for value, _name in options}

"""The places and categories a staff user works with, as select choices.

Shared by the console's and the patrol's forms, so it lives beside ticketing/forms.py
rather than in either blueprint.

A dispatcher or supervisor of a community sees that community; one of the whole
street sees every community of it; an admin sees everything. This mirrors
`services.scope.ticket_scope` for the lists the console offers. The lists a new
ticket chooses from hold active places only; the grid filter of the queue keeps the
deactivated grids too, whose old tickets must still be found.
"""
from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from sqlalchemy import Select, select
from sqlalchemy.orm import joinedload

from ticketing.extensions import db
from ticketing.labels import localized_name
from ticketing.models import Building, Category, Community, Complex, Grid, Role, Street, User
from ticketing.services.catalog import category_groups

Choices = list[tuple[Any, str]]
GroupedChoices = dict[str, Choices]


def _communities_query(user: User, active_only: bool = True) -> Select[tuple[Community]] | None:
    query = select(Community).order_by(Community.code)
    if active_only:
        query = query.join(Street, Community.street_id == Street.id).where(
            Community.active.is_(True), Street.active.is_(True))
    if user.role == Role.ADMIN:
        return query
    if user.community_id is not None:
        return query.where(Community.id == user.community_id)
    if user.street_id is not None:
        return query.where(Community.street_id == user.street_id)
    return None


def communities_in_scope(user: User) -> list[Community]:
    """The active communities `user` may file tickets in."""
    query = _communities_query(user)
    return list(db.session.scalars(query)) if query is not None else []


def grids_in_scope(user: User) -> list[Grid]:
    """The grids of the communities in `user`'s scope, deactivated ones too (to find their
    tickets), with their community loaded."""
    query = _communities_query(user, active_only=False)
    if query is None:
        return []
    ids = query.with_only_columns(Community.id).scalar_subquery()
    return list(db.session.scalars(
        select(Grid).where(Grid.community_id.in_(ids))
        .options(joinedload(Grid.community)).order_by(Grid.code)
    ))


def grid_label(grid: Grid, many_communities: bool) -> str:
    """A grid's name, prefixed by its community when several are in scope."""
    return f"{grid.community.name} · {grid.name}" if many_communities else grid.name


def grid_choices(grids: list[Grid]) -> Choices:
    """Choices for a grid filter."""
    many = len({g.community_id for g in grids}) > 1
    return [(g.id, grid_label(g, many)) for g in grids]


def group_choices() -> Choices:
    """Choices for a category-group filter: every group, so tickets filed under one no
    longer in use can still be found; those groups come last, marked."""
    groups = db.session.scalars(select(Category).where(Category.parent_id.is_(None))
                                .order_by(Category.active.desc(), Category.sort_order, Category.id))
    return [(g.id, localized_name(g) if g.active else _("%(name)s (not in use)", name=localized_name(g)))
            for g in groups]


def category_choices() -> GroupedChoices:
    """Active leaf categories grouped under their top-level category."""
    return {
        localized_name(g.group): [(c.id, localized_name(c)) for c in g.options]
        for g in category_groups()
    }


def complex_choices(communities: list[Community]) -> GroupedChoices:
    """Complexes of the communities, grouped by grid."""
    ids = [c.id for c in communities]
    many = len(ids) > 1
    complexes = db.session.scalars(
        select(Complex).join(Complex.grid).where(Grid.community_id.in_(ids), Grid.active.is_(True),
                                                 Complex.active.is_(True))
        .options(joinedload(Complex.grid).joinedload(Grid.community))
        .order_by(Grid.code, Complex.name)
    )
    grouped: GroupedChoices = {}
    for cx in complexes:
        grouped.setdefault(grid_label(cx.grid, many), []).append((cx.id, cx.name))
    return grouped


def building_choices(communities: list[Community]) -> GroupedChoices:
    """Buildings of the communities, grouped by complex."""
    ids = [c.id for c in communities]
    many = len(ids) > 1
    buildings = db.session.scalars(
        select(Building).join(Building.complex).join(Complex.grid)
        .where(Grid.community_id.in_(ids), Grid.active.is_(True), Complex.active.is_(True),
               Building.active.is_(True))
        .options(joinedload(Building.complex).joinedload(Complex.grid).joinedload(Grid.community))
        .order_by(Grid.code, Complex.name, Building.name)
    )
    grouped: GroupedChoices = {}
    for building in buildings:
        cx = building.complex
        label = f"{cx.grid.community.name} · {cx.name}" if many else cx.name
        grouped.setdefault(label, []).append((building.id, building.name))
    return grouped

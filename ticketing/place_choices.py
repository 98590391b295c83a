"""The places and categories a staff user works with, as select choices.

Shared by the console's and the patrol's forms, so it lives beside ticketing/forms.py
rather than in either blueprint.

A dispatcher or supervisor of a community sees that community; one of the whole
street sees every community of it; an admin sees everything. This mirrors
`services.scope.ticket_scope` for the lists the console offers. The lists a new
ticket chooses from hold active places only; the grid filter of the queue keeps the
deactivated grids too, whose old tickets must still be found.

The lists a new ticket chooses from are built from cached rows (services/refcache.py),
so that a form posted to file a ticket reads no catalogue or place row to check its
choices, however many there are; a change made in another process shows within
`refcache.TTL`, as it does for intake's own placing.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import Select, select
from sqlalchemy.orm import joinedload

from ticketing.extensions import db
from ticketing.labels import localized_name
from ticketing.models import Building, Category, Community, Complex, Grid, Role, Street, User
from ticketing.services import refcache
from ticketing.services.catalog import category_menu
from ticketing.services.placing import CommunityEntry, communities

Choices = list[tuple[Any, str]]
GroupedChoices = dict[str, Choices]
# Grouped choices as cached: (group label, ((value, label), ...)), ...
KeptChoices = tuple[tuple[str, tuple[tuple[Any, str], ...]], ...]


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


def communities_in_scope(user: User) -> list[CommunityEntry]:
    """The active communities `user` may file tickets in, in code order (from the cache)."""
    if user.role == Role.ADMIN:
        return [c for c in communities() if c.open]
    if user.community_id is not None:
        return [c for c in communities() if c.open and c.id == user.community_id]
    if user.street_id is not None:
        return [c for c in communities() if c.open and c.street_id == user.street_id]
    return []


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
    """Active leaf categories grouped under their top-level category (cached per language)."""
    locale = get_locale()
    return _grouped(refcache.remember(("category choices", locale.language if locale else None), lambda: tuple(
        (localized_name(g.group), tuple((c.id, localized_name(c)) for c in g.options)) for g in category_menu())))


def _grouped(kept: KeptChoices | None) -> GroupedChoices:
    """Cached grouped choices as a fresh dict the caller may change."""
    return {label: list(items) for label, items in kept or ()}


def _group(rows: Sequence[tuple[str, Any, str]]) -> KeptChoices:
    grouped: dict[str, list[tuple[Any, str]]] = {}
    for label, value, name in rows:
        grouped.setdefault(label, []).append((value, name))
    return tuple((label, tuple(items)) for label, items in grouped.items())


def complex_choices(communities: Sequence[CommunityEntry]) -> GroupedChoices:
    """Complexes of the communities, grouped by grid (cached per set of communities)."""
    ids = tuple(c.id for c in communities)
    many = len(ids) > 1

    def load() -> KeptChoices:
        complexes = db.session.scalars(
            select(Complex).join(Complex.grid).where(Grid.community_id.in_(ids), Grid.active.is_(True),
                                                     Complex.active.is_(True))
            .options(joinedload(Complex.grid).joinedload(Grid.community))
            .order_by(Grid.code, Complex.name)
        )
        return _group([(grid_label(cx.grid, many), cx.id, cx.name) for cx in complexes])

    return _grouped(refcache.remember(("complex choices", ids), load))


def building_choices(communities: Sequence[CommunityEntry]) -> GroupedChoices:
    """Buildings of the communities, grouped by complex (cached per set of communities)."""
    ids = tuple(c.id for c in communities)
    many = len(ids) > 1

    def load() -> KeptChoices:
        buildings = db.session.scalars(
            select(Building).join(Building.complex).join(Complex.grid)
            .where(Grid.community_id.in_(ids), Grid.active.is_(True), Complex.active.is_(True),
                   Building.active.is_(True))
            .options(joinedload(Building.complex).joinedload(Complex.grid).joinedload(Grid.community))
            .order_by(Grid.code, Complex.name, Building.name)
        )
        return _group([(f"{b.complex.grid.community.name} · {b.complex.name}" if many else b.complex.name,
                        b.id, b.name) for b in buildings])

    return _grouped(refcache.remember(("building choices", ids), load))


def grid_building_choices(grid_ids: Sequence[int]) -> GroupedChoices:
    """Buildings of these grids (a grid worker's own), grouped by complex, in grid order
    (cached per set of grids). Deactivated places take no new tickets: not offered."""
    ids = tuple(grid_ids)

    def load() -> KeptChoices:
        order = {grid_id: i for i, grid_id in enumerate(ids)}
        rows = list(db.session.execute(
            select(Complex.grid_id, Complex.name, Building.id, Building.name)
            .join(Building.complex).join(Complex.grid)
            .where(Grid.id.in_(ids), Grid.active.is_(True), Complex.active.is_(True), Building.active.is_(True))
            .order_by(Complex.name, Complex.id, Building.name, Building.id)))
        rows.sort(key=lambda row: order[row.grid_id])  # stable: complexes and buildings keep their order
        return _group([(cx_name, b_id, b_name) for _grid, cx_name, b_id, b_name in rows])

    return _grouped(refcache.remember(("grid building choices", ids), load))

"""Looking up the reference data residents and staff choose from."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ticketing.extensions import db
from ticketing.models import Category
from ticketing.services import refcache


@dataclass(frozen=True)
class CategoryGroup:
    """A top-level category with the categories a resident picks under it."""

    group: Category
    options: list[Category]


def category_groups() -> list[CategoryGroup]:
    """Active top-level categories in order, each with its active children.

    A group without children is offered as its own option, so no group is a dead end;
    a group whose categories are all deactivated is not offered at all.
    """
    groups = db.session.scalars(
        select(Category)
        .where(Category.parent_id.is_(None), Category.active.is_(True))
        .options(selectinload(Category.children))
        .order_by(Category.sort_order, Category.id)
    ).all()
    result = []
    for group in groups:
        options = [child for child in group.children if child.active]
        if group.children and not options:
            continue
        result.append(CategoryGroup(group, options or [group]))
    return result


def leaf_categories() -> list[Category]:
    """Active leaf categories in the catalogue's order (the keyword search order)."""
    return [c for g in category_groups() for c in g.options]


@dataclass(frozen=True)
class CategoryName:
    """A category as a form offers it: its id and its names (`labels.localized_name` reads them)."""

    id: int
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class MenuGroup:
    """`CategoryGroup` as ids and names."""

    group: CategoryName
    options: tuple[CategoryName, ...]


def _name(category: Category) -> CategoryName:
    return CategoryName(category.id, category.name_zh, category.name_en)


def category_menu() -> tuple[MenuGroup, ...]:
    """`category_groups` as ids and names, cached (services/refcache.py): what the staff
    forms offer, and check a posted category against, without reading the catalogue."""
    return refcache.remember(("category menu",), lambda: tuple(
        MenuGroup(_name(g.group), tuple(_name(c) for c in g.options)) for g in category_groups())) or ()

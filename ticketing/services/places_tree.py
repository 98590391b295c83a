"""The places tree the admin pages show: streets → communities → grids → complexes, with counts.

Read as plain columns in one query per level (no ORM objects), so a street of 1,000
grids and 20,000 buildings draws quickly; buildings are counted per complex and listed
on the complex's own page.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, or_, select, true

from ticketing.extensions import db
from ticketing.models import Building, Community, Complex, Grid, Street

LEVELS = ("street", "community", "grid", "complex")
SEARCH_LIMIT = 100


@dataclass
class Node:
    """A place in the tree, its children, and how many places of each kind lie under it."""

    kind: str
    id: int
    code: str
    name: str
    active: bool
    children: list[Node] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    has_boundary: bool = False


def tree(street_ids: list[int] | None = None) -> list[Node]:
    """Every street (or those given) with its places down to complexes, by code."""
    s = db.session
    where_street = Street.id.in_(street_ids) if street_ids is not None else true()
    streets = [Node("street", *row) for row in s.execute(
        select(Street.id, Street.code, Street.name, Street.active).where(where_street).order_by(Street.code))]
    by_id = {("street", n.id): n for n in streets}
    levels = (
        ("community", select(Community.id, Community.code, Community.name, Community.active, Community.street_id)
         .order_by(Community.code), "street"),
        ("grid", select(Grid.id, Grid.code, Grid.name, Grid.active, Grid.community_id,
                        Grid.boundary.is_not(None)).order_by(Grid.code), "community"),
        ("complex", select(Complex.id, Complex.code, Complex.name, Complex.active, Complex.grid_id)
         .order_by(Complex.code), "grid"),
    )
    for kind, query, parent_kind in levels:
        for row in s.execute(query):
            parent = by_id.get((parent_kind, row[4]))
            if parent is None:
                continue  # a street not shown
            node = Node(kind, row[0], row[1], row[2], row[3], has_boundary=bool(row[5]) if len(row) > 5 else False)
            parent.children.append(node)
            by_id[(kind, node.id)] = node
    buildings = dict(s.execute(select(Building.complex_id, func.count()).group_by(Building.complex_id)).tuples().all())
    for street in streets:
        _count(street, buildings)
    return streets


def _count(node: Node, buildings: dict[int, int]) -> dict[str, int]:
    """Fill in the counts of the places under `node`; returns them."""
    counts: dict[str, int] = {}
    if node.kind == "complex":
        counts["building"] = buildings.get(node.id, 0)
    for child in node.children:
        counts[child.kind] = counts.get(child.kind, 0) + 1
        for kind, n in _count(child, buildings).items():
            counts[kind] = counts.get(kind, 0) + n
    node.counts = counts
    return counts


@dataclass(frozen=True)
class Found:
    """A place a search found, with the names of the places above it."""

    kind: str
    id: int
    code: str
    name: str
    active: bool
    path: str


def search(text: str) -> list[Found]:
    """Places whose name, code or alias contains `text`, streets first."""
    s = db.session
    found: list[Found] = []
    streets = (select(Street.id, Street.code, Street.name, Street.active)
               .where(or_(Street.name.contains(text, autoescape=True), Street.code.contains(text, autoescape=True)))
               .limit(SEARCH_LIMIT))
    for pk, code, name, active in s.execute(streets):
        found.append(Found("street", pk, code, name, active, ""))
    communities = (select(Community.id, Community.code, Community.name, Community.active, Street.name)
                   .join(Street).where(or_(Community.name.contains(text, autoescape=True), Community.code.contains(text, autoescape=True)))
                   .limit(SEARCH_LIMIT))
    for pk, code, name, active, street in s.execute(communities):
        found.append(Found("community", pk, code, name, active, street))
    grids = (select(Grid.id, Grid.code, Grid.name, Grid.active, Community.name)
             .join(Community).where(or_(Grid.name.contains(text, autoescape=True), Grid.code.contains(text, autoescape=True)))
             .limit(SEARCH_LIMIT))
    for pk, code, name, active, community in s.execute(grids):
        found.append(Found("grid", pk, code, name, active, community))
    complexes = (select(Complex.id, Complex.code, Complex.name, Complex.active, Community.name, Grid.name)
                 .join(Grid, Complex.grid_id == Grid.id).join(Community)
                 .where(or_(Complex.name.contains(text, autoescape=True), Complex.code.contains(text, autoescape=True), Complex.aliases.contains(text, autoescape=True),
                            Complex.address.contains(text, autoescape=True))).limit(SEARCH_LIMIT))
    for pk, code, name, active, community, grid in s.execute(complexes):
        found.append(Found("complex", pk, code, name, active, f"{community} · {grid}"))
    buildings = (select(Building.id, Building.code, Building.name, Building.active, Community.name, Complex.name)
                 .join(Complex, Building.complex_id == Complex.id).join(Grid, Complex.grid_id == Grid.id)
                 .join(Community).where(or_(Building.name.contains(text, autoescape=True), Building.code.contains(text, autoescape=True),
                                            Building.aliases.contains(text, autoescape=True)))
                 .order_by(Complex.name, Building.name).limit(SEARCH_LIMIT))
    for pk, code, name, active, community, complex_name in s.execute(buildings):
        found.append(Found("building", pk, code, name, active, f"{community} · {complex_name}"))
    return found

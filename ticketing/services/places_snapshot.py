"""The places in Minhu as the workbook sees them: per kind, code → fields, parents as codes.

The importer compares the workbook with this, and the exporter writes it out; both
read plain columns (no ORM objects), so a street of 20,000 buildings loads in a
fraction of a second.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import Building, Community, Complex, Grid, PropertyCompany, Street, Team
from ticketing.services.places_workbook import split_aliases

# The kinds in the order they are written: parents before children.
KINDS = ("streets", "communities", "grids", "companies", "complexes", "buildings", "teams")
MODELS: dict[str, Any] = {"streets": Street, "communities": Community, "grids": Grid,
                          "companies": PropertyCompany, "complexes": Complex, "buildings": Building, "teams": Team}
# A field naming a parent → the parent's kind, and the model attribute holding its id.
PARENTS = {"street": ("streets", "street_id"), "community": ("communities", "community_id"),
           "grid": ("grids", "grid_id"), "company": ("companies", "property_company_id"),
           "complex": ("complexes", "complex_id")}


@dataclass
class Snapshot:
    """Every place, company and team: fields by kind and code, and ids by kind and code."""

    rows: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {k: {} for k in KINDS})
    ids: dict[str, dict[str, int]] = field(default_factory=lambda: {k: {} for k in KINDS})

    def street_of(self, kind: str, code: str) -> str | None:
        """The code of the street a row lies in (None for companies and unknown rows)."""
        row = self.rows[kind].get(code)
        if row is None or kind == "companies":
            return None
        if kind == "streets":
            return code
        parent = {"communities": ("streets", "street"), "grids": ("communities", "community"),
                  "complexes": ("grids", "grid"), "buildings": ("complexes", "complex"),
                  "teams": ("communities", "community")}[kind]
        return self.street_of(parent[0], row[parent[1]])


def aliases_text(text: str | None) -> str:
    """Aliases as the importer compares and stores them: one per line, trimmed."""
    return "\n".join(split_aliases(text or ""))


def _boundary(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text  # unreadable: compares unequal to any valid geometry, so an import replaces it


def load_snapshot() -> Snapshot:
    """Read every place, company and team."""
    snap = Snapshot()
    code_of: dict[str, dict[int, str]] = {k: {} for k in KINDS}

    def keep(kind: str, row_id: int, code: str, fields: dict[str, Any]) -> None:
        snap.rows[kind][code] = fields
        snap.ids[kind][code] = row_id
        code_of[kind][row_id] = code

    s = db.session
    for i, code, name in s.execute(select(Street.id, Street.code, Street.name)):
        keep("streets", i, code, {"name": name})
    for i, code, name, street in s.execute(select(Community.id, Community.code, Community.name,
                                                  Community.street_id)):
        keep("communities", i, code, {"name": name, "street": code_of["streets"].get(street)})
    for i, code, name, community, boundary in s.execute(select(Grid.id, Grid.code, Grid.name, Grid.community_id,
                                                               Grid.boundary)):
        keep("grids", i, code, {"name": name, "community": code_of["communities"].get(community),
                                "boundary": _boundary(boundary)})
    for i, code, name, phone in s.execute(select(PropertyCompany.id, PropertyCompany.code, PropertyCompany.name,
                                                 PropertyCompany.phone)):
        keep("companies", i, code, {"name": name, "phone": phone or None})
    for i, code, name, grid, company, aliases, address in s.execute(select(
            Complex.id, Complex.code, Complex.name, Complex.grid_id, Complex.property_company_id,
            Complex.aliases, Complex.address)):
        keep("complexes", i, code, {"name": name, "grid": code_of["grids"].get(grid),
                                    "company": code_of["companies"].get(company) if company else None,
                                    "aliases": aliases_text(aliases), "address": address or ""})
    for i, code, name, cx, aliases, grid in s.execute(select(Building.id, Building.code, Building.name,
                                                             Building.complex_id, Building.aliases,
                                                             Building.grid_id)):
        keep("buildings", i, code, {"name": name, "complex": code_of["complexes"].get(cx),
                                    "aliases": aliases_text(aliases),
                                    "grid": code_of["grids"].get(grid) if grid else None})
    for i, code, name, kind, community in s.execute(select(Team.id, Team.code, Team.name, Team.kind,
                                                           Team.community_id)):
        keep("teams", i, code, {"name": name, "kind": kind, "community": code_of["communities"].get(community)})
    return snap

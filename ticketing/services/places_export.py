"""Write the places workbook and the grid boundaries, and the empty template.

The export writes exactly what the importer reads, so importing an export changes
nothing.
"""
from __future__ import annotations

import json
from typing import IO, Any

from ticketing.services.geo_import import feature_collection
from ticketing.services.places_import import TEAM_KIND_NAMES
from ticketing.services.places_snapshot import KINDS, Snapshot, load_snapshot
from ticketing.services.places_workbook import (
    ADDRESS,
    ALIASES,
    CODE,
    COMMUNITY_CODE,
    COMPANY_CODE,
    COMPLEX_CODE,
    GRID_CODE,
    KIND,
    NAME,
    PHONE,
    SHEETS,
    STREET_CODE,
    Row,
    Sheet,
    read_workbook,
    write_workbook,
)
from ticketing.services.staff_workbook import PEOPLE

ALIAS_JOINER = "、"
COLUMNS = {"street": STREET_CODE, "community": COMMUNITY_CODE, "grid": GRID_CODE, "company": COMPANY_CODE,
           "complex": COMPLEX_CODE, "phone": PHONE, "address": ADDRESS}


def _cells(kind: str, code: str, fields: dict[str, Any]) -> dict[str, str]:
    """A row of the workbook for one place, company or team."""
    cells = {CODE: code, NAME: fields["name"]}
    for name, header in COLUMNS.items():
        if name in fields:
            cells[header] = fields[name] or ""
    if "aliases" in fields:
        cells[ALIASES] = ALIAS_JOINER.join(fields["aliases"].splitlines())
    if kind == "teams":
        cells[KIND] = TEAM_KIND_NAMES.get(fields["kind"], fields["kind"])
    return cells


def _selected(snap: Snapshot, streets: list[str] | None) -> dict[str, list[str]]:
    """The codes to export per kind, sorted: everything, or what lies in `streets`
    (and the companies of their complexes)."""
    chosen: dict[str, list[str]] = {}
    for kind in KINDS:
        codes = sorted(snap.rows[kind])
        if streets is not None and kind != "companies":
            codes = [c for c in codes if snap.street_of(kind, c) in streets]
        chosen[kind] = codes
    if streets is not None:
        used = {snap.rows["complexes"][c]["company"] for c in chosen["complexes"]}
        chosen["companies"] = [c for c in chosen["companies"] if c in used]
    return chosen


def export_places(streets: list[str] | None = None) -> tuple[bytes, dict[str, Any]]:
    """The workbook (.xlsx bytes) and the grid boundaries (a FeatureCollection) of every
    street, or of the streets whose codes are given."""
    snap = load_snapshot()
    chosen = _selected(snap, streets)
    sheets = {kind: [_cells(kind, code, snap.rows[kind][code]) for code in chosen[kind]] for kind in KINDS}
    grids = [(code, snap.rows["grids"][code]["name"], _geometry_text(snap.rows["grids"][code]["boundary"]))
             for code in chosen["grids"]]
    return write_workbook(sheets), feature_collection(grids)


def _geometry_text(geometry: Any) -> str | None:
    if geometry is None or isinstance(geometry, str):
        return None  # none, or unreadable
    return json.dumps(geometry, ensure_ascii=False)


def template(example: str | IO[bytes]) -> bytes:
    """The empty workbook to fill in: every sheet (places, then 人员), its headers with a note
    each, and one example row per sheet taken from `example` (the demo street's workbook)."""
    specs = (*SHEETS, PEOPLE)
    rows, _problems = read_workbook(example, specs)
    sheets = {s.key: [_fullest(rows[s.key], s).cells] if rows.get(s.key) else [] for s in specs}
    return write_workbook(sheets, specs)


def _fullest(rows: list[Row], sheet: Sheet) -> Row:
    """The first row with every column filled in (the best example), else the first row."""
    return next((r for r in rows if all(r.get(c.header) for c in sheet.columns)), rows[0])

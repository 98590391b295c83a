"""Import the places workbook (and grid boundaries): check everything, plan, then write all or nothing.

Codes are the keys. A row whose code Minhu does not know is added; a known code whose
name, parent or other cells differ is changed (a complex moved to another grid, a
building to another complex); a known code with nothing different is left alone, so
importing the same workbook twice changes nothing. A place Minhu has under the
workbook's streets but the workbook lacks is only reported: an import never deletes
nor deactivates. Any problem anywhere and nothing is written; every problem is listed
with its sheet, row, column and what is wrong.

A move changes where *new* tickets go. Tickets already filed keep the grid,
community and handler they were given (they record their places when filed).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from flask_babel import gettext as _
from sqlalchemy import insert, select

from ticketing.extensions import db
from ticketing.models import User
from ticketing.services import audit, refcache
from ticketing.services.geo_import import Boundary, boundary_text, read_boundaries
from ticketing.services.places_snapshot import (
    KINDS,
    MODELS,
    PARENTS,
    Snapshot,
    aliases_text,
    load_snapshot,
)
from ticketing.services.places_workbook import (
    ADDRESS,
    ALIASES,
    CODE,
    COMMUNITY_CODE,
    COMPANY_CODE,
    COMPLEX_CODE,
    GRID_CODE,
    KIND,
    MAX_ADDRESS,
    MAX_CODE,
    MAX_NAME,
    MAX_PHONE,
    NAME,
    PHONE,
    SHEET_BY_KEY,
    STREET_CODE,
    TEAM_KINDS,
    Problem,
    Row,
    read_workbook,
)

BOUNDARY = "GeoJSON"
# Field → the column it comes from (for messages and the change list).
HEADERS = {"name": NAME, "street": STREET_CODE, "community": COMMUNITY_CODE, "grid": GRID_CODE,
           "company": COMPANY_CODE, "complex": COMPLEX_CODE, "phone": PHONE, "aliases": ALIASES,
           "address": ADDRESS, "kind": KIND, "boundary": BOUNDARY}
LIMITS = {"name": MAX_NAME, "phone": MAX_PHONE, "address": MAX_ADDRESS}
TEAM_KIND_NAMES = {value: name for name, value in TEAM_KINDS.items()}
CHUNK = 500  # codes per IN (…) when loading rows to change


@dataclass
class Entry:
    """A row of the plan: a place by sheet and code, with its field changes (before, after)."""

    sheet: str
    code: str
    name: str
    changes: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class ImportReport:
    """What an import found and did (or, with problems or a dry run, would do)."""

    problems: list[Problem] = field(default_factory=list)
    added: list[Entry] = field(default_factory=list)
    changed: list[Entry] = field(default_factory=list)
    missing: list[Entry] = field(default_factory=list)
    unchanged: int = 0
    applied: bool = False

    def count(self, which: list[Entry]) -> dict[str, int]:
        """Entries per sheet, in sheet order."""
        counts: dict[str, int] = {}
        for entry in which:
            counts[entry.sheet] = counts.get(entry.sheet, 0) + 1
        return counts


OPTIONAL = {"phone": PHONE, "company": COMPANY_CODE, "aliases": ALIASES, "address": ADDRESS}


def _fields(kind: str, row: Row) -> dict[str, Any]:
    """What a row says, as the snapshot keeps it (parents as codes, empty optional → None).
    An optional column the sheet does not have leaves that field as it is."""
    fields = _all_fields(kind, row)
    optional = {**OPTIONAL, "grid": GRID_CODE} if kind == "buildings" else OPTIONAL
    return {n: v for n, v in fields.items() if n not in optional or optional[n] in row.cells}


def _all_fields(kind: str, row: Row) -> dict[str, Any]:
    name = {"name": row.get(NAME)}
    if kind == "streets":
        return name
    if kind == "communities":
        return {**name, "street": row.get(STREET_CODE)}
    if kind == "grids":
        return {**name, "community": row.get(COMMUNITY_CODE)}
    if kind == "companies":
        return {**name, "phone": row.get(PHONE) or None}
    if kind == "complexes":
        return {**name, "grid": row.get(GRID_CODE), "company": row.get(COMPANY_CODE) or None,
                "aliases": aliases_text(row.get(ALIASES)), "address": row.get(ADDRESS)}
    if kind == "buildings":
        return {**name, "complex": row.get(COMPLEX_CODE), "aliases": aliases_text(row.get(ALIASES)),
                "grid": row.get(GRID_CODE) or None}
    return {**name, "kind": TEAM_KINDS.get(row.get(KIND), ""), "community": row.get(COMMUNITY_CODE)}


class Planner:
    """Checks the workbook's rows against each other and against Minhu, and plans the writes."""

    def __init__(self, rows: dict[str, list[Row]], snap: Snapshot, boundaries: list[Boundary], source: str) -> None:
        self.rows, self.snap, self.boundaries, self.source = rows, snap, boundaries, source
        self.wanted: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in KINDS}
        self.where: dict[str, dict[str, Row]] = {k: {} for k in KINDS}
        self.problems: list[Problem] = []

    def problem(self, row: Row, header: str, message: str) -> None:
        self.problems.append(Problem(row.sheet, row.number, header, message))

    def read_rows(self) -> None:
        """Each row's fields; empty required cells, long cells, bad kinds and repeated codes."""
        for kind in KINDS:
            sheet = SHEET_BY_KEY[kind]
            for row in self.rows.get(kind, []):
                empty = [c.header for c in sheet.columns if c.required and not row.get(c.header)]
                for header in empty:
                    self.problem(row, header, _("a required cell is empty"))
                code = row.get(CODE)
                if len(code) > MAX_CODE:
                    self.problem(row, CODE, _("longer than %(n)s characters", n=MAX_CODE))
                if kind == "teams" and row.get(KIND) and row.get(KIND) not in TEAM_KINDS:
                    self.problem(row, KIND, _("must be %(kinds)s", kinds=" / ".join(TEAM_KINDS)))
                fields = _fields(kind, row)
                for name, limit in LIMITS.items():
                    if len(fields.get(name) or "") > limit:
                        self.problem(row, HEADERS[name], _("longer than %(n)s characters", n=limit))
                if not code:
                    continue
                if code in self.where[kind]:
                    self.problem(row, CODE, _("code %(code)s is used already in row %(row)s",
                                              code=code, row=self.where[kind][code].number))
                    continue
                self.where[kind][code] = row
                if not empty:
                    self.wanted[kind][code] = fields

    def known(self, kind: str, code: str) -> bool:
        """True when the code is in the workbook or in Minhu."""
        return code in self.where[kind] or code in self.snap.rows[kind]

    def field_of(self, kind: str, code: str, name: str) -> Any:
        """A field of a row as it will be: the workbook's, else Minhu's."""
        row = self.wanted[kind].get(code) or self.snap.rows[kind].get(code) or {}
        return row.get(name)

    def check_links(self) -> None:
        """Parents must exist; a building's own grid must be in its complex's community;
        company names must stay unique."""
        for kind in KINDS:
            for code, fields in self.wanted[kind].items():
                row = self.where[kind][code]
                for name, (parent, _attr) in PARENTS.items():
                    value = fields.get(name)
                    if value and not self.known(parent, value):
                        self.problem(row, HEADERS[name], _("unknown %(what)s code %(code)s",
                                                           what=SHEET_BY_KEY[parent].title, code=value))
                if kind == "buildings" and fields.get("grid") and self.known("grids", fields["grid"]):
                    own = self.field_of("grids", fields["grid"], "community")
                    cx_grid = self.field_of("complexes", fields["complex"], "grid")
                    if cx_grid and own != self.field_of("grids", cx_grid, "community"):
                        self.problem(row, GRID_CODE, _("grid %(grid)s is not in the community of the building's "
                                                       "complex", grid=fields["grid"]))
        names: dict[str, str] = {f["name"]: c for c, f in self.snap.rows["companies"].items()
                                 if c not in self.wanted["companies"]}
        for code, fields in self.wanted["companies"].items():
            other = names.setdefault(fields["name"], code)
            if other != code:
                self.problem(self.where["companies"][code], NAME,
                             _("company %(code)s has this name already", code=other))

    def check_boundaries(self) -> None:
        """Every boundary must be for a grid of the workbook."""
        for boundary in self.boundaries:
            if boundary.code not in self.where["grids"]:
                self.problems.append(Problem(self.source, boundary.feature, "properties." + CODE,
                                             _("grid %(code)s is not in the workbook", code=boundary.code)))
            elif boundary.code in self.wanted["grids"]:
                self.wanted["grids"][boundary.code]["boundary"] = boundary.geometry

    def plan(self, report: ImportReport) -> None:
        """Sort every row into added, changed or unchanged, and list what the workbook lacks."""
        for kind in KINDS:
            title = SHEET_BY_KEY[kind].title
            for code, fields in self.wanted[kind].items():
                before = self.snap.rows[kind].get(code)
                if before is None:
                    report.added.append(Entry(title, code, fields["name"]))
                    continue
                changes = [(HEADERS[n], _shown(n, before.get(n)), _shown(n, v))
                           for n, v in fields.items() if before.get(n) != v]
                if changes:
                    report.changed.append(Entry(title, code, fields["name"], changes))
                else:
                    report.unchanged += 1
        streets = set(self.where["streets"]) | {f["street"] for f in self.wanted["communities"].values()}
        in_scope: dict[str, set[str]] = {k: set() for k in KINDS}
        for kind in KINDS:
            for code, fields in self.snap.rows[kind].items():
                if kind != "companies" and self.snap.street_of(kind, code) in streets:
                    in_scope[kind].add(code)
                    if code not in self.where[kind]:
                        report.missing.append(Entry(SHEET_BY_KEY[kind].title, code, fields["name"]))
        used_elsewhere = {f["company"] for c, f in self.snap.rows["complexes"].items()
                          if f["company"] and c not in in_scope["complexes"]}
        for code, fields in self.snap.rows["companies"].items():
            if code not in self.where["companies"] and code not in used_elsewhere:
                report.missing.append(Entry(SHEET_BY_KEY["companies"].title, code, fields["name"]))


def _shown(name: str, value: Any) -> str:
    """A field's value as the change list shows it."""
    if value is None:
        return ""
    if name == "boundary":
        return _("a boundary")
    if name == "kind":
        return TEAM_KIND_NAMES.get(value, value)
    if name == "aliases":
        return "、".join(value.splitlines())
    return str(value)


def import_places(workbook: str | IO[bytes], boundaries: bytes | None = None, boundaries_name: str = BOUNDARY,
                  gcj02: bool = False, dry_run: bool = False, actor: User | None = None,
                  now: datetime | None = None) -> ImportReport:
    """Check the workbook (and boundaries), then write it in one transaction unless a
    problem was found or `dry_run`; the report says what was (or would be) done.

    Given `now`, an applied import is put on the audit log, by `actor` (None: the shell).
    """
    report = ImportReport()
    rows, report.problems = read_workbook(workbook)
    found: list[Boundary] = []
    if boundaries is not None:
        found, geo_problems = read_boundaries(boundaries, boundaries_name, gcj02)
        report.problems += geo_problems
    planner = Planner(rows, load_snapshot(), found, boundaries_name)
    planner.read_rows()
    planner.check_links()
    planner.check_boundaries()
    report.problems += planner.problems
    planner.plan(report)
    if report.problems or dry_run:
        return report
    try:
        apply(planner, report)
        if now is not None:
            record_import(report, actor, now)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    finally:
        refcache.clear()  # placements read before the import may have moved
    report.applied = True
    return report


AUDITED_CHANGES = 500  # changed places listed one by one in the audit entry; the rest are counted


def record_import(report: ImportReport, actor: User | None, now: datetime) -> None:
    """The audit entry of an applied import: counts per sheet, and what changed, before → after."""
    via, label = ("web", None) if actor is not None else ("cli", audit.shell_user())
    changes = {f"{e.sheet} {e.code}": {name: [old, new] for name, old, new in e.changes}
               for e in report.changed[:AUDITED_CHANGES]}
    audit.record(actor, "import.apply", "places", None, "places workbook", None,
                 {"added": report.count(report.added), "changed": report.count(report.changed),
                  "unchanged": report.unchanged, "changes": changes}, now, via=via, actor_label=label)


def _values(fields: dict[str, Any], ids: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Model attributes for fields: parent codes become ids, a geometry its text."""
    values: dict[str, Any] = {}
    for name, value in fields.items():
        if name in PARENTS:
            parent, attr = PARENTS[name]
            values[attr] = ids[parent][value] if value else None
        elif name == "boundary":
            values["boundary"] = boundary_text(value) if value is not None else None
        else:
            values[name] = value
    return values


def apply(planner: Planner, report: ImportReport) -> None:
    """Write the planned additions and changes, parents first (no commit)."""
    ids = planner.snap.ids
    changed = {(e.sheet, e.code) for e in report.changed}
    for kind in KINDS:
        model, title = MODELS[kind], SHEET_BY_KEY[kind].title
        new = [{"code": code, **_values(fields, ids)} for code, fields in planner.wanted[kind].items()
               if code not in planner.snap.rows[kind]]
        if new:  # a bulk INSERT, then the new ids by code: far faster than ORM objects or RETURNING
            db.session.execute(insert(model), new)
            ids[kind] = dict(db.session.execute(select(model.code, model.id)).tuples().all())
        codes = [code for code in planner.wanted[kind] if (title, code) in changed]
        for start in range(0, len(codes), CHUNK):
            for row in db.session.scalars(select(model).where(model.code.in_(codes[start:start + CHUNK]))):
                before = planner.snap.rows[kind][row.code]
                fields = {n: v for n, v in planner.wanted[kind][row.code].items() if before.get(n) != v}
                for attr, value in _values(fields, ids).items():
                    setattr(row, attr, value)
        db.session.flush()

"""Places, property companies and teams changed one at a time (the admin pages).

Each change is checked whole before anything is set, and puts its audit entry in the
session; `save` commits both together and clears the per-process caches (intake reads
places through services/refcache.py).

Nothing is ever deleted: a place, company or team with tickets must keep showing on
them, so it is deactivated instead. A deactivated place, and everything under it, is
left out of every list a new request chooses from and of placing; tickets already
filed there keep it.

A move (a complex to another grid, a building to another complex) changes where *new*
tickets go. Tickets already filed keep the grid, community and handler they were given:
they record their places when filed. Grids and communities are not moved: a street's
supervisors, dispatchers and grid workers are bound to them; create the new one and
move its complexes instead.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import (
    Building,
    Community,
    Complex,
    Grid,
    PropertyCompany,
    Street,
    Team,
    TeamKind,
    User,
)
from ticketing.services import audit, refcache
from ticketing.services.errors import ValidationFailed
from ticketing.services.geo_import import boundary_text
from ticketing.services.places_snapshot import aliases_text
from ticketing.services.places_workbook import (
    MAX_ADDRESS,
    MAX_CODE,
    MAX_NAME,
    MAX_PHONE,
    SHEET_BY_KEY,
)

KINDS = ("street", "community", "grid", "complex", "building", "company", "team")
MODELS: dict[str, Any] = {"street": Street, "community": Community, "grid": Grid, "complex": Complex,
                          "building": Building, "company": PropertyCompany, "team": Team}
# A kind → its parent's kind and the attribute holding the parent's id.
PARENT = {"community": ("street", "street_id"), "grid": ("community", "community_id"),
          "complex": ("grid", "grid_id"), "building": ("complex", "complex_id"), "team": ("community", "community_id")}
CHILD = {"street": "community", "community": "grid", "grid": "complex", "complex": "building"}
MOVABLE = ("complex", "building")
# The workbook's sheet of each kind: its title names the kind in the audit log, whatever the page's language.
SHEET = {"street": "streets", "community": "communities", "grid": "grids", "complex": "complexes",
         "building": "buildings", "company": "companies", "team": "teams"}
# What each kind's form may change (besides code and name), and what the audit log keeps.
EXTRA = {"complex": ("aliases", "address", "company"), "building": ("aliases", "grid"),
         "company": ("phone",), "team": ("kind",)}
AUDITED = {"street": (), "community": ("street_id",), "grid": ("community_id",),
           "complex": ("grid_id", "property_company_id", "aliases", "address"),
           "building": ("complex_id", "aliases", "grid_id"), "company": ("phone",), "team": ("kind", "community_id")}

REQUIRED = _l("Fill this in.")
UNKNOWN = _l("Choose from the list.")


def kind_of(obj: Any) -> str:
    """The kind name of a place, company or team object."""
    return next(kind for kind, model in MODELS.items() if isinstance(obj, model))


def get(kind: str, item_id: int) -> Any | None:
    """The place, company or team of that kind and id, or None."""
    model = MODELS.get(kind)
    return db.session.get(model, item_id) if model is not None else None


def label(obj: Any) -> str:
    """How the audit log names it: "小区 红星小区 (HX)"."""
    return f"{SHEET_BY_KEY[SHEET[kind_of(obj)]].title} {obj.name} ({obj.code})"


def record(obj: Any) -> dict[str, Any]:
    """The fields the audit log keeps of a place, company or team."""
    fields = ("code", "name", *AUDITED[kind_of(obj)], "active")
    kept = audit.snapshot(obj, fields)
    if isinstance(obj, Grid):
        kept["boundary"] = boundary_summary(obj.boundary)
    return kept


def boundary_summary(text: str | None) -> str | None:
    """A boundary as the audit log shows it: its kind and number of positions."""
    if not text:
        return None
    try:
        geometry = json.loads(text)
        polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
        return f"{geometry['type']} ({sum(len(ring) for p in polygons for ring in p)})"
    except (ValueError, KeyError, TypeError):
        return "?"


def _write_entry(actor: User | None, verb: str, obj: Any, before: dict[str, Any] | None, now: datetime) -> None:
    db.session.flush()  # a new row gets its id
    audit.record(actor, f"place.{verb}", "place", f"{kind_of(obj)}:{obj.id}", label(obj), before, record(obj), now)


def _text(data: Mapping[str, Any], name: str) -> str:
    return str(data.get(name) or "").strip()


def _check_code(model: Any, obj: Any, code: str, errors: dict[str, Any]) -> None:
    if not code:
        errors["code"] = REQUIRED
    elif len(code) > MAX_CODE or any(ch.isspace() for ch in code):
        errors["code"] = _l("A code is at most %(n)d characters, without spaces.", n=MAX_CODE)
    elif db.session.scalar(select(model.id).where(model.code == code, model.id != (obj.id or 0))) is not None:
        errors["code"] = _l("Another one has the code %(code)s already.", code=code)


def _check_name(model: Any, obj: Any, name: str, errors: dict[str, Any]) -> None:
    if not name:
        errors["name"] = REQUIRED
    elif len(name) > MAX_NAME:
        errors["name"] = _l("At most %(n)d characters.", n=MAX_NAME)
    elif model is PropertyCompany and db.session.scalar(select(PropertyCompany.id).where(
            PropertyCompany.name == name, PropertyCompany.id != (obj.id or 0))) is not None:
        errors["name"] = _l("Another company has this name already.")


def _grid_override(building: Building, complex_: Complex | None, raw: str, errors: dict[str, Any]) -> int | None:
    """The building's own grid from the form ("" = its complex's): a grid of the complex's community."""
    if not raw or complex_ is None:
        return None
    grid = db.session.get(Grid, int(raw)) if raw.isdigit() else None
    if grid is None or grid.community_id != complex_.grid.community_id:
        errors["grid"] = _l("Choose a grid of the community of the building's complex.")
        return None
    return None if grid.id == complex_.grid_id else grid.id


def _assign(kind: str, obj: Any, data: Mapping[str, Any], errors: dict[str, Any],
            parent: Any = None) -> dict[str, Any]:
    """The attribute values the form gives, checked; problems go in `errors` by field.
    `parent`: a new row's parent (an existing row has its own)."""
    model = MODELS[kind]
    values: dict[str, Any] = {"code": _text(data, "code"), "name": _text(data, "name")}
    _check_code(model, obj, values["code"], errors)
    _check_name(model, obj, values["name"], errors)
    for name in EXTRA.get(kind, ()):
        if name not in data:
            continue
        raw = _text(data, name)
        if name == "aliases":
            values["aliases"] = aliases_text(raw)
        elif name in ("address", "phone"):
            limit = MAX_ADDRESS if name == "address" else MAX_PHONE
            if len(raw) > limit:
                errors[name] = _l("At most %(n)d characters.", n=limit)
            values[name] = raw if name == "address" else (raw or None)
        elif name == "company":
            company = db.session.get(PropertyCompany, int(raw)) if raw.isdigit() else None
            if raw and company is None:
                errors["company"] = UNKNOWN
            values["property_company_id"] = company.id if company is not None else None
        elif name == "grid":
            values["grid_id"] = _grid_override(obj, parent or obj.complex, raw, errors)
        elif name == "kind":
            if raw not in {k.value for k in TeamKind}:
                errors["kind"] = UNKNOWN
            values["kind"] = raw
    return values


def create(kind: str, parent_id: int | None, data: Mapping[str, Any], actor: User | None, now: datetime) -> Any:
    """A new place, company or team under its parent; raises ValidationFailed (nothing added)."""
    errors: dict[str, Any] = {}
    obj = MODELS[kind]()
    parent = None
    if kind in PARENT:
        parent = get(PARENT[kind][0], parent_id) if parent_id else None
        if parent is None:
            raise ValidationFailed({"parent": UNKNOWN})
    values = _assign(kind, obj, data, errors, parent)
    if errors:
        raise ValidationFailed(errors)
    for attr, value in values.items():
        setattr(obj, attr, value)
    if parent is not None:
        setattr(obj, PARENT[kind][0], parent)  # the relationship is named after the parent's kind
    obj.active = True
    db.session.add(obj)
    _write_entry(actor, "create", obj, None, now)
    return obj


def update(obj: Any, data: Mapping[str, Any], actor: User | None, now: datetime) -> bool:
    """Change code, name and the kind's other fields; False when nothing differs. Raises
    ValidationFailed (nothing changed)."""
    errors: dict[str, Any] = {}
    with db.session.no_autoflush:
        values = _assign(kind_of(obj), obj, data, errors)
    if errors:
        raise ValidationFailed(errors)
    before = record(obj)
    changed = {attr: value for attr, value in values.items() if getattr(obj, attr) != value}
    if not changed:
        return False
    for attr, value in changed.items():
        setattr(obj, attr, value)
    _write_entry(actor, "update", obj, before, now)
    return True


def move(obj: Any, parent_id: int | None, actor: User | None, now: datetime) -> bool:
    """A complex to another grid, a building to another complex; False when it is there
    already. Raises ValidationFailed when the new parent is unknown, deactivated, or would
    part a building from the grid it lies in."""
    kind = kind_of(obj)
    if kind not in MOVABLE:
        raise ValidationFailed({"parent": _l("Only complexes and buildings can be moved.")})
    parent_kind, attr = PARENT[kind]
    parent = get(parent_kind, parent_id) if parent_id else None
    if parent is None or not parent.active:
        raise ValidationFailed({"parent": UNKNOWN})
    if getattr(obj, attr) == parent.id:
        return False
    new_grid = parent if kind == "complex" else parent.grid
    lying = [obj] if kind == "building" else [b for b in obj.buildings if b.grid_id is not None]
    for building in lying:
        if building.grid is not None and building.grid.community_id != new_grid.community_id:
            raise ValidationFailed({"parent": _l(
                "%(building)s lies in grid %(grid)s, which is not in that community: change the building's "
                "grid first.", building=building.name, grid=building.grid.name)})
    before = record(obj)
    setattr(obj, attr, parent.id)
    setattr(obj, parent_kind, parent)
    for building in lying:
        if building.grid_id == new_grid.id:
            building.grid_id = None  # its own grid is now its complex's: no override needed
    _write_entry(actor, "move", obj, before, now)
    return True


def set_boundary(grid: Grid, geometry: dict[str, Any] | None, actor: User | None, now: datetime) -> None:
    """Replace (or, with None, remove) a grid's boundary, already checked and in WGS-84."""
    before = record(grid)
    grid.boundary = boundary_text(geometry) if geometry is not None else None
    _write_entry(actor, "update", grid, before, now)


def set_active(obj: Any, active: bool, actor: User | None, now: datetime) -> bool:
    """Deactivate or reactivate; False when it already is. Never deletes."""
    if obj.active == active:
        return False
    before = record(obj)
    obj.active = active
    _write_entry(actor, "reactivate" if active else "deactivate", obj, before, now)
    return True


def save() -> None:
    """Commit the change with its audit entry, and forget the cached places."""
    try:
        db.session.commit()
    finally:
        refcache.clear()  # what was read before the commit may have moved


def hidden_by_parent(obj: Any) -> bool:
    """True when a place above this one is deactivated (so it is left out as well)."""
    kind = kind_of(obj)
    while kind in PARENT:
        parent_kind, _attr = PARENT[kind]
        obj = getattr(obj, parent_kind)
        if not obj.active:
            return True
        kind = parent_kind
    return False

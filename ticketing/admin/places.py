"""Administration → places (admins): the tree from streets to buildings, one page per place
with its edits (code, name, aliases, company, address, a building's own grid), moves, a
grid's boundary, deactivation; property companies and teams.

Supervisors and dispatchers see their street's places where they work (the console's
lists); changing places is an admin's job, as it changes where every street's
tickets go. The rules are services/places_admin.py's.
"""
from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from werkzeug.wrappers import Response

from ticketing.admin.views import bp
from ticketing.extensions import db
from ticketing.models import Community, Complex, Grid, PropertyCompany, Role, Street, Team, TeamKind
from ticketing.services import places_admin, places_tree
from ticketing.services.errors import ValidationFailed
from ticketing.services.geo_import import read_one_boundary
from ticketing.web import now, roles_required, staff_user

KIND_LABELS: dict[str, Any] = {
    "street": _l("Street"), "community": _l("Community"), "grid": _l("Grid"), "complex": _l("Complex"),
    "building": _l("Building"), "company": _l("Property company"), "team": _l("Team"),
}
TEAM_KIND_LABELS: dict[str, Any] = {TeamKind.VOLUNTEER.value: _l("Volunteer service team"),
                                    TeamKind.MEDIATION.value: _l("Mediation team")}
MAX_BOUNDARY = 5 * 1024 * 1024
KINDS = "any(street, community, grid, complex, building, company, team)"


@bp.app_context_processor
def place_labels() -> dict[str, Any]:
    """The kinds' names for the places templates."""
    return {"place_kind_labels": KIND_LABELS, "team_kind_labels": TEAM_KIND_LABELS}


def item_or_404(kind: str, item_id: int) -> Any:
    """The place, company or team; 404 when unknown."""
    item = places_admin.get(kind, item_id)
    if item is None:
        abort(404)
    return item


@bp.get("/places")
@roles_required(Role.ADMIN)
def places() -> str:
    """The tree of every street, or the places whose name, code or alias matches `q`."""
    text = request.args.get("q", "").strip()[:100]
    found = places_tree.search(text) if text else None
    return render_template("admin/places.html", q=text, found=found,
                           streets=places_tree.tree() if found is None else [], errors={}, posted={})


def path_of(item: Any) -> list[tuple[str, Any]]:
    """The places above `item`, street first, as (kind, place)."""
    path: list[tuple[str, Any]] = []
    kind = places_admin.kind_of(item)
    while kind in places_admin.PARENT:
        kind = places_admin.PARENT[kind][0]
        item = getattr(item, kind)
        path.insert(0, (kind, item))
    return path


def choices_for(kind: str, item: Any) -> dict[str, Any]:
    """The lists a place's forms choose from."""
    out: dict[str, Any] = {}
    if kind == "complex":
        out["companies"] = db.session.scalars(select(PropertyCompany).where(
            (PropertyCompany.active.is_(True)) | (PropertyCompany.id == item.property_company_id))
            .order_by(PropertyCompany.name)).all()
        out["targets"] = db.session.scalars(select(Grid).join(Community).where(
            Community.street_id == item.grid.community.street_id, Grid.active.is_(True), Grid.id != item.grid_id)
            .order_by(Grid.code)).all()
    if kind == "building":
        out["grids"] = db.session.scalars(select(Grid).where(
            Grid.community_id == item.complex.grid.community_id).order_by(Grid.code)).all()
        out["targets"] = db.session.scalars(select(Complex).join(Grid, Complex.grid_id == Grid.id).where(
            Grid.community_id == item.complex.grid.community_id, Complex.active.is_(True),
            Complex.id != item.complex_id).order_by(Complex.code)).all()
    return out


def children_of(kind: str, item: Any) -> list[Any]:
    """The places one level under `item` (and a community's teams come separately)."""
    if kind == "street":
        return list(item.communities)
    if kind == "community":
        return list(item.grids)
    if kind == "grid":
        return list(item.complexes)
    if kind == "complex":
        return list(item.buildings)
    return []


def item_page(kind: str, item: Any, status: int = 200, errors: dict[str, Any] | None = None,
              posted: dict[str, Any] | None = None, form: str = "") -> tuple[str, int]:
    """The page of one place, company or team; `form` names the form whose `errors` it shows."""
    teams = db.session.scalars(select(Team).where(Team.community_id == item.id).order_by(Team.code)).all() \
        if kind == "community" else []
    return render_template(
        "admin/place.html", kind=kind, item=item, path=path_of(item), children=children_of(kind, item),
        child_kind=places_admin.CHILD.get(kind), teams=teams, hidden=places_admin.hidden_by_parent(item),
        errors=errors or {}, posted=posted or {}, form=form, choices=choices_for(kind, item),
    ), status


@bp.get(f"/places/<{KINDS}:kind>/<int:item_id>")
@roles_required(Role.ADMIN)
def place(kind: str, item_id: int) -> tuple[str, int]:
    """A place, company or team: its fields, children and the forms that change it."""
    return item_page(kind, item_or_404(kind, item_id))


@bp.post(f"/places/<{KINDS}:kind>/<int:item_id>/edit")
@roles_required(Role.ADMIN)
def edit_place(kind: str, item_id: int) -> Response | tuple[str, int]:
    """Save the code, name and the kind's other fields."""
    item = item_or_404(kind, item_id)
    try:
        changed = places_admin.update(item, request.form, staff_user(), now())
    except ValidationFailed as exc:
        db.session.rollback()
        return item_page(kind, item, 400, exc.errors, request.form.to_dict(), "edit")
    places_admin.save()
    flash(_("Saved.") if changed else _("Nothing was changed."), "success" if changed else "info")
    return redirect(url_for("admin.place", kind=kind, item_id=item.id), 303)


@bp.post(f"/places/<{KINDS}:kind>/<int:item_id>/move")
@roles_required(Role.ADMIN)
def move_place(kind: str, item_id: int) -> Response | tuple[str, int]:
    """Move a complex to another grid, a building to another complex (given by code)."""
    item = item_or_404(kind, item_id)
    code = request.form.get("parent", "").strip()
    parent_kind = places_admin.PARENT.get(kind, ("", ""))[0]
    parent = db.session.scalar(select(places_admin.MODELS[parent_kind]).where(
        places_admin.MODELS[parent_kind].code == code)) if kind in places_admin.MOVABLE and code else None
    try:
        moved = places_admin.move(item, parent.id if parent is not None else None, staff_user(), now())
    except ValidationFailed as exc:
        db.session.rollback()
        if parent is None and code:
            exc.errors["parent"] = _("Nothing of that kind has the code %(code)s.", code=code)
        return item_page(kind, item, 400, exc.errors, request.form.to_dict(), "move")
    places_admin.save()
    if moved:
        flash(_("Moved to %(name)s. Tickets already filed keep their grid and handler; new tickets go to "
                "the new place.", name=parent.name if parent is not None else ""), "success")
    return redirect(url_for("admin.place", kind=kind, item_id=item.id), 303)


@bp.post("/places/grid/<int:item_id>/boundary")
@roles_required(Role.ADMIN)
def grid_boundary(item_id: int) -> Response | tuple[str, int]:
    """Replace a grid's boundary with an uploaded GeoJSON polygon, or remove it."""
    grid = item_or_404("grid", item_id)
    if request.form.get("action") == "remove":
        places_admin.set_boundary(grid, None, staff_user(), now())
        places_admin.save()
        flash(_("The boundary was removed."), "success")
        return redirect(url_for("admin.place", kind="grid", item_id=grid.id), 303)
    upload = request.files.get("file")
    data = upload.read(MAX_BOUNDARY + 1) if upload is not None and upload.filename else b""
    if not data:
        problem: str | None = _("Choose a GeoJSON file.")
    elif len(data) > MAX_BOUNDARY:
        problem = _("The file is larger than 5 MB.")
    else:
        geometry, problem = read_one_boundary(data, request.form.get("gcj02") == "1")
    if problem:
        db.session.rollback()
        return item_page("grid", grid, 400, {"file": problem}, {}, "boundary")
    places_admin.set_boundary(grid, geometry, staff_user(), now())
    places_admin.save()
    flash(_("The boundary was saved."), "success")
    return redirect(url_for("admin.place", kind="grid", item_id=grid.id), 303)


@bp.post(f"/places/<{KINDS}:kind>/<int:item_id>/<any(deactivate, reactivate):action>")
@roles_required(Role.ADMIN)
def toggle_place(kind: str, item_id: int, action: str) -> Response:
    """Deactivate (never delete) or reactivate."""
    item = item_or_404(kind, item_id)
    if places_admin.set_active(item, action == "reactivate", staff_user(), now()):
        places_admin.save()
        flash(_("%(name)s is active again.", name=item.name) if item.active else
              _("%(name)s is deactivated: new requests can no longer choose it; its tickets keep it.",
                name=item.name), "success")
    return redirect(url_for("admin.place", kind=kind, item_id=item.id), 303)


@bp.post(f"/places/new/<{KINDS}:kind>")
@roles_required(Role.ADMIN)
def new_place(kind: str) -> Response | tuple[str, int]:
    """Create a place under its parent (`parent_id`), a company or a team."""
    parent_id = request.form.get("parent_id", type=int)
    try:
        item = places_admin.create(kind, parent_id, request.form, staff_user(), now())
    except ValidationFailed as exc:
        db.session.rollback()
        if kind in places_admin.PARENT and kind != "team":
            parent_kind = places_admin.PARENT[kind][0]
            parent = places_admin.get(parent_kind, parent_id) if parent_id else None
            if parent is None:
                abort(404)
            return item_page(parent_kind, parent, 400, exc.errors, request.form.to_dict(), "new")
        if kind == "street":
            return render_template("admin/places.html", q="", found=None, streets=places_tree.tree(),
                                   errors=exc.errors, posted=request.form.to_dict()), 400
        return organisations_page(400, exc.errors, request.form.to_dict(), kind)
    places_admin.save()
    flash(_("%(name)s was created.", name=item.name), "success")
    return redirect(url_for("admin.place", kind=kind, item_id=item.id), 303)


def organisations_page(status: int = 200, errors: dict[str, Any] | None = None,
                       posted: dict[str, Any] | None = None, form: str = "") -> tuple[str, int]:
    """Property companies and teams, with the forms that add them."""
    return render_template(
        "admin/organisations.html",
        companies=db.session.scalars(select(PropertyCompany).order_by(PropertyCompany.code)).all(),
        teams=db.session.scalars(select(Team).join(Community).order_by(Community.code, Team.code)).all(),
        communities=db.session.scalars(select(Community).join(Street).order_by(Street.code, Community.code)).all(),
        errors=errors or {}, posted=posted or {}, form=form,
    ), status


@bp.get("/places/organisations")
@roles_required(Role.ADMIN)
def organisations() -> tuple[str, int]:
    """Property companies and teams."""
    return organisations_page()


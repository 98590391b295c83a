"""Administration → places → import and export (admins): the workbook page.

Upload the workbook (and the grids' GeoJSON) → a preview of what would be added,
changed, and what Minhu has that the workbook lacks (kept, never removed), with every
problem by sheet, row and column → apply. The files are kept between preview and
apply by services/places_uploads.py under a token only this admin's session holds; the
apply checks everything again, so a change made meanwhile cannot slip through half.
The template, the current places and the boundaries can be downloaded.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from ticketing.admin.views import bp
from ticketing.models import Role
from ticketing.services import places_uploads
from ticketing.services.places_export import export_places, template
from ticketing.services.places_import import ImportReport, import_places
from ticketing.services.places_workbook import Problem
from ticketing.web import local_tz, now, roles_required, staff_user

MAX_WORKBOOK = 20 * 1024 * 1024
MAX_GEOJSON = 30 * 1024 * 1024
SESSION_KEY = "places_import"
SHOWN = 200  # entries listed per kind of change on the preview; the rest are counted
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def uploads_root() -> Path:
    """Where uploads wait for their apply: a folder of the instance folder, never served."""
    return Path(current_app.instance_path) / "place-imports"


def import_page(status: int = 200, report: ImportReport | None = None, token: str = "",
                problems: list[Problem] | None = None, error: str = "") -> tuple[str, int]:
    """The import page: the forms, and a preview or the problems found."""
    return render_template("admin/places_import.html", report=report, token=token, shown=SHOWN,
                           problems=problems if problems is not None else (report.problems if report else []),
                           error=error), status


def attachment(data: bytes | str, name: str, mimetype: str) -> Response:
    """A download."""
    response = Response(data, mimetype=mimetype)
    response.headers["Content-Disposition"] = f"attachment; filename={name}"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/places/import")
@roles_required(Role.ADMIN)
def places_import() -> tuple[str, int]:
    """The upload form and the download buttons."""
    return import_page()


def read_upload(name: str, limit: int) -> tuple[bytes | None, str, str]:
    """An uploaded file's bytes (None when none was chosen), its name, and what is wrong with it."""
    upload = request.files.get(name)
    if upload is None or not upload.filename:
        return None, "", ""
    data = upload.read(limit + 1)
    if len(data) > limit:
        return None, upload.filename, _("%(file)s is larger than %(mb)d MB.", file=upload.filename,
                                        mb=limit // (1024 * 1024))
    return data, upload.filename, ""


@bp.post("/places/import")
@roles_required(Role.ADMIN)
def places_preview() -> tuple[str, int]:
    """Check the uploaded files and show what applying them would do; writes nothing."""
    workbook, workbook_name, error = read_upload("workbook", MAX_WORKBOOK)
    boundaries, boundaries_name, geo_error = read_upload("boundaries", MAX_GEOJSON)
    if workbook is None and not error:
        error = _("Choose the workbook (.xlsx) to import.")
    if error or geo_error:
        return import_page(400, error=error or geo_error)
    assert workbook is not None
    gcj02 = request.form.get("gcj02") == "1"
    root, at, user = uploads_root(), now(), staff_user()
    pending = places_uploads.keep(root, user.id, workbook, workbook_name, boundaries, boundaries_name or None,
                                  gcj02, at)
    report = import_places(str(pending.workbook), boundaries, boundaries_name or "GeoJSON", gcj02, dry_run=True)
    if report.problems:
        places_uploads.discard(root, pending.token)
        return import_page(400, report)
    if not (report.added or report.changed):  # nothing to apply: nothing to keep
        places_uploads.discard(root, pending.token)
        return import_page(200, report)
    session[SESSION_KEY] = pending.token
    return import_page(200, report, pending.token)


@bp.post("/places/import/apply")
@roles_required(Role.ADMIN)
def places_apply() -> Response | tuple[str, int]:
    """Apply the previewed upload: all or nothing, on the audit log."""
    token = request.form.get("token", "")
    root, at, user = uploads_root(), now(), staff_user()
    pending = places_uploads.load(root, token, user.id, at) if session.get(SESSION_KEY) == token else None
    if pending is None:
        return import_page(400, error=_("This upload is not waiting to be applied any more (it was applied, "
                                        "or is older than an hour, or from another session). Upload it again."))
    try:
        report = import_places(str(pending.workbook), pending.boundaries(), pending.boundaries_name or "GeoJSON",
                               pending.gcj02, actor=user, now=at)
    finally:
        places_uploads.discard(root, token)
        session.pop(SESSION_KEY, None)
    if report.problems:  # something changed since the preview
        return import_page(400, report)
    flash(_("Imported: %(added)d added, %(changed)d changed, %(unchanged)d unchanged.",
            added=len(report.added), changed=len(report.changed), unchanged=report.unchanged), "success")
    return redirect(url_for("admin.places"), 303)


@bp.get("/places/template.xlsx")
@roles_required(Role.ADMIN)
def places_template() -> Response:
    """The empty workbook to fill in, a note per column and an example row per sheet."""
    from ticketing.demo import DEMO_WORKBOOK

    return attachment(template(str(DEMO_WORKBOOK)), "minhu-places-template.xlsx", XLSX)


def dated(stem: str, suffix: str) -> str:
    """A download's name with today's date: minhu-places-20261118.xlsx."""
    return f"{stem}-{now().astimezone(local_tz()):%Y%m%d}.{suffix}"


@bp.get("/places/export.xlsx")
@roles_required(Role.ADMIN)
def places_export() -> Response:
    """Every place, company and team, as the import reads them."""
    book, _collection = export_places()
    return attachment(book, dated("minhu-places", "xlsx"), XLSX)


@bp.get("/places/boundaries.geojson")
@roles_required(Role.ADMIN)
def places_boundaries() -> Response:
    """Every grid boundary, as the import reads them (WGS-84)."""
    _book, collection = export_places()
    text: Any = json.dumps(collection, ensure_ascii=False, indent=1)
    return attachment(text, dated("minhu-grids", "geojson"), "application/geo+json")

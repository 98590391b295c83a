"""Administration → accounts → import: upload the 人员 sheet, see a preview, apply it.

Between the preview and the apply the uploaded file waits under the instance folder
(`staff_imports/`), named by the uploader's id and a random token, for at most
`STASH_MINUTES`; the apply reads it back, checks everything again and deletes it. So the
file is uploaded once, nobody else can apply it, and nothing of it travels in a
cookie. The one-time passwords of the new accounts are shown once, on the page that
answers the apply (no-store), and are never stored or logged.
"""
from __future__ import annotations

import io
import secrets
import time
from pathlib import Path

from flask import current_app, render_template, request, send_file
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from werkzeug.wrappers import Response
from wtforms import HiddenField

from ticketing.admin.accounts import once
from ticketing.admin.views import ROSTER_ROLES, bp
from ticketing.models import Role
from ticketing.services.staff_import import StaffReport, import_staff
from ticketing.web import now, roles_required, staff_user

STASH_MINUTES = 60
TOKEN_BYTES = 16
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class UploadForm(FlaskForm):
    """The workbook to check."""

    workbook = FileField(_l("Workbook (.xlsx) with a sheet 人员"))


class ApplyForm(FlaskForm):
    """Apply the checked workbook, named by its token."""

    token = HiddenField()


def stash_folder() -> Path:
    """Where uploaded workbooks wait between preview and apply."""
    folder = Path(current_app.instance_path) / "staff_imports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def stash(data: bytes, user_id: int) -> str:
    """Keep an upload for the apply; returns its token. Removes expired uploads first."""
    folder = stash_folder()
    limit = time.time() - STASH_MINUTES * 60
    for old in folder.glob("*.xlsx"):
        if old.stat().st_mtime < limit:
            old.unlink(missing_ok=True)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    (folder / f"{user_id}-{token}.xlsx").write_bytes(data)
    return token


def unstash(token: str, user_id: int) -> bytes | None:
    """The upload of `token` if it is this user's and not expired; it is removed either way."""
    if not token or not token.replace("-", "").replace("_", "").isalnum():
        return None
    path = stash_folder() / f"{user_id}-{token}.xlsx"
    try:
        fresh = path.stat().st_mtime >= time.time() - STASH_MINUTES * 60
        data = path.read_bytes()
    except OSError:
        return None
    path.unlink(missing_ok=True)
    return data if fresh else None


@bp.route("/accounts/import", methods=["GET", "POST"])
@roles_required(*ROSTER_ROLES)
def import_accounts() -> str | tuple[str, int]:
    """Upload the workbook and see what importing it would add and change (a dry run)."""
    form = UploadForm()
    if not form.is_submitted():
        return render_template("admin/staff_import.html", form=form, report=None)
    upload = request.files.get("workbook")
    data = upload.read() if upload is not None else b""
    if not form.validate() or not data:
        form.workbook.errors = [*form.workbook.errors, _("Choose the workbook file (.xlsx).")]
        return render_template("admin/staff_import.html", form=form, report=None), 400
    actor = staff_user()
    report = import_staff(_bytes(data), actor, now(), dry_run=True)
    apply_form = None
    if not report.problems:
        apply_form = ApplyForm(formdata=None, token=stash(data, actor.id))
    status = 422 if report.problems else 200
    return render_template("admin/staff_import.html", form=form, report=report, apply_form=apply_form), status


@bp.post("/accounts/import/apply")
@roles_required(*ROSTER_ROLES)
def apply_account_import() -> str | Response | tuple[str, int]:
    """Import the checked workbook for real; the new accounts' one-time passwords are shown once."""
    form = ApplyForm()
    actor = staff_user()
    data = unstash(form.token.data or "", actor.id) if form.validate() else None
    if data is None:
        upload = UploadForm(formdata=None)
        upload.workbook.errors = [_("That upload has expired or was applied already; upload the workbook again.")]
        return render_template("admin/staff_import.html", form=upload, report=None), 410
    report: StaffReport = import_staff(_bytes(data), actor, now())
    if report.problems:  # something changed since the preview
        return render_template("admin/staff_import.html", form=UploadForm(formdata=None), report=report), 409
    return once(render_template("admin/staff_import_done.html", report=report), 200)


@bp.get("/accounts/export.xlsx")
@roles_required(Role.ADMIN)
def export_accounts() -> Response:
    """Every active account as the 人员 sheet (the format the import reads)."""
    from ticketing.services.staff_snapshot import export_staff

    return send_file(_bytes(export_staff()), mimetype=XLSX, as_attachment=True, download_name="staff.xlsx")


@bp.get("/accounts/template.xlsx")
@roles_required(*ROSTER_ROLES)
def account_template() -> Response:
    """The workbook to fill in: every sheet with a note per column and an example row."""
    from ticketing.demo import DEMO_WORKBOOK
    from ticketing.services.places_export import template

    return send_file(_bytes(template(str(DEMO_WORKBOOK))), mimetype=XLSX, as_attachment=True,
                     download_name="minhu-template.xlsx")


def _bytes(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)

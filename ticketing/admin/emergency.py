"""Administration → emergency guidance for urgent words (admins): what residents are
told to do at once when their words describe a gas leak, a fire, a person trapped in a
lift …, whatever the category, and the numbers of the start page (the general guide).
A category's own guidance is on its page (admin/catalog_edit.py). The rules are in
services/emergency.py.
"""
from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response

from ticketing.admin.views import bp
from ticketing.extensions import db
from ticketing.labels import localized_name
from ticketing.models import EmergencyGuide, Role
from ticketing.services import emergency
from ticketing.services.errors import ValidationFailed
from ticketing.web import now, roles_required, staff_user


def page(status: int = 200, errors: dict[str, dict[str, Any]] | None = None,
         posted: dict[str, Any] | None = None) -> tuple[str, int]:
    """Every guide with its form; `errors` and `posted` (what was typed) keyed by guide code."""
    guides = db.session.scalars(select(EmergencyGuide).order_by(EmergencyGuide.sort_order, EmergencyGuide.id)).all()
    return render_template("admin/emergency.html", guides=guides, errors=errors or {}, posted=posted or {},
                           numbers_text=emergency.numbers_text, general=emergency.GENERAL), status


@bp.get("/emergency")
@roles_required(Role.ADMIN)
def emergency_guides() -> tuple[str, int]:
    """The emergency guides for urgent words."""
    return page()


@bp.post("/emergency/<code>")
@roles_required(Role.ADMIN)
def save_emergency_guide(code: str) -> Response | tuple[str, int]:
    """Save one guide's word parts, guidance and numbers."""
    guide = db.session.scalar(select(EmergencyGuide).where(EmergencyGuide.code == code))
    if guide is None:
        abort(404)
    form = request.form
    try:
        changed = emergency.update_guide(staff_user(), guide, form.get("markers"), form.get("guidance_zh"),
                                         form.get("guidance_en"), form.get("numbers"), now())
    except ValidationFailed as exc:
        db.session.rollback()
        return page(400, {code: exc.errors}, {code: form})
    db.session.commit()
    flash(_("“%(name)s” saved.", name=localized_name(guide)) if changed else _("Nothing changed."), "success")
    return redirect(url_for("admin.emergency_guides", _anchor=f"guide-{code}"), 303)

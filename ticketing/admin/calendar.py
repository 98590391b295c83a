"""The holiday calendar (admins): a page per year with every special day and its source,
admin entries added, changed and removed one by one or as the State Council's published
schedule (pasted or uploaded, previewed, applied whole), and the year's confirmation.

Also puts the unconfirmed years in every page's context, for the admins' banner.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from ticketing import web
from ticketing.admin.views import bp
from ticketing.extensions import db
from ticketing.models import CalendarDay, Role
from ticketing.services import calendar_admin
from ticketing.services.calendar_import import Schedule, parse_day, parse_text, parse_upload
from ticketing.services.holidays import package_knows
from ticketing.web import local_tz, now, roles_required, staff_user

SOURCE_LABELS: dict[str, Any] = {
    "package": _l("State Council (chinese-calendar)"),
    "statutory": _l("Statutory rule"),
    "admin": _l("Admin entry"),
}
MAX_UPLOAD = 1024 * 1024
MAX_PASTE = 20_000


@dataclass(frozen=True)
class Change:
    """One line of a schedule preview: what the day becomes, and what it is now."""

    line: int
    day: date
    is_workday: bool
    note: str
    current: bool  # working day now, with the admin's entries
    entry: CalendarDay | None  # the admin's entry it replaces

    @property
    def status(self) -> str:
        """`new`, `change` or `same`: what applying does to this day."""
        if self.entry is None:
            return "new"
        same = self.entry.is_workday == self.is_workday and self.entry.note == self.note
        return "same" if same else "change"


@bp.app_context_processor
def calendar_banner() -> dict[str, Callable[[], list[int]]]:
    """`unconfirmed_calendar_years()` for base.html; the template calls it for admins only."""

    def years() -> list[int]:
        if not (current_user.is_authenticated and current_user.has_role(Role.ADMIN)):
            return []
        try:
            return calendar_admin.unconfirmed_years(web.now(), web.local_tz())
        except SQLAlchemyError:  # an error page must still render
            db.session.rollback()
            return []

    return {"unconfirmed_calendar_years": years}


def year_or_404(year: int) -> int:
    """A year the calendar covers; 404 otherwise."""
    if not calendar_admin.FIRST_YEAR <= year <= calendar_admin.LAST_YEAR:
        abort(404)
    return year


def preview(schedule: Schedule) -> list[Change]:
    """What applying the schedule would do, line by line."""
    cal = web.calendar()
    return [Change(line.line, line.day, line.is_workday, line.note, cal.is_workday(line.day),
                   db.session.get(CalendarDay, line.day)) for line in schedule.lines]


def page(year: int, status: int = 200, **extra: Any) -> tuple[str, int]:
    """The calendar page of a year."""
    editing = parse_day(request.args.get("day", "")) if "day" in request.args else None
    entry = db.session.get(CalendarDay, editing) if editing else None
    return render_template(
        "admin/calendar.html", year=year, days=calendar_admin.year_days(year),
        known=package_knows(year), confirmation=calendar_admin.confirmation(year),
        weekend_holidays=calendar_admin.weekend_holidays(year), sources=SOURCE_LABELS,
        editing=editing, entry=entry, editing_workday=web.calendar().is_workday(editing) if editing else False,
        **{"schedule": None, "changes": [], "text": "", "day_error": None, **extra},
    ), status


@bp.route("/calendar")
@roles_required(Role.ADMIN)
def calendar_index() -> Response:
    """The first year that needs confirming, else this year."""
    pending = calendar_admin.unconfirmed_years(now(), local_tz())
    year = pending[0] if pending else now().astimezone(local_tz()).year
    return redirect(url_for("admin.calendar_year", year=year))


@bp.route("/calendar/<int:year>")
@roles_required(Role.ADMIN)
def calendar_year(year: int) -> tuple[str, int]:
    """A year's special days with their source; `?day=` fills the form to change one."""
    return page(year_or_404(year))


@bp.route("/calendar/<int:year>/days", methods=["POST"])
@roles_required(Role.ADMIN)
def calendar_set_day(year: int) -> Response | tuple[str, int]:
    """Add or change the admin's entry for one day."""
    year_or_404(year)
    day = parse_day(request.form.get("day", "").strip())
    kind = request.form.get("kind")
    note = request.form.get("note", "").strip()
    if day is None or kind not in ("holiday", "workday") or len(note) > calendar_admin.MAX_NOTE:
        db.session.rollback()
        message = (_("Give a date like 2027-02-06.") if day is None
                   else _("Choose holiday or working day.") if kind not in ("holiday", "workday")
                   else _("The note may be at most %(n)d characters.", n=calendar_admin.MAX_NOTE))
        return page(year, 400, day_error=message)
    calendar_admin.set_day(day, kind == "workday", note, staff_user(), now())
    db.session.commit()
    flash(_("%(day)s is now a working day.", day=day.isoformat()) if kind == "workday"
          else _("%(day)s is now a holiday.", day=day.isoformat()), "success")
    return redirect(url_for("admin.calendar_year", year=day.year, _anchor="days"), 303)


@bp.route("/calendar/<int:year>/days/<day>/remove", methods=["POST"])
@roles_required(Role.ADMIN)
def calendar_unset_day(year: int, day: str) -> Response:
    """Remove the admin's entry for one day: the package or the statutory rule applies again."""
    year_or_404(year)
    when = parse_day(day)
    if when is None or not calendar_admin.unset_day(when, staff_user(), now()):
        abort(404)
    db.session.commit()
    flash(_("The entry for %(day)s was removed.", day=when.isoformat()), "success")
    return redirect(url_for("admin.calendar_year", year=year, _anchor="days"), 303)


def posted_schedule(year: int) -> Schedule:
    """The schedule of the form: the uploaded file if any, else the pasted text."""
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        data = upload.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            return Schedule(errors=[(0, _("The file is larger than 1 MB."))])
        return parse_upload(upload.filename, data, year)
    text = request.form.get("text", "")
    if len(text) > MAX_PASTE:
        return Schedule(errors=[(0, _("The text is longer than %(n)d characters.", n=MAX_PASTE))])
    return parse_text(text, year)


@bp.route("/calendar/<int:year>/schedule", methods=["POST"])
@roles_required(Role.ADMIN)
def calendar_schedule(year: int) -> Response | tuple[str, int]:
    """Preview a pasted or uploaded schedule; with `apply`, write it whole (nothing if any line is bad)."""
    year_or_404(year)
    schedule = posted_schedule(year)
    if schedule.errors:
        db.session.rollback()
        return page(year, 400, schedule=schedule, text=request.form.get("text", ""))
    if request.form.get("action") != "apply":
        return page(year, schedule=schedule, changes=preview(schedule), text=schedule.as_text())
    count = calendar_admin.apply_schedule(schedule.entries(), staff_user(), now())
    db.session.commit()
    flash(_("%(n)d days of the schedule were saved.", n=count), "success")
    return redirect(url_for("admin.calendar_year", year=year, _anchor="days"), 303)


@bp.route("/calendar/<int:year>/confirm", methods=["POST"])
@roles_required(Role.ADMIN)
def calendar_confirm(year: int) -> Response:
    """Confirm that the year's make-up working days are entered."""
    year_or_404(year)
    if calendar_admin.confirm_year(year, staff_user(), now()) is None:
        flash(_("chinese-calendar already has the schedule of %(year)d; nothing to confirm.", year=year), "info")
    else:
        db.session.commit()
        flash(_("The calendar of %(year)d is confirmed.", year=year), "success")
    return redirect(url_for("admin.calendar_year", year=year), 303)

"""The ledger pages: the supervisors' dashboard, a grid's day, its print view and exports.

Grid workers read their own grids' ledgers; dispatchers and supervisors their
community or street; admins all (services/scope.place_scope). A grid out of scope
does not exist for the reader (404), as a ticket out of scope does not; the full
export is refused (403) to anyone but supervisors and admins.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from ticketing import governance_blocks, labels
from ticketing.extensions import db
from ticketing.ledger import exports, hotspot_pages, pages
from ticketing.models import Grid, Ledger, Role
from ticketing.services import area_export, ledger_export, ledger_report
from ticketing.services.errors import InvalidInput
from ticketing.web import local_tz, now, roles_required, staff_user

bp = Blueprint("ledger", __name__)
hotspot_pages.register(bp)  # /ledger/hotspots: the recurring problems

LEDGER_ROLES = (Role.GRID_WORKER, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN)


@bp.app_template_filter("duration")
def duration(seconds: int | None) -> str:
    """Seconds as "3 h 20 min"."""
    return pages.duration_label(seconds)


@bp.app_template_global()
def min_tickets() -> int:
    """The small-sample rule's threshold, for the ledger macros (imported without context)."""
    return ledger_report.MIN_TICKETS


@bp.context_processor
def ledger_helpers() -> dict[str, Any]:
    """Labels of the codes the ledgers keep counts by."""
    categories: dict[str, Any] = {}

    def category_name(code: str) -> str:
        if not categories:
            categories.update(pages.categories_by_code())
        found = categories.get(code)
        return labels.localized_name(found) if found is not None else code

    return {"channel_name": lambda code: labels.label(labels.CHANNEL_LABELS, code), "category_name": category_name,
            "status_name": lambda code: labels.label(labels.STATUS_LABELS, code),
            "rate_of": lambda row, name: ledger_report.rates_of(row)[name],
            "callback_rate_of": ledger_report.callback_rate,
            "place_text": ledger_export.place_text}


@bp.context_processor
def area_export_form() -> dict[str, Any]:
    """The dashboard's export form (templates/ledger/_area_export.html)."""
    return {"area_export_form": exports.form_for}


def today() -> date:
    """The local date now."""
    return now().astimezone(local_tz()).date()


def parse_day(value: str | None, default: date) -> date:
    """A YYYY-MM-DD date from the URL; a malformed one is not a page (404)."""
    if not value:
        return default
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        abort(404)


def grid_or_404(code: str) -> Grid:
    """The grid if the user may read its ledgers."""
    grid = pages.grid_in_scope(staff_user(), code)
    if grid is None:
        abort(404)
    return grid


@bp.route("/")
@roles_required(*LEDGER_ROLES)
def dashboard() -> str:
    """Today so far, a day, week or month rolled up, rankings, trends, the map, the 督办 list."""
    user = staff_user()
    areas = pages.areas_for(user)
    area = pages.chosen(areas, request.args.get("area"))
    kind = request.args.get("period", "day")
    kind = kind if kind in ledger_report.PERIODS else "day"
    by = request.args.get("by", "response")
    by = by if by in ledger_report.RATES else "response"
    current = today()
    span = ledger_report.period(kind, parse_day(request.args.get("day"), current - timedelta(days=1)))
    board = pages.load_dashboard(user, area, areas, span, by, current, everything=request.args.get("all", ""),
                                 page=request.args.get("page", 1, type=int))
    return render_template("ledger/dashboard.html", d=board, rate_labels=pages.RATE_LABELS,
                           period_labels=pages.PERIOD_LABELS,
                           governance=governance_blocks.for_area(user, area.community_id, area.street_id, now()))


@bp.route("/grid/<code>/<day>")
@roles_required(*LEDGER_ROLES)
def grid_day(code: str, day: str) -> str:
    """A grid's ledger of a day: counts, rates, handlers, and a line per ticket touched."""
    page = pages.load_ledger_page(grid_or_404(code), parse_day(day, today()))
    return render_template("ledger/grid_day.html", p=page, rate_labels=pages.RATE_LABELS,
                           may_full=ledger_export.may_export_full(staff_user()), today=today(),
                           timedelta=timedelta, governance=governance_blocks.for_grid_day(page.grid, page.day, now()))


@bp.route("/grid/<code>/<day>/print")
@roles_required(*LEDGER_ROLES)
def grid_day_print(code: str, day: str) -> str:
    """The same ledger laid out for an A4 landscape sheet."""
    page = pages.load_ledger_page(grid_or_404(code), parse_day(day, today()))
    return render_template("ledger/print.html", p=page, rate_labels=pages.RATE_LABELS, printed_at=now())


@bp.route("/grid/<code>/<day>/export.<fmt>")
@roles_required(*LEDGER_ROLES)
def export(code: str, day: str, fmt: str) -> Response:
    """The ledger's lines as .xlsx or CSV, personal data masked."""
    return _export(grid_or_404(code), parse_day(day, today()), fmt, full=False)


@bp.route("/grid/<code>/<day>/export", methods=["POST"])
@roles_required(*LEDGER_ROLES)
def export_full(code: str, day: str) -> Response:
    """The full version, for a supervisor or admin: every ticket's reveal is logged."""
    grid = grid_or_404(code)
    if not ledger_export.may_export_full(staff_user()):
        abort(403)
    return _export(grid, parse_day(day, today()), request.form.get("format", "xlsx"), full=True)


def _export(grid: Grid, day: date, fmt: str, full: bool) -> Response:
    if fmt not in ledger_export.FORMATS:
        abort(404)
    lines = ledger_export.lines_of(Ledger.grid_id == grid.id, day)
    result = ledger_export.build(lines, fmt, f"ledger-{grid.code}-{day}", local_tz(), full)
    if full:
        ledger_export.log_full_export(staff_user(), lines, now(), request.remote_addr or "")
        db.session.commit()
    response = current_app.response_class(result.content, mimetype=result.media_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{result.filename}"'
    response.headers["Cache-Control"] = "no-store" if full else "private, no-cache"
    return response


@bp.route("/export", methods=["GET", "POST"])
@roles_required(*LEDGER_ROLES)
def area_export_file() -> Response:
    """A community's or street's ledgers over a day, week, month or range, as .xlsx or CSV.

    Masked by a GET or a POST; the full version (POST, `full=1`) only for supervisors
    and admins, every ticket's reveal logged. An area not wholly in scope is not found.
    """
    user = staff_user()
    values = request.form if request.method == "POST" else request.args
    full = request.method == "POST" and values.get("full") == "1"
    if full and not ledger_export.may_export_full(user):
        abort(403)
    key = values.get("area", "all")
    area = area_export.area_for_key(user, key)
    fmt = values.get("format", "xlsx")
    if area is None or fmt not in ledger_export.FORMATS:
        abort(404)
    back = url_for("ledger.dashboard", area=key, day=values.get("day") or None) + "#export"
    try:
        span = exports.period_of(values)
    except InvalidInput as err:
        flash(str(err.message), "error")
        return redirect(back)
    if not area_export.has_ledgers(area, span):
        flash(_("No ledger has been compiled for this period."), "error")
        return redirect(back)
    if exports.too_big(area, span):
        if request.method != "POST":  # a GET changes nothing: the form's button asks
            flash(_("This file is large: use the button below to have it made."), "error")
            return redirect(back)
        exports.request_in_background(user, area, span, fmt, full, request.remote_addr or "")
        db.session.commit()
        flash(_("The file is being made; you will be told in your inbox when it is ready."), "success")
        return redirect(back)
    out = exports.build(area, span, fmt, full)
    if full:
        exports.log_reveals(user, area, span, request.remote_addr or "")
        db.session.commit()
    return exports.send(out, area.filename(span, fmt, full), fmt, full)


@bp.route("/export/<token>")
@roles_required(*LEDGER_ROLES)
def area_export_made(token: str) -> Response:
    """A big export made in the background: its requester's only, for a day."""
    made = exports.made_file(token)
    if made is None:
        abort(404)
    return exports.send(made.path, made.filename, made.fmt, made.full)

"""Administration → on record: the audit log (操作日志) and the reveal log (联系方式查看记录).

Admins read both in full. Supervisors read the audit entries they made and those
about the people whose rosters they keep, and the reveals of tickets in their
scope. Both pages filter by query string, so a filtered page can be bookmarked.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import make_response, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, String, and_, cast, or_, select, true
from werkzeug.wrappers import Response

from ticketing.admin.views import bp
from ticketing.extensions import db
from ticketing.models import AuditEntry, Role, User
from ticketing.services import audit, reveal_log, rosters
from ticketing.services.ticket_lists import page_span
from ticketing.web import local_tz, now, roles_required, staff_user

PER_PAGE = 50
# Rows in one download; a narrower date range gets the rest.
MAX_DOWNLOAD = 50_000

TARGET_LABELS: dict[str, Any] = {
    "rule": _l("Routing rule"), "category": _l("Category"), "tier": _l("Time-limit tier"),
    "user": _l("Person"), "apikey": _l("API key"), "calendar_day": _l("Calendar"),
    "place": _l("Place"), "import": _l("Import"), "emergency_guide": _l("Emergency guidance"),
    "governance_task": _l("Governance task"),
}
VERB_LABELS: dict[str, Any] = {
    "create": _l("created"), "update": _l("changed"), "enable": _l("enabled"), "disable": _l("disabled"),
    "move": _l("moved"), "adopt": _l("keyword added"), "add": _l("added"), "remove": _l("removed"),
    "issue": _l("issued"), "revoke": _l("revoked"), "set": _l("set"), "unset": _l("removed"),
    "deactivate": _l("deactivated"), "reactivate": _l("reactivated"), "apply": _l("applied"),
    "close": _l("closed"),
}
# Actions whose target is a person but whose verb needs the thing changed.
ACTION_LABELS: dict[str, Any] = {
    "roster.update": _l("Duty roster changed"), "leave.add": _l("Leave added"),
    "leave.remove": _l("Leave removed"),
    "category.rename": _l("Category renamed"), "category.move": _l("Category moved to another group"),
}
VIA_LABELS: dict[str, Any] = {"web": _l("web page"), "cli": _l("command line"), "api": _l("API")}
PURPOSE_LABELS: dict[str, Any] = {"view": _l("ticket page"), "export": _l("ledger export"),
                                  "callback": _l("callback call")}


@dataclass(frozen=True)
class AuditFilters:
    """What the reader narrowed the audit log to; empty fields do not filter."""

    actor: str = ""
    target_type: str = ""
    first_day: date | None = None
    last_day: date | None = None


def action_label(action: str) -> str:
    """"Routing rule · changed" for "rule.update"; unknown actions as they are stored."""
    if action in ACTION_LABELS:
        return str(ACTION_LABELS[action])
    kind, _sep, verb = action.partition(".")
    if kind in TARGET_LABELS and verb in VERB_LABELS:
        return f"{TARGET_LABELS[kind]} · {VERB_LABELS[verb]}"
    return action


def parse_day(args: Mapping[str, str], name: str, errors: dict[str, str]) -> date | None:
    """A YYYY-MM-DD query argument; a wrong one is noted in `errors`."""
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = _("Enter the date as YYYY-MM-DD, e.g. 2026-11-18.")
        return None


def page_number(args: Mapping[str, str]) -> int:
    """The ?page= argument, 1 when missing or not a number."""
    raw = args.get("page", "1")
    return int(raw) if raw.isdigit() else 1


def audit_scope(user: User) -> ColumnElement[bool]:
    """The entries `user` may read: all for admins; for a supervisor their own and those
    about the people whose rosters they keep (ids are stored as text)."""
    if user.role == Role.ADMIN:
        return true()
    people = select(cast(User.id, String)).where(rosters.editable_people(user))
    return or_(AuditEntry.actor_id == user.id,
               and_(AuditEntry.target_type == "user", AuditEntry.target_id.in_(people)))


def audit_query(user: User, filters: AuditFilters) -> Any:
    """The audit entries `user` may read that match `filters`, newest first."""
    clauses = [audit_scope(user)]
    if filters.actor.strip():
        clauses.append(AuditEntry.actor_label.contains(filters.actor.strip(), autoescape=True))
    if filters.target_type:
        clauses.append(AuditEntry.target_type == filters.target_type)
    tz = local_tz()
    if filters.first_day is not None:
        clauses.append(AuditEntry.at >= datetime.combine(filters.first_day, time(), tzinfo=tz))
    if filters.last_day is not None:
        clauses.append(AuditEntry.at < datetime.combine(filters.last_day + timedelta(days=1), time(), tzinfo=tz))
    return select(AuditEntry).where(and_(*clauses)).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())


@bp.get("/audit")
@roles_required(Role.ADMIN, Role.SUPERVISOR)
def audit_log() -> tuple[str, int]:
    """The audit log, filtered by who, what kind of thing and date range; 50 a page."""
    errors: dict[str, str] = {}
    args = request.args
    target_type = args.get("type", "")
    if target_type and target_type not in TARGET_LABELS:
        errors["type"] = _("Choose a kind of change from the list.")
        target_type = ""
    filters = AuditFilters(actor=args.get("actor", "")[:64], target_type=target_type,
                           first_day=parse_day(args, "from", errors), last_day=parse_day(args, "to", errors))
    page = db.paginate(audit_query(staff_user(), filters), page=page_number(args), per_page=PER_PAGE,
                       error_out=False)
    query_args = {k: v for k, v in (("actor", filters.actor), ("type", target_type),
                                    ("from", args.get("from", "")), ("to", args.get("to", ""))) if v}
    return render_template("admin/audit.html", page=page, filters=filters, errors=errors, args=query_args,
                           targets=TARGET_LABELS, action_label=action_label, changes=audit.changes,
                           via_labels=VIA_LABELS), 400 if errors else 200


@bp.get("/reveals")
@roles_required(Role.ADMIN, Role.SUPERVISOR)
def reveals() -> Response | tuple[str, int]:
    """Who saw whose contact details: filter by ticket, person and date; ?format=csv downloads."""
    errors: dict[str, str] = {}
    args = request.args
    filters = reveal_log.Filters(number=args.get("number", "")[:20], person=args.get("person", "")[:64],
                                 first_day=parse_day(args, "from", errors), last_day=parse_day(args, "to", errors))
    user, tz = staff_user(), local_tz()
    query_args = {k: v for k, v in (("number", filters.number), ("person", filters.person),
                                    ("from", args.get("from", "")), ("to", args.get("to", ""))) if v}
    if args.get("format") == "csv" and not errors:
        rows = list(db.session.scalars(reveal_log.query(user, filters, tz).limit(MAX_DOWNLOAD)))
        response = make_response(reveal_log.to_csv(rows, tz))
        response.headers["Content-Type"] = "text/csv; charset=utf-8"
        stamp = now().astimezone(tz).strftime("%Y%m%d-%H%M")
        response.headers["Content-Disposition"] = f'attachment; filename="reveals-{stamp}.csv"'
        response.headers["Cache-Control"] = "no-store"
        return response
    total = reveal_log.count(user, filters, tz)
    number, pages, offset = page_span(total, page_number(args), PER_PAGE)
    rows = list(db.session.scalars(reveal_log.query(user, filters, tz).offset(offset).limit(PER_PAGE)))
    return render_template("admin/reveals.html", rows=rows, total=total, page=number, pages=pages,
                           filters=filters, errors=errors, args=query_args, purposes=PURPOSE_LABELS,
                           max_download=MAX_DOWNLOAD), 400 if errors else 200

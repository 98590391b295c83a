"""Reading the reveal log (联系方式查看记录): who saw a requester's contact details in full,
when, on which ticket and why (the ticket page, a full ledger export, or a 回访 call).

Admins read all of it; supervisors the entries of tickets in their scope. Only who
looked is shown, never what they saw; reading the log is not itself a reveal.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from flask_babel import force_locale
from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select, true
from sqlalchemy.orm import contains_eager

from ticketing import labels
from ticketing.extensions import db
from ticketing.models import RevealLog, Role, Ticket, User
from ticketing.services import scope
from ticketing.services.ledger_export import as_text

# Headers of the download: Chinese whatever the reader's language, like the ledger's files.
CSV_HEADERS = ("查看时间", "查看人", "用户名", "角色", "工单编号", "用途", "来源地址")
PURPOSES_ZH = {"view": "工单页面", "export": "台账导出", "callback": "回访"}


@dataclass(frozen=True)
class Filters:
    """What the reader narrowed the log to; empty fields do not filter."""

    number: str = ""
    person: str = ""
    first_day: date | None = None
    last_day: date | None = None


def may_read_for(user: User, ticket: Ticket) -> bool:
    """True when `user` may see who saw this ticket's details: admins, supervisors in scope."""
    return user.role == Role.ADMIN or (user.role == Role.SUPERVISOR and scope.in_scope(user, ticket))


def scope_of(user: User) -> ColumnElement[bool]:
    """A WHERE clause on Ticket: the tickets whose reveals `user` may read."""
    if user.role == Role.ADMIN:
        return true()
    if user.role == Role.SUPERVISOR:
        return scope.ticket_scope(user)
    return false()


def day_bounds(filters: Filters, tz: tzinfo) -> tuple[datetime | None, datetime | None]:
    """The UTC start of the first local day and the end of the last (exclusive)."""
    start = datetime.combine(filters.first_day, time(), tzinfo=tz) if filters.first_day else None
    end = datetime.combine(filters.last_day + timedelta(days=1), time(), tzinfo=tz) if filters.last_day else None
    return start, end


def query(user: User, filters: Filters, tz: tzinfo) -> Select[tuple[RevealLog]]:
    """The reveals `user` may read that match `filters`, newest first."""
    clauses = [scope_of(user)]
    if filters.number.strip():
        clauses.append(Ticket.number == filters.number.strip())
    person = filters.person.strip()
    if person:
        clauses.append(or_(User.username == person, User.display_name.contains(person, autoescape=True)))
    start, end = day_bounds(filters, tz)
    if start is not None:
        clauses.append(RevealLog.at >= start)
    if end is not None:
        clauses.append(RevealLog.at < end)
    return (select(RevealLog).join(Ticket, RevealLog.ticket_id == Ticket.id)
            .join(User, RevealLog.user_id == User.id)
            .options(contains_eager(RevealLog.ticket), contains_eager(RevealLog.user))
            .where(and_(*clauses)).order_by(RevealLog.at.desc(), RevealLog.id.desc()))


def count(user: User, filters: Filters, tz: tzinfo) -> int:
    """How many reveals match."""
    inner = query(user, filters, tz).order_by(None).with_only_columns(RevealLog.id)
    return db.session.scalar(select(func.count()).select_from(inner.subquery())) or 0


def of_ticket(ticket: Ticket, limit: int = 50) -> list[RevealLog]:
    """The ticket's latest reveals, newest first, with who made them."""
    return list(db.session.scalars(
        select(RevealLog).join(User, RevealLog.user_id == User.id).options(contains_eager(RevealLog.user))
        .where(RevealLog.ticket_id == ticket.id).order_by(RevealLog.at.desc(), RevealLog.id.desc()).limit(limit)
    ))


def to_csv(rows: list[RevealLog], tz: tzinfo) -> bytes:
    """The rows as CSV: UTF-8 with a byte-order mark for Excel, every text formula-safe."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADERS)
    with force_locale("zh_CN"):
        for row in rows:
            writer.writerow([
                row.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
                as_text(row.user.display_name), as_text(row.user.username),
                str(labels.label(labels.ROLE_LABELS, row.user.role)), as_text(row.ticket.number),
                PURPOSES_ZH.get(row.purpose, as_text(row.purpose)), as_text(row.remote_addr),
            ])
    return out.getvalue().encode("utf-8-sig")
